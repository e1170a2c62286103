// The desk's flows in a real browser: Debian's chromium driven by playwright-core.
// Usage: node flows.mjs task BASE_URL TOKEN FOLDER SCREENSHOT_DIR
//        node flows.mjs follow BASE_URL TOKEN SESSION_ID SCREENSHOT_DIR
//        node flows.mjs input BASE_URL TOKEN SESSION_ID SCREENSHOT_DIR
//        node flows.mjs agents BASE_URL TOKEN FOLDER SCREENSHOT_DIR
//        node flows.mjs agents-many BASE_URL TOKEN SESSION_ID SCREENSHOT_DIR
//        node flows.mjs schedules BASE_URL TOKEN FOLDER SCREENSHOT_DIR
//        node flows.mjs apps BASE_URL TOKEN SESSION_ID SCREENSHOT_DIR
// `task`: FOLDER is canonical and lies inside the server's browse root, so the folder picker can reach it.
// `follow`: SESSION_ID is a running session of 600 one-line entries; the flow prints a line when it wants
// more events and reads a line once the test appended them (100, then 100 more).
// `input`: SESSION_ID is a running session whose MCP tool is about to ask the person for input (the reference
// server's trigger-elicitation-request); the flow allows the call and fills the form in.
// `agents`: FOLDER holds alpha.md and beta.md; the task the flow starts there runs two reader agents, one each.
// `agents-many`: SESSION_ID is a finished session whose 320 reader agents each read a note, the first with the
// help of an agent of its own.
// `schedules`: the store has no schedule yet. The flow talks with the test on stdin and stdout: it prints
// `seed` and reads one line of JSON, {"active", "paused", "done_session", "failed_session", "output"}, once the
// test stored an active schedule with three fires (done, missed, failed) and a paused one-shot; it prints
// `paused` and `resumed` after each button and reads a line once the test checked the store; it prints
// `remove` and reads a line once the test removed the paused schedule. "Run now" runs against the scripted
// model, whose task writes FOLDER/summary.md. The page runs in Asia/Tokyo's time zone (UTC+9, no DST).
// `apps`: SESSION_ID is a session whose first call, show_tally of the tally test server, names a view (an MCP
// App); the flow drives the view: its result, a call of its server's tool the person allows, a tool refused to
// it, full screen and back, and probes of what it must not reach.
import readline from "node:readline";
import { chromium } from "playwright-core";

