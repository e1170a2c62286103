// The desk's flows in a real browser: Debian's chromium driven by playwright-core.
// Usage: node flows.mjs BASE_URL TOKEN FOLDER SCREENSHOT_DIR
import { chromium } from "playwright-core";

const [base, token, folder, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const fail = (message) => { throw new Error(message); };
const statusIs = (page, word) =>
  page.waitForFunction((w) => document.querySelector("#session-status").textContent.startsWith(w), word);
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(15000);
  const started = Date.now();
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#composer:not(.hidden)");
  console.log(`first paint ready in ${Date.now() - started} ms`);
  if (page.url().includes("token=")) fail("the token stayed in the address bar");

  // 1. Grant a folder, start a task, and get its plan.
  await page.fill("#task", "write out.md");
  await page.fill("#folders", folder);
  await page.click("#start");
  await page.waitForSelector("#plan:not(.hidden)");
  await page.screenshot({ path: `${shots}/desk-plan.png` });

  // 5. Reload while the task waits: every event comes back, the plan included.
  await page.reload();
  await page.waitForSelector("#plan:not(.hidden)");
  const summary = await page.textContent("#plan-summary");
  if (summary !== "Write the file") fail(`plan summary after reload: ${summary}`);

  // 1, continued. Approve and watch the steps complete.
  await page.click("#plan-approve");
  await statusIs(page, "done");
  const checklist = await page.textContent("#checklist");
  if (!checklist.includes("✓")) fail(`the checklist did not complete: ${checklist}`);
  const log = await page.textContent("#log");
  if (!log.includes("write_file") || !log.includes("All written.")) fail(`the log misses the work: ${log}`);
  await page.screenshot({ path: `${shots}/desk-done.png` });

  // 3. See the produced file.
  const href = await page.getAttribute("a.file", "href");
  const shown = await page.evaluate(async (url) => (await fetch(url)).text(), href);
  if (shown !== "from the desk") fail(`the produced file shows ${JSON.stringify(shown)}`);

  // 4. Undo the session and see the file gone.
  await page.click("#undo");
  await page.waitForSelector(".undone");
  const after = await page.evaluate(async (url) => (await fetch(url)).status, href);
  if (after === 200) fail("the file is still there after undo");

  // 2. Answer an approval prompt: a second task wants to delete keep.md, and the person says no.
  await page.click("#new-task");
  await page.fill("#task", "clean up");
  await page.fill("#folders", folder);
  await page.check("#no-plan");
  await page.click("#start");
  await page.waitForSelector("#approval:not(.hidden)");
  await page.fill("#approval-reason", "keep it");
  await page.click("#deny");
  await statusIs(page, "done");
  await page.waitForFunction(() => document.querySelectorAll("#sessions li").length === 2);
  await page.screenshot({ path: `${shots}/desk-approval.png` });
  console.log("desk flows passed");
} finally {
  await browser.close();
}
