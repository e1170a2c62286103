// Times the desk in headless chromium: first paint, a long session rendered in full (two pages at once), the
// entry nodes the windowed log keeps, and a scroll through the whole log. Prints one JSON line.
// Usage: node measure.mjs BASE_URL TOKEN SESSION_ID
import { chromium } from "playwright-core";

const [base, token, session] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const fail = (message) => { throw new Error(message); };
// Resolves once the page has drawn a frame and has nothing left to do.
const idle = () => new Promise((resolve) =>
  requestAnimationFrame(() => requestAnimationFrame(() => requestIdleCallback(resolve, { timeout: 5000 }))));
// Records the longest main-thread task of each page (long tasks are those over 50 ms): that is the jank.
const watchLongTasks = () => {
  window.longestTask = 0;
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) window.longestTask = Math.max(window.longestTask, task.duration);
  }).observe({ type: "longtask", buffered: true });
};
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  let started = Date.now();
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#composer:not(.hidden)");
  const firstPaint = Date.now() - started;

  // Two browsers on the same long session: done when the last event arrived, its entry is drawn, and the
  // page is idle. Each has its own context (its own window): two tabs of one window would leave one in the
  // background, where chromium runs animation frames about once a second.
  const second = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await Promise.all([page, second].map((p) => p.addInitScript(watchLongTasks)));
  started = Date.now();
  await Promise.all([page, second].map(async (p) => {
    await p.goto(`${base}/?token=${token}#${session}`);
    await p.waitForFunction(() => document.querySelector("#session-status").dataset.status === "done", null, { timeout: 120000 });
    await p.waitForFunction(() => {
      const log = document.querySelector("#log");
      return log.dataset.entries && log.querySelector(`.entry[data-index="${Number(log.dataset.entries) - 1}"]`);
    }, null, { timeout: 120000 });
    await p.evaluate(idle);
  }));
  const rendered = Date.now() - started;
  const longestTask = Math.round(Math.max(...await Promise.all([page, second].map((p) => p.evaluate(() => window.longestTask)))));
  const entries = await page.$eval("#log", (log) => Number(log.dataset.entries));
  const nodes = await page.$$eval("#log .entry", (found) => found.length);
  const elements = await page.evaluate(() => document.getElementsByTagName("*").length);
  if (nodes >= 1000) fail(`${nodes} entry nodes in the DOM for ${entries} entries: the log is not windowed`);

  // Scroll to the top: the first entries come back into the DOM.
  await page.bringToFront();
  const heightBefore = await page.$eval("#log", (log) => log.scrollHeight);
  await page.$eval("#log", (log) => { log.scrollTop = 0; });
  await page.waitForSelector('#log .entry[data-index="0"]', { timeout: 10000 });
  const atTop = await page.$$eval("#log .entry", (found) => found.length);
  if (atTop >= 1000) fail(`${atTop} entry nodes in the DOM at the top of the log`);

  // Scroll top to bottom a screen at a time, one step per frame, as a person dragging the scrollbar would.
  const scroll = await page.evaluate(async () => {
    const log = document.querySelector("#log");
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    let steps = 0, longest = 0, most = 0, last = performance.now();
    const began = last;
    while (log.scrollTop + log.clientHeight < log.scrollHeight - 1) {
      log.scrollTop += log.clientHeight * 0.9;
      await frame();
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      most = Math.max(most, log.querySelectorAll(".entry").length);
      steps++;
    }
    const lastIndex = Number(log.dataset.entries) - 1;
    await frame(); await frame();
    return { ms: Math.round(performance.now() - began), steps, height: log.scrollHeight, longest_frame_ms: Math.round(longest), most_nodes: most,
             last_entry_shown: !!log.querySelector(`.entry[data-index="${lastIndex}"]`) };
  });
  if (!scroll.last_entry_shown) fail("scrolling to the bottom did not bring the last entry back");
  console.log(JSON.stringify({
    first_paint_ms: firstPaint, full_session_ms: rendered, longest_task_while_loading_ms: longestTask, entries, entry_nodes: nodes, dom_elements: elements,
    entry_nodes_at_top: atTop, scroll_top_to_bottom_ms: scroll.ms, scroll_steps: scroll.steps,
    scroll_longest_frame_ms: scroll.longest_frame_ms, scroll_most_entry_nodes: scroll.most_nodes,
    // How much the log's height changed by drawing blocks only estimated so far: the content jumps by that much.
    log_height_px: heightBefore, log_height_change_px: scroll.height - heightBefore,
  }));
} finally {
  await browser.close();
}