const [flow, base, token, target, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const fail = (message) => { throw new Error(message); };
const statusIs = (page, status) =>
  page.waitForFunction((w) => document.querySelector("#session-status").dataset.status === w, status);
const shot = (page, name) => page.screenshot({ path: `${shots}/desk-${name}.png` });

// What the progress panel shows: each step's class, whether it is the current one, and its text.
const progress = (page) => page.$$eval("#checklist li", (items) =>
  items.map((li) => ({ status: li.className, current: li.getAttribute("aria-current") === "step", text: li.textContent })));
const outputs = (page) => page.$$eval("#outputs-list li", (items) =>
  items.map((li) => ({ path: li.dataset.path, shown: li.querySelector("input").value, text: li.textContent })));
// Relative luminance of an element's computed background (0 black … 1 white).
const luminance = (page, selector) => page.$eval(selector, (element) => {
  const [r, g, b] = getComputedStyle(element).backgroundColor.match(/\d+/g).map(Number).map((c) => {
    const x = c / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
});

async function taskFlow(page, folder) {
  const started = Date.now();
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#composer:not(.hidden)");
  console.log(`first paint ready in ${Date.now() - started} ms`);
  if (page.url().includes("token=")) fail("the token stayed in the address bar");

  // 1. Grant a folder through the picker, start a task with Ctrl+Enter, and get its plan.
  await page.fill("#task", "write out.md and items.csv, a report and the list of what the office bought this month");
  await page.click("#browse");
  await page.waitForSelector("#picker:not(.hidden)");
  const name = folder.split("/").pop();
  await page.click(`#picker-list a:text-is("${name}/")`);
  await page.waitForFunction((f) => document.querySelector("#picker-path").textContent === f, folder);
  await shot(page, "picker");
  await page.click("#grant");
  const granted = await page.inputValue("#folders");
  if (granted !== folder) fail(`the picker granted ${JSON.stringify(granted)}, not ${folder}`);
  await shot(page, "new-task");
  await page.focus("#task");
  await page.keyboard.press("Control+Enter");
  await page.waitForSelector("#plan:not(.hidden)");
  await statusIs(page, "waiting");
  const proposed = await progress(page);
  if (proposed.length !== 2 || proposed.some((step) => step.current)) fail(`the proposed plan shows ${JSON.stringify(proposed)}`);
  await shot(page, "plan-review");

  // 5. Reload while the task waits: every event comes back, the plan included.
  await page.reload();
  await page.waitForSelector("#plan:not(.hidden)");
  const summary = await page.textContent("#plan-summary");
  if (summary !== "Write the report and the list") fail(`plan summary after reload: ${summary}`);

  // Approve; mid-run, a call outside the plan asks. The page shows where the work stands.
  await page.click("#plan-approve");
  await page.waitForSelector("#approval:not(.hidden)");
  await statusIs(page, "waiting");
  await page.waitForFunction(() => document.querySelectorAll("#outputs-list li").length === 2);
  const running = await progress(page);
  if (!running[0].status.includes("done") || running[0].current) fail(`step 1 while running: ${JSON.stringify(running[0])}`);
  if (!running[1].current || !running[1].status.includes("current")) fail(`step 2 is not marked current: ${JSON.stringify(running)}`);
  if (!(await page.isVisible("#steer"))) fail("the steering box is hidden while the task runs");
  if (await page.isVisible("#undo")) fail("undo is offered while the task runs");
  if (!(await page.isVisible("#stop"))) fail("Stop is hidden while the task runs");
  await shot(page, "running-progress");
  const asks = await page.textContent("#approval");
  if (!asks.includes("delete_path") || !asks.includes("asks")) fail(`the approval says ${asks}`);
  await page.fill("#approval-reason", "not yet");
  await shot(page, "approval");
  await page.click("#deny");
  await statusIs(page, "done");

  // Finished: every step done, nothing current; steering gone, undo offered; the outputs listed with paths.
  await page.waitForSelector("#undo:not(.hidden)");
  if (await page.isVisible("#steer")) fail("the steering box stayed after the task finished");
  if (await page.isVisible("#stop")) fail("Stop stayed after the task finished");
  const finished = await progress(page);
  if (finished.some((step) => step.current || !step.status.includes("done"))) fail(`finished steps: ${JSON.stringify(finished)}`);
  const listed = await outputs(page);
  const expectedPaths = [`${folder}/out.md`, `${folder}/items.csv`];
  if (JSON.stringify(listed.map((o) => o.path)) !== JSON.stringify(expectedPaths)) fail(`the outputs panel lists ${JSON.stringify(listed)}`);
  if (listed.some((o, i) => o.shown !== expectedPaths[i] || !o.text.includes("created"))) fail(`outputs show ${JSON.stringify(listed)}`);
  const log = await page.textContent("#log");
  if (!log.includes("write_file") || !log.includes("All written.") || !log.includes("denied")) fail(`the log misses the work: ${log}`);
  await shot(page, "done-outputs");

  // The outputs panel previews a produced file: markdown rendered; Escape closes and focus comes back.
  await page.locator("#outputs-list li", { hasText: "out.md" }).locator("button.preview").click();
  await page.waitForSelector("#preview-body article h1");
  const heading = await page.textContent("#preview-body article h1");
  if (heading !== "Report") fail(`the markdown preview's heading is ${JSON.stringify(heading)}`);
  const download = await page.getAttribute("#preview-download", "href");
  if (!download.endsWith("&download=1")) fail(`the download link is ${download}`);
  const disposition = await page.evaluate(async (url) => (await fetch(url)).headers.get("content-disposition"), download);
  if (!disposition.startsWith("attachment")) fail(`the download comes as ${disposition}`);
  await shot(page, "preview-markdown");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#preview", { state: "hidden" });

  // A tool line opens to its input and, fetched on opening, its output.
  const toolLine = page.locator("#log details.tool", { hasText: "out.md" }).first();
  await toolLine.locator("summary").click();
  await toolLine.locator("pre.output").waitFor();
  const output = await toolLine.locator("pre.output").textContent();
  if (!output.includes("created out.md")) fail(`the write_file output shows ${JSON.stringify(output)}`);
  const input = await toolLine.locator("dl.input").textContent();
  if (!input.includes("from the desk")) fail(`the write_file input shows ${JSON.stringify(input)}`);
  await shot(page, "tool-call");

  // A file change opens to its diff, added lines marked.
  const changeLine = page.locator("#log details.change", { hasText: "out.md" });
  await changeLine.locator("summary").focus();
  await page.keyboard.press("Enter");
  await changeLine.locator("pre.diff").waitFor();
  const added = await changeLine.locator("pre.diff span.add").allTextContents();
  if (!added.includes("+from the desk")) fail(`the diff's added lines are ${JSON.stringify(added)}`);
  await shot(page, "diff");

  // A produced CSV previews as a table from the log's link; the Close button closes it.
  await page.locator("#log details.change a.file", { hasText: "items.csv" }).click();
  await page.waitForSelector("#preview-body table");
  const cells = await page.$$eval("#preview-body table tr", (rows) =>
    rows.map((row) => [...row.children].map((cell) => cell.textContent)));
  const expected = [["Item", "Amount"], ["paper", "12.50"], ["ink", "3"]];
  if (JSON.stringify(cells) !== JSON.stringify(expected)) fail(`the CSV preview shows ${JSON.stringify(cells)}`);
  await shot(page, "preview-table");
  await page.click("#preview-close");
  await page.waitForSelector("#preview", { state: "hidden" });

  // 3. See the produced file through its plain link.
  const href = await page.getAttribute("a.file", "href");
  const shown = await page.evaluate(async (url) => (await fetch(url)).text(), href);
  if (shown !== "# Report\n\nfrom the desk\n") fail(`the produced file shows ${JSON.stringify(shown)}`);

  // The dark scheme applies when the system asks for it.
  const light = await luminance(page, "html");
  await page.emulateMedia({ colorScheme: "dark" });
  const dark = await luminance(page, "html");
  if (!(light > 0.8 && dark < 0.05)) fail(`the page's background luminance is ${light} light and ${dark} dark`);
  await shot(page, "done-dark");
  await page.emulateMedia({ colorScheme: "light" });

  // At 200 % zoom (half the CSS pixels) nothing overflows sideways; the panels stack.
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: viewport.width / 2, height: viewport.height / 2 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`at 200 % zoom the page is ${overflow} px wider than the window`);
  await page.screenshot({ path: `${shots}/desk-zoom-200.png`, fullPage: true });
  await page.setViewportSize(viewport);

  // The keyboard reaches the main controls in order, each with a visible focus ring.
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  const reached = new Set();
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const e = document.activeElement;
      const ring = getComputedStyle(e).outlineStyle !== "none" && parseFloat(getComputedStyle(e).outlineWidth) > 0;
      const name = e.id || (e.closest("#sessions") ? "session" : e.closest("#outputs-list") ? `output ${e.className}` : e.tagName);
      return { name, ring };
    });
    // Past the last control, focus leaves the page (the body holds it) before it wraps around.
    if (focused.name === "BODY") continue;
    if (!focused.ring) fail(`${focused.name} has focus but no visible focus ring`);
    reached.add(focused.name);
  }
  for (const control of ["new-task", "session", "undo", "output preview", "output copy", "log", "follow-up"]) {
    if (!reached.has(control)) fail(`Tab never reaches ${control}: ${[...reached].join(", ")}`);
  }
  // Enter opens a preview from the outputs panel; Escape puts focus back on its button.
  await page.locator("#outputs-list li", { hasText: "items.csv" }).locator("button.preview").focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector("#preview-body table");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#preview", { state: "hidden" });
  const back = await page.evaluate(() => document.activeElement.className);
  if (back !== "preview") fail(`focus went to ${back} after closing the preview`);

  // 4. Undo the session with the keyboard (Space) and see the files gone, with the result said plainly.
  await page.focus("#undo");
  await page.keyboard.press("Space");
  await page.waitForSelector(".undone");
  const undone = await page.textContent("#undo-result");
  if (!undone.includes("2 paths put back")) fail(`the undo result says ${JSON.stringify(undone)}`);
  const after = await page.evaluate(async (url) => (await fetch(url)).status, href);
  if (after === 200) fail("the file is still there after undo");
  await page.waitForSelector("#undo", { state: "hidden" });
  const undoneOutputs = await outputs(page);
  if (!undoneOutputs.every((o) => o.text.includes("undone"))) fail(`outputs after undo: ${JSON.stringify(undoneOutputs)}`);
  // The server remembers: after a reload, undo is still not offered.
  await page.reload();
  await statusIs(page, "done");
  await page.waitForFunction(() => document.querySelector("#outputs-count").textContent.includes("undone"));
  if (await page.isVisible("#undo")) fail("undo is offered again after a reload of an undone session");
  await shot(page, "undone");

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
  if (await page.isVisible("#undo")) fail("undo is offered for a session that changed nothing");
  await shot(page, "approval-denied");

  // The trash holds what undo removed: restore items.csv, then empty the rest after confirming.
  await page.click("#show-trash");
  await page.waitForSelector("#trash-list li button");
  const trashed = await page.textContent("#trash-list");
  if (!trashed.includes("out.md") || !trashed.includes("items.csv")) fail(`the trash lists ${trashed}`);
  await page.locator("#trash-list li", { hasText: "items.csv" }).locator("button").click();
  await page.waitForSelector("#trash-list .restored");
  const restored = await page.textContent("#trash-list .restored");
  if (!restored.includes(`${folder}/items.csv`)) fail(`the restore result says ${restored}`);
  await shot(page, "trash");
  let asked = null;
  page.once("dialog", (dialog) => { asked = dialog.message(); dialog.accept(); });
  await page.click("#empty-trash");
  await page.waitForFunction(() => document.querySelector("#trash-result").textContent.startsWith("Emptied"));
  if (!asked) fail("emptying the trash did not ask first");
  const emptied = await page.textContent("#trash-result");
  if (!emptied.includes("1 entries")) fail(`the empty-trash result says ${emptied}`);
  await page.waitForSelector("#trash-list li:text-is('The trash is empty.')");
  await shot(page, "trash-emptied");
}

