// Times the desk in headless chromium: first paint, and a long session rendered in full.
// Usage: node measure.mjs BASE_URL TOKEN SESSION_ID
import { chromium } from "playwright-core";

const [base, token, session] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  let started = Date.now();
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#composer:not(.hidden)");
  const firstPaint = Date.now() - started;
  // Two browsers on the same long session, as the issue measures.
  const second = await context.newPage();
  started = Date.now();
  await Promise.all([page, second].map(async (p) => {
    await p.goto(`${base}/#${session}`);
    await p.waitForFunction(() => document.querySelector("#session-status").textContent.startsWith("done"), null, { timeout: 120000 });
  }));
  const rendered = Date.now() - started;
  const lines = await page.$$eval("#log > *", (nodes) => nodes.length);
  console.log(JSON.stringify({ first_paint_ms: firstPaint, full_session_ms: rendered, log_nodes: lines }));
} finally {
  await browser.close();
}
