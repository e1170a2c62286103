// The desk's flows in a real browser: Debian's chromium driven by playwright-core.
// Usage: node flows.mjs BASE_URL TOKEN FOLDER
import { chromium } from "playwright-core";

const [base, token, folder] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const fail = (message) => { throw new Error(message); };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${base}/?token=${token}`);
  if (page.url().includes("token=")) fail("the token stayed in the address bar");

  // 1. Grant a folder, start a task, approve the plan, and watch the steps complete.
  await page.fill("#task", "write out.md");
  await page.fill("#folders", folder);
  await page.click("#start");
  await page.waitForSelector("#plan:not(.hidden)");
  const summary = await page.textContent("#plan-summary");
  if (summary !== "Write the file") fail(`plan summary shown: ${summary}`);
  await page.click("#plan-approve");
  await page.waitForFunction(() => document.querySelector("#session-status").textContent.startsWith("done"));
  const checklist = await page.textContent("#checklist");
  if (!checklist.includes("✓")) fail(`the checklist did not complete: ${checklist}`);
  const log = await page.textContent("#log");
  if (!log.includes("write_file") || !log.includes("All written.")) fail(`the log misses the work: ${log}`);

  // 2. Answer an approval prompt: a second task wants to delete a file, and the person says no.
  await page.click("#new-task");
  await page.fill("#task", "clean up");
  await page.fill("#folders", folder);
  await page.check("#no-plan");
  await page.click("#start");
  await page.waitForSelector("#approval:not(.hidden)");
  await page.fill("#approval-reason", "keep it");
  await page.click("#deny");
  await page.waitForFunction(() => document.querySelector("#session-status").textContent.startsWith("done"));
  const sessions = await page.$$eval("#sessions li", (items) => items.length);
  if (sessions !== 2) fail(`${sessions} sessions listed`);
  console.log("desk flows passed");
} finally {
  await browser.close();
}