async function followFlow(page, session) {
  const input = readline.createInterface({ input: process.stdin });
  const replies = input[Symbol.asyncIterator]();
  const more = async (entries) => { console.log(`append ${entries}`); await replies.next(); };
  // The page knows n entries; with `shown`, the n-th is also in the DOM.
  const known = (n, shown) => page.waitForFunction(([n, shown]) => {
    const log = document.querySelector("#log");
    return Number(log.dataset.entries) === n && (!shown || log.querySelector(`.entry[data-index="${n - 1}"]`));
  }, [n, shown]);
  const drawn = (n) => known(n, true);
  const atBottom = () => page.$eval("#log", (log) => log.scrollHeight - log.scrollTop - log.clientHeight < 2);

  await page.goto(`${base}/?token=${token}#${session}`);
  await drawn(600);
  if (!(await atBottom())) fail("the log did not follow the session to its end");
  const cost = await page.textContent("#session-usage");
  if (cost !== "cost unknown · 1,200 tokens") fail(`an unpriced request shows as ${JSON.stringify(cost)}`);

  // The person scrolls up to read: new entries must not pull them down. What they see is the entry at the top
  // of the log's view and where it stands; the browser may adjust scrollTop to keep exactly that in place.
  await page.$eval("#log", (log) => { log.scrollTop = Math.floor(log.scrollHeight / 3); });
  await page.waitForSelector("#latest:not(.hidden)");
  const reading = () => page.$eval("#log", (log) => {
    const top = log.getBoundingClientRect().top;
    const entry = [...log.querySelectorAll(".entry")].find((e) => e.getBoundingClientRect().bottom > top + 1);
    return entry ? { index: entry.dataset.index, offset: Math.round(entry.getBoundingClientRect().top - top) } : null;
  });
  const position = await reading();
  await more(100);
  await known(700, false);
  const after = await reading();
  if (!position || JSON.stringify(after) !== JSON.stringify(position)) {
    fail(`the log moved from ${JSON.stringify(position)} to ${JSON.stringify(after)} while the person read`);
  }
  // Far below the reader, the new entries are data only.
  if (await page.$('#log .entry[data-index="699"]')) fail("an entry far from the viewport was drawn");
  await shot(page, "follow-scrolled-up");

  // "Latest" takes them back to the end, and the log follows again.
  await page.click("#latest");
  await page.waitForSelector("#latest", { state: "hidden" });
  if (!(await atBottom())) fail("Latest did not go to the end of the log");
  await more(100);
  await drawn(800);
  if (!(await atBottom())) fail("the log stopped following after Latest");
  input.close();
}

// Counts the page's open EventSources (the lead's and its agents'), and the most open at once.
const countStreams = () => {
  window.streams = { open: 0, most: 0, opened: 0, urls: [] };
  window.EventSource = class extends window.EventSource {
    constructor(...args) {
      super(...args);
      window.streams.opened++;
      window.streams.urls.push(String(args[0]));
      this.counted = true;
      window.streams.open++;
      window.streams.most = Math.max(window.streams.most, window.streams.open);
    }
    close() {
      if (this.counted) window.streams.open--;
      this.counted = false;
      super.close();
    }
  };
};
// Records the longest main-thread task (long tasks are those over 50 ms): that is the jank.
const watchLongTasks = () => {
  window.longestTask = 0;
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) window.longestTask = Math.max(window.longestTask, task.duration);
  }).observe({ type: "longtask", buffered: true });
};
// Each agent's block in the log, with the call line it sits under.
const agentBlocks = (page) => page.$$eval("#log .agent-call", (groups) => groups.map((group) => {
  const block = group.querySelector(":scope > details.agent");
  return {
    call: group.querySelector(":scope > details.tool > summary").textContent,
    name: block.querySelector(":scope > summary .name").textContent,
    status: block.querySelector(":scope > summary .chip").dataset.status,
    summary: block.querySelector(":scope > summary").textContent,
    open: block.open,
    lines: [...block.querySelectorAll(":scope > .agent-lines > .line")].map((line) => line.textContent),
  };
}));

async function agentsFlow(page, folder) {
  await page.addInitScript(countStreams);
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#composer:not(.hidden)");
  await page.fill("#task", "have two readers read alpha.md and beta.md and tell me what they say");
  await page.fill("#folders", folder);
  await page.check("#no-plan");
  await page.click("#start");

  // The agents' blocks appear under their `task` calls while they work, closed.
  await page.waitForFunction(() => document.querySelectorAll("#log .agent-call > details.agent").length === 2);
  const lead = await page.$eval("#session-status", (chip) => chip.dataset.status);
  const working = await agentBlocks(page);
  if (lead !== "running") fail(`the agents' blocks appeared only once the lead was ${lead}`);
  for (const agent of working) {
    if (!agent.call.includes("task") || agent.name !== "↳ agent reader" || agent.open || agent.status !== "running") {
      fail(`an agent at work shows as ${JSON.stringify(agent)}`);
    }
  }
  if (!working[0].summary.includes("Read alpha.md") || !working[1].summary.includes("Read beta.md")) {
    fail(`the blocks do not say what each agent does: ${JSON.stringify(working)}`);
  }
  await shot(page, "agents-running");

  // Opened, each block lists its agent's calls as they come; each agent ends done, with its own tokens.
  for (const summary of await page.$$("#log details.agent > summary")) await summary.click();
  await page.waitForFunction(() => [...document.querySelectorAll("#log details.agent")].every((block) =>
    block.querySelector(".chip").dataset.status === "done" && /✓ read_file/.test(block.querySelector(".agent-lines").textContent)
      && /tokens/.test(block.querySelector("summary").textContent)));
  await statusIs(page, "done");
  for (const agent of await agentBlocks(page)) {
    if (agent.lines.length !== 1 || !agent.lines[0].startsWith("✓ read_file · ")) fail(`an agent's lines are ${JSON.stringify(agent.lines)}`);
    // The scripted model has no known price: its cost is unknown, never $0.
    if (!/1 call · cost unknown · [\d,]+ tokens/.test(agent.summary) || agent.summary.includes("$")) {
      fail(`an agent's summary says ${JSON.stringify(agent.summary)}`);
    }
  }
  const progress = await page.textContent("#progress-agents");
  if (progress !== "2 agents: 2 done") fail(`the progress panel says ${JSON.stringify(progress)}`);
  await page.waitForFunction(() => window.streams.open === 0);
  const streams = await page.evaluate(() => window.streams);
  if (streams.most > 3) fail(`${streams.most} event streams were open at once for a lead and two agents`);
  await shot(page, "agents-done");

  // The usage panel: the session's requests with its agents', their tokens and cache share, by tool and by agent.
  await page.click("#usage > summary");
  await page.waitForFunction(() => document.querySelectorAll("#usage table.by-agent tbody tr").length === 3);
  const usage = await page.evaluate(() => ({
    count: document.querySelector("#usage-count").textContent,
    facts: Object.fromEntries([...document.querySelectorAll("#usage-facts dt")].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])),
    tools: [...document.querySelectorAll("#usage table.by-tool tbody tr")].map((tr) => [...tr.cells].map((td) => td.textContent)),
    agents: [...document.querySelectorAll("#usage table.by-agent tbody tr")].map((tr) => [...tr.cells].map((td) => td.textContent)),
    notes: document.querySelector("#usage-notes").textContent,
  }));
  if (!/^· 6 requests · [\d,]+ tokens · unknown · \d+ % from cache$/.test(usage.count)) fail(`the usage panel's summary says ${JSON.stringify(usage.count)}`);
  if (usage.facts["Cost"] !== "unknown" || !/^\d+ % of input$/.test(usage.facts["Cache share"]) || !/^[\d,]+ tokens$/.test(usage.facts["Cache read"])) {
    fail(`the usage facts are ${JSON.stringify(usage.facts)}`);
  }
  const tool = (name) => usage.tools.find((row) => row[0] === name);
  if (!tool("task") || tool("task")[1] !== "1" || tool("task")[2] !== "2") fail(`the task row is ${JSON.stringify(usage.tools)}`);
  if (!tool("read_file") || tool("read_file")[1] !== "2" || !tool("(no tool)")) fail(`the tool rows are ${JSON.stringify(usage.tools)}`);
  if (usage.agents[0][0] !== "lead" || usage.agents.filter((row) => row[0] === "reader" && row[2] === "2").length !== 2) {
    fail(`the agent rows are ${JSON.stringify(usage.agents)}`);
  }
  if (!usage.notes.startsWith("no price known for ")) fail(`the usage notes say ${JSON.stringify(usage.notes)}`);
  await shot(page, "usage");
}

async function manyAgentsFlow(page, session) {
  await page.addInitScript(countStreams);
  await page.addInitScript(watchLongTasks);
  const started = Date.now();
  await page.goto(`${base}/?token=${token}#${session}`);
  await statusIs(page, "done");
  await page.waitForSelector("#log details.agent");
  if (await page.$("#log details.agent[open]")) fail("an agent's block was drawn open");
  await page.waitForFunction(() => document.querySelector("#progress-agents").textContent === "321 agents: 321 done",
    null, { timeout: 120000 });
  const loaded = Date.now() - started;
  await page.waitForFunction(() => window.streams.open === 0);
  const streams = await page.evaluate(() => window.streams);
  if (streams.most > 5) fail(`${streams.most} event streams were open at once: the lead's and at most four agents' may be`);

  // The log followed the replay to its end: the last agent's block, with its tokens, lists its call once opened.
  const last = page.locator("#log details.agent").last();
  const summary = await last.locator("summary").textContent();
  if (!summary.includes("Read note 319") || !summary.includes("1 call · cost unknown · 1,200 tokens")) {
    fail(`the last agent's block says ${JSON.stringify(summary)}`);
  }
  await last.locator("summary").click();
  const line = await last.locator(".agent-lines .line").first().textContent();
  if (line !== "✓ read_file · 1 line") fail(`the last agent's line is ${JSON.stringify(line)}`);

  // At the top, the first agent's block holds the agent it started, which opens to its own call.
  await page.$eval("#log", (log) => { log.scrollTop = 0; });
  const first = page.locator('#log .entry[data-index="0"] > details.agent');
  await first.locator(":scope > summary").click();
  const nested = first.locator(".agent-lines > .agent-call > details.agent");
  const says = await nested.locator(":scope > summary").textContent();
  if (!says.includes("↳ agent reader") || !says.includes("Read note 0 for me") || !says.includes("1,200 tokens")) {
    fail(`the agent's agent says ${JSON.stringify(says)}`);
  }
  await nested.locator(":scope > summary").click();
  const nestedLine = await nested.locator(".agent-lines .line").first().textContent();
  if (nestedLine !== "✓ read_file · 1 line") fail(`the agent's agent's line is ${JSON.stringify(nestedLine)}`);
  const firstLines = await first.locator(":scope > .agent-lines > .line").allTextContents();
  if (!firstLines.includes("created /notes/summary-0.md")) fail(`the first agent's lines are ${JSON.stringify(firstLines)}`);
  const listed = await outputs(page);
  if (listed.length !== 1 || listed[0].path !== "/notes/summary-0.md") fail(`the outputs panel lists ${JSON.stringify(listed)}`);
  await shot(page, "agents-nested");
  // The page stays responsive while hundreds of agents load: no stall of the main thread a person would feel
  // as a frozen page (the bound is loose: the tests share a busy machine).
  const longest = Math.round(await page.evaluate(() => window.longestTask));
  console.log(`321 agents loaded in ${loaded} ms, at most ${streams.most} event streams open at once, longest main-thread task ${longest} ms`);
  if (longest > 1500) fail(`the main thread stalled for ${longest} ms while the agents loaded`);
  await shot(page, "agents-many");

  // Another session opened while the agents load: their streams close, and the rest are not opened.
  await page.reload();
  await page.waitForSelector("#log details.agent");
  const child = await page.$eval("#log details.agent", (block) => block.dataset.session);
  // Counted once the page has switched (the desk's own hashchange listener, registered first, has run): until
  // then the lead is still the page shown, and may open its agents' streams.
  const before = await page.evaluate((id) => new Promise((resolve) => {
    window.addEventListener("hashchange", () => resolve(window.streams.urls.length), { once: true });
    location.hash = `#${id}`;
  }), child);
  await page.waitForFunction(() => document.querySelector("#session-title").textContent.startsWith("Read note-"));
  await statusIs(page, "done");
  await page.waitForTimeout(1000);
  await page.waitForFunction(() => window.streams.open === 0);
  // Only the agent's own stream and its helper's may open (a stream the browser reconnects under load opens
  // again, and that is fine): none of the lead's other agents.
  const own = [child, ...(await page.$$eval("#log details.agent", (blocks) => blocks.map((block) => block.dataset.session)))];
  const opened = await page.evaluate((n) => window.streams.urls.slice(n), before);
  const others = opened.filter((url) => !own.some((id) => url.includes(`/api/sessions/${id}/`)));
  if (others.length) fail(`${others.length} event streams of other sessions opened after the person left the lead: ${others.slice(0, 3)}`);
}

// What the schedules list shows of each schedule.
const scheduleItems = (page) => page.$$eval("#schedule-list li", (items) => items.map((item) => {
  const next = item.querySelector(".next time");
  return {
    id: item.dataset.id,
    task: item.querySelector("h2 button").textContent,
    state: item.querySelector(".chip.state").dataset.status,
    timing: item.querySelector(".timing").textContent,
    next: next ? { text: next.textContent, utc: next.dateTime, title: next.title } : item.querySelector(".next").textContent,
    last: item.querySelector(".last").textContent,
    lastStatus: item.querySelector(".last .chip") ? item.querySelector(".last .chip").dataset.status : null,
  };
}));
// One schedule's history, row by row.
const historyRows = (page) => page.$$eval("#history-rows tr", (rows) => rows.map((row) => ({
  time: row.dataset.fireTime,
  status: row.querySelector(".chip").dataset.status,
  manual: !!row.querySelector(".by-hand"),
  cost: row.querySelector("td.cost").textContent,
  output: row.querySelector("td.path").textContent,
  reason: row.querySelector("td.reason").textContent,
  session: row.querySelector("td.session a") ? row.querySelector("td.session a").getAttribute("href") : null,
})));
const stateIs = (page, state) =>
  page.waitForFunction((s) => document.querySelector("#schedule-state").dataset.status === s, state);

async function schedulesFlow(page, folder) {
  const input = readline.createInterface({ input: process.stdin });
  const replies = input[Symbol.asyncIterator]();
  const say = async (line) => { console.log(line); return (await replies.next()).value; };

  // No schedule yet: the navigation leads to the empty state, which says how to make one.
  await page.goto(`${base}/?token=${token}`);
  await page.waitForSelector("#composer:not(.hidden)");
  await page.click("#show-schedules");
  await page.waitForSelector("#schedules-empty:not(.hidden)");
  const empty = await page.textContent("#schedules-empty");
  if (!empty.includes('No schedules yet') || !empty.includes('errand schedule add --cron "0 8 * * 1-5" --folder DIR "task"')) {
    fail(`the empty state says ${JSON.stringify(empty)}`);
  }
  if (new URL(page.url()).hash !== "#schedules") fail(`the address of the schedules is ${page.url()}`);
  if ((await page.getAttribute("#show-schedules", "aria-current")) !== "page") fail("the Schedules link is not marked current");
  await shot(page, "schedules-empty");
  const seeded = JSON.parse(await say("seed"));

  // A reload comes back to the schedules: both, oldest first, each paused or active, with its next fire in
  // the person's time (UTC on hover) and how its last fire ended.
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll("#schedule-list li").length === 2);
  const [active, paused] = await scheduleItems(page);
  if (active.id !== seeded.active || paused.id !== seeded.paused) fail(`the list's order is ${JSON.stringify([active.id, paused.id])}`);
  if (active.state !== "active" || !active.timing.startsWith("Weekdays at 08:00") || !active.timing.includes("0 8 * * 1-5 · Europe/Berlin")) {
    fail(`the active schedule shows as ${JSON.stringify(active)}`);
  }
  // 08:00 in Berlin on Tuesday 1 January 2030 is 07:00 UTC, 16:00 in Tokyo.
  if (active.next.utc !== "2030-01-01T07:00:00Z" || active.next.title !== "2030-01-01 07:00 UTC"
      || !/Jan 1, 2030/.test(active.next.text) || !/4:00\sPM/.test(active.next.text)) {
    fail(`the active schedule's next fire shows as ${JSON.stringify(active.next)}`);
  }
  if (active.lastStatus !== "failed" || !active.last.includes("Failed")) fail(`its last fire shows as ${JSON.stringify(active.last)}`);
  if (paused.state !== "paused" || !paused.timing.startsWith("Once at") || !paused.timing.includes("America/New_York")) {
    fail(`the paused schedule shows as ${JSON.stringify(paused)}`);
  }
  if (paused.next !== "Next none while paused" || paused.last !== "Last never fired") fail(`the paused schedule shows as ${JSON.stringify(paused)}`);
  await shot(page, "schedules");

  // Opened: the settings, the next five fires, and the history, newest first, with chips, reasons and links.
  await page.click(`#schedule-list li[data-id="${seeded.active}"] h2 button`);
  await page.waitForSelector("#schedule:not(.hidden)");
  await page.waitForFunction(() => document.querySelectorAll("#history-rows tr").length === 3);
  if (new URL(page.url()).hash !== `#schedules/${seeded.active}`) fail(`the address of a schedule is ${page.url()}`);
  if ((await page.textContent("#schedule-title")) !== active.task) fail("the schedule's heading is not its task");
  await stateIs(page, "active");
  if (!(await page.isVisible("#schedule-pause")) || await page.isVisible("#schedule-resume")) fail("an active schedule offers Resume");
  const settings = await page.textContent("#schedule-settings");
  for (const fact of [folder, seeded.output, "no limit", "skip: fires due while errand serve was not running are noted, not run",
    "none: each fire works straight away", "wait 1 h in the inbox"]) {
    if (!settings.includes(fact)) fail(`the settings miss ${fact}: ${settings}`);
  }
  const next = await page.$$eval("#schedule-next time", (times) => times.map((time) => time.dateTime));
  if (next.length !== 5 || next[0] !== "2030-01-01T07:00:00Z" || next[4] !== "2030-01-07T07:00:00Z") fail(`the next fires are ${JSON.stringify(next)}`);
  const history = await historyRows(page);
  const expected = [
    { time: "2026-12-02T07:00:00Z", status: "failed", manual: false, cost: "$0.0100", output: "—",
      reason: "failed after 3 tries: the model's API answered 529 overloaded", session: `#${seeded.failed_session}` },
    { time: "2026-12-01T07:00:00Z", status: "missed", manual: false, cost: "—", output: "—",
      reason: "errand serve was not running at 08:00", session: null },
    { time: "2026-11-30T07:00:00Z", status: "done", manual: false, cost: "$0.0312", output: seeded.output, reason: "—",
      session: `#${seeded.done_session}` },
  ];
  if (JSON.stringify(history) !== JSON.stringify(expected)) fail(`the history shows ${JSON.stringify(history, null, 1)}`);
  const words = await page.$$eval("#history-rows .chip", (chips) => chips.map((chip) => chip.textContent));
  if (JSON.stringify(words) !== JSON.stringify(["✗Failed", "⊘Missed", "✓Done"])) fail(`the history's chips say ${JSON.stringify(words)}`);
  await shot(page, "schedule");

  // A fire's link opens its session in the session view; the address brings the schedule back.
  await page.click(`#history-rows tr[data-fire-time="2026-11-30T07:00:00Z"] td.session a`);
  await page.waitForSelector("#session:not(.hidden)");
  await statusIs(page, "done");
  if (new URL(page.url()).hash !== `#${seeded.done_session}`) fail(`the fire's session opened at ${page.url()}`);
  await page.waitForFunction((task) => document.querySelector("#session-title").textContent === task, active.task);
  await page.evaluate((id) => { location.hash = `#schedules/${id}`; }, seeded.active);
  await page.waitForSelector("#schedule:not(.hidden)");
  await page.waitForFunction(() => document.querySelectorAll("#history-rows tr").length === 3);

  // Pause: the page says so, nothing is to come, Resume takes the button's place (and the focus).
  await page.click("#schedule-pause");
  await stateIs(page, "paused");
  await page.waitForSelector("#schedule-resume:not(.hidden)");
  if (await page.isVisible("#schedule-pause")) fail("a paused schedule still offers Pause");
  if ((await page.evaluate(() => document.activeElement.id)) !== "schedule-resume") fail("the focus did not move to Resume");
  if ((await page.textContent("#schedule-next-fire")) !== "none while paused") fail("a paused schedule shows a next fire");
  if ((await page.$$("#schedule-next li")).length) fail("a paused schedule lists next fires");
  if (!(await page.textContent("#schedule-result")).startsWith("Paused")) fail("pausing said nothing");
  await shot(page, "schedule-paused");
  await say("paused");

  await page.click("#schedule-resume");
  await stateIs(page, "active");
  await page.waitForSelector("#schedule-pause:not(.hidden)");
  await page.waitForFunction(() => document.querySelectorAll("#schedule-next li").length === 5);
  await say("resumed");

  // Run now: a fire by hand appears at the top of the history, runs the task against the scripted model and
  // ends done, with its output and its session (which joins the sidebar).
  await page.click("#schedule-run");
  await page.waitForFunction(() => document.querySelectorAll("#history-rows tr").length === 4)
    .catch(async () => fail(`Run now added no fire to the history; the page says ${await page.textContent("#schedule .session-head")}`));
  const [started] = await historyRows(page);
  if (!started.manual || !["running", "done"].includes(started.status)) fail(`the fire run by hand shows as ${JSON.stringify(started)}`);
  if (!(await page.textContent("#schedule-result")).startsWith("Started a fire")) fail("Run now said nothing");
  // The page reads the history again while the fire runs; when it did not end done, its session says why.
  await page.waitForFunction(() => {
    const row = document.querySelector("#history-rows tr");
    return row.querySelector(".chip").dataset.status === "done" && row.querySelector("td.session a");
  }).catch(async () => {
    const [fire] = await historyRows(page);
    const session = fire.session && await page.evaluate(async (url) => (await fetch(url)).text(), `/api/sessions/${fire.session.slice(1)}`);
    fail(`the fire run by hand did not end done: ${JSON.stringify(fire)}; its session: ${session}`);
  });
  const [ran] = await historyRows(page);
  if (ran.output !== seeded.output) fail(`the fire run by hand shows as ${JSON.stringify(ran)}`);
  await page.waitForFunction(() => document.querySelectorAll("#sessions li button").length === 3)
    .catch(async () => fail(`the sidebar lists ${await page.textContent("#sessions")}`));
  await shot(page, "schedule-ran");
  await page.click("#history-rows tr:first-child td.session a");
  await page.waitForSelector("#session:not(.hidden)");
  await statusIs(page, "done");
  await page.waitForFunction((task) => document.querySelector("#session-title").textContent.startsWith(task), active.task);

  // Narrow (200 % zoom): nothing overflows sideways; the history's rows become labelled cards.
  await page.click("#show-schedules");
  await page.click(`#schedule-list li[data-id="${seeded.active}"]`);
  await page.waitForFunction(() => document.querySelectorAll("#history-rows tr").length === 4);
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: viewport.width / 2, height: viewport.height / 2 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`at 200 % zoom the schedule is ${overflow} px wider than the window`);
  await page.screenshot({ path: `${shots}/desk-schedule-zoom-200.png`, fullPage: true });
  await page.setViewportSize(viewport);

  // The keyboard opens a schedule from the list; an error of the API shows as the desk's other errors do.
  await page.click("#back-to-schedules");
  await page.waitForFunction(() => document.querySelectorAll("#schedule-list li").length === 2);
  await page.focus(`#schedule-list li[data-id="${seeded.paused}"] h2 button`);
  await page.keyboard.press("Enter");
  await stateIs(page, "paused");
  if ((await page.evaluate(() => document.activeElement.id)) !== "schedule-title") fail("opening a schedule left the focus behind");
  const pausedSettings = await page.textContent("#schedule-settings");
  for (const fact of ["$0.50 per fire", "once: the latest fire missed runs, once", "each fire's plan waits in the inbox for approval",
    "wait 30 min in the inbox"]) {
    if (!pausedSettings.includes(fact)) fail(`the paused schedule's settings miss ${fact}: ${pausedSettings}`);
  }
  const none = await page.textContent("#schedule-next-empty");
  if (none !== "Paused: nothing fires until it is resumed." || !(await page.isVisible("#history-empty"))) fail(`the paused one-shot says ${none}`);
  await say("remove");
  await page.click("#schedule-resume");
  await page.waitForSelector("#schedule-error:not(.hidden)");
  const error = await page.textContent("#schedule-error");
  if (!error.includes(`no schedule matches '${seeded.paused}'`)) fail(`the error says ${JSON.stringify(error)}`);
  await shot(page, "schedule-error");
  input.close();
}

async function inputFlow(page, session) {
  await page.goto(`${base}/?token=${token}#${session}`);
  await page.waitForSelector("#approval:not(.hidden)");
  await page.click("#allow-once");
  await page.waitForSelector("#input:not(.hidden)");
  const asks = await page.textContent("#input-text");
  if (!asks.startsWith("everything asks:")) fail(`the form says ${asks}`);
  const field = (name) => `#input-fields [data-name="${name}"]`;
  if ((await page.inputValue(field("integer"))) !== "42") fail("the integer field lost its default");
  await page.fill(field("name"), "Ada Lovelace");
  await page.check(field("check"));
  await page.fill(field("email"), "not an address");
  await page.fill(field("integer"), "7");
  await page.selectOption(field("legacyTitledEnum"), { label: "Dogs" });
  await page.selectOption(field("titledMultipleSelectEnum"), [{ label: "Tuna" }, { label: "Trout" }]);
  await shot(page, "input-form");
  // The browser refuses the malformed e-mail address: nothing is sent, the form stays.
  await page.click("#input-send");
  const invalid = await page.$eval(field("email"), (e) => !e.checkValidity());
  if (!invalid) fail("a malformed e-mail address passed the form's check");
  if (await page.$("#input.hidden")) fail("the form was sent with a malformed e-mail address");
  await page.fill(field("email"), "ada@example.org");
  await page.click("#input-send");
  await page.waitForSelector("#input", { state: "hidden" });
  await statusIs(page, "done");
  const log = await page.textContent("#log");
  if (!log.includes("everything: accept (person)")) fail(`the log misses the answer: ${log}`);
  await shot(page, "input-answered");
}

// A session whose first call is the tally server's show_tally, which names a view (an MCP App built with the
// official ext-apps SDK). The flow opens the session, waits for the view, and drives it from inside its frame.
async function appsFlow(page, session) {
  const opened = Date.now();
  await page.goto(`${base}/?token=${token}#${session}`);
  await page.waitForSelector("#apps .app iframe");
  const sandbox = await page.getAttribute("#apps .app iframe", "sandbox");
  if (sandbox !== "allow-scripts") fail(`the view's frame is sandboxed as ${JSON.stringify(sandbox)}`);
  const view = page.frameLocator("#apps .app iframe");
  // 1. The handshake, then the call's input and result reach the view.
  await view.locator("body[data-result=received]").waitFor();
  console.log(`view showed the tool result ${Date.now() - opened} ms after the page was opened`);
  const label = await view.locator("#label").textContent();
  const count = await view.locator("#count").textContent();
  if (label !== "cups" || count !== "0") fail(`the view shows ${label} ${count}, not the call's input and result`);
  const frame = page.frames().find((f) => f.url().includes("/apps/"));
  if (!frame) fail("no frame loads the view from the desk's apps route");
  if (frame.url().includes("token")) fail(`the view's address carries the token: ${frame.url()}`);
  await shot(page, "app-shown");
  // 2. The view calls its server's tool: errand's gate asks the person on this page, who allows it.
  const asked = Date.now();
  await view.locator("#add").click();
  await page.waitForSelector("#approval:not(.hidden)");
  const question = await page.textContent("#approval-text");
  if (!question.includes("mcp__tally__add_to_tally") || !question.includes("a view on this page asks")) {
    fail(`the question does not name the view's call: ${question}`);
  }
  await shot(page, "app-asks");
  await page.click("#allow-once");
  await view.locator("#status", { hasText: "added" }).waitFor();
  console.log(`the view's call came back ${Date.now() - asked} ms after the click (the person's answer included)`);
  if ((await view.locator("#count").textContent()) !== "2") fail("the view did not get its call's result");
  // 3. A tool for the model only is refused to the view, before the gate.
  await view.locator("#forbidden").click();
  await view.locator("#status", { hasText: "refused" }).waitFor();
  const refused = await view.locator("#status").textContent();
  if (!refused.includes("for the model only")) fail(`the model-only tool was answered with: ${refused}`);
  // 4. Display modes: fullscreen on request, and back when the person says.
  await view.locator("#fullscreen").click();
  await page.waitForSelector("#apps .app.fullscreen");
  await view.locator("#mode", { hasText: "fullscreen" }).waitFor();
  await shot(page, "app-fullscreen");
  await page.click("#apps .app button");
  await view.locator("#mode", { hasText: "inline" }).waitFor();
  if (await page.$("#apps .app.fullscreen")) fail("the view stayed full screen");
  // 5. A window that is not one of the desk's view frames (here a plain frame of the page's own) is not
  // listened to: it gets no answer, and its call reaches neither the gate nor the server.
  await page.evaluate(() => { const f = document.createElement("iframe"); f.name = "intruder"; document.body.append(f); });
  const intruder = page.frame({ name: "intruder" });
  await intruder.evaluate(() => {
    window.replies = [];
    addEventListener("message", (m) => window.replies.push(m.data));
    parent.postMessage({ jsonrpc: "2.0", id: 1, method: "ping" }, "*");
    parent.postMessage({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "add_to_tally", arguments: { amount: 100 } } }, "*");
  });
  // 6. What the view must not reach: the desk's API, its page, storage and cookie; and what errand does not host.
  await view.locator("#probe").click();
  await view.locator("#probed", { hasText: "openLink" }).waitFor();
  const probed = JSON.parse(await view.locator("#probed").textContent());
  console.log(`the view's probes: ${JSON.stringify(probed)}`);
  for (const [what, outcome] of Object.entries(probed)) {
    if (!outcome.startsWith("refused")) fail(`the view reached ${what}: ${outcome}`);
  }
  await shot(page, "app-probed");
  // The view's probes went back and forth through the page since the other window wrote: it would have its
  // answers by now.
  const replies = await intruder.evaluate(() => window.replies);
  if (replies.length) fail(`a window that is no view's frame got answers: ${JSON.stringify(replies)}`);
  if (!(await page.$("#approval.hidden"))) fail("a window that is no view's frame had a call put to the person");
  // 7. A view that navigates its frame away loses the desk: the frame is closed.
  await view.locator("#leave").click();
  await page.waitForSelector("#apps .app .problem");
  if (await page.$("#apps .app iframe")) fail("the frame stayed after its view navigated away");
}

try {
  // The schedules are shown in the person's time zone: one far from UTC and from the schedules' own.
  const page = await browser.newPage(flow === "schedules" ? { timezoneId: "Asia/Tokyo", locale: "en-US" } : {});
  page.setDefaultTimeout(15000);
  // An exception in the page or a Content-Security-Policy refusal fails the flows. (Other console errors are
  // expected: the task flow fetches a file after undo removed it.)
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const refusedInViews = [];
  page.on("console", (message) => {
    if (message.type() !== "error" || !/Content Security Policy|Refused to/.test(message.text())) return;
    // An MCP App's view is refused on purpose when it reaches beyond its policy; the desk itself never is.
    if (message.location().url.includes("/apps/")) refusedInViews.push(message.text());
    else problems.push(message.text());
  });
  if (flow === "task") await taskFlow(page, target);
  else if (flow === "follow") await followFlow(page, target);
  else if (flow === "input") await inputFlow(page, target);
  else if (flow === "agents") await agentsFlow(page, target);
  else if (flow === "agents-many") await manyAgentsFlow(page, target);
  else if (flow === "schedules") await schedulesFlow(page, target);
  else if (flow === "apps") await appsFlow(page, target);
  else fail(`no flow named ${flow}; use task, follow, input, agents, agents-many, schedules or apps`);
  // The view's fetch of the desk's API was stopped by its policy, before any request left the browser.
  if (flow === "apps" && !refusedInViews.some((text) => text.includes("connect-src"))) {
    fail(`the view's fetch was not refused by its connect-src policy: ${JSON.stringify(refusedInViews)}`);
  }
  if (problems.length) fail(`the page reported problems:\n${problems.join("\n")}`);
  console.log(`desk ${flow} flow passed`);
} finally {
  await browser.close();
}
