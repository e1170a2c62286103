"use strict";
const $ = (id) => document.getElementById(id);
const api = async (method, path, body) => {
  const response = await fetch(path, {
    method, headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined, credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
};
const show = (id) => {
  ["composer", "session", "schedules", "schedule", "trash", "inbox"].forEach((s) => $(s).classList.toggle("hidden", s !== id));
  // The sidebar marks the session shown, and none while another view is.
  if (id !== "session") {
    for (const open of $("sessions").querySelectorAll("button.current")) { open.classList.remove("current"); open.removeAttribute("aria-current"); }
  }
  if (id === "schedules" || id === "schedule") $("show-schedules").setAttribute("aria-current", "page");
  else $("show-schedules").removeAttribute("aria-current");
};
const text = (tag, content, cls) => { const e = document.createElement(tag); e.textContent = content; if (cls) e.className = cls; return e; };
const bytes = (n) => n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
const fileUrl = (session, path) => `/api/sessions/${session}/file?path=${encodeURIComponent(path)}`;

// The token arrives once in the address (errand serve --open); the server turned it into a cookie.
if (location.search.includes("token=")) history.replaceState(null, "", location.pathname + location.hash);

// ---- Status: every state has an icon and a word as well as its colour. ----
const STATUS = {
  running: ["◌", "Running"], waiting: ["?", "Waiting for you"], done: ["✓", "Done"], failed: ["✗", "Failed"],
  rejected: ["✗", "Plan rejected"], stopped: ["■", "Stopped at a limit"], cancelled: ["■", "Cancelled"],
  // A schedule's fires, and the schedule itself.
  missed: ["⊘", "Missed"], skipped: ["↷", "Skipped"], active: ["↻", "Active"], paused: ["‖", "Paused"],
};
function chip(element, status, detail) {
  const [icon, word] = STATUS[status] || ["•", status];
  element.dataset.status = STATUS[status] ? status : "other";
  const mark = text("span", icon);
  mark.setAttribute("aria-hidden", "true");
  element.replaceChildren(mark, detail ? `${word}: ${detail}` : word);
  return element;
}
// One formatter for the page: toLocaleString with options builds a new one per call, which with hundreds of
// sessions in the sidebar (a task's agents are sessions too) was the list's main cost.
const stamps = new Intl.DateTimeFormat([], { dateStyle: "medium", timeStyle: "short" });
const when = (stamp) => {
  const date = new Date(stamp);
  return Number.isNaN(date.getTime()) ? stamp : stamps.format(date);
};

async function loadSessions() {
  // Fetch first, then swap the list in one go: no flicker, no moment with an empty list.
  const items = [], found = await api("GET", "/api/sessions"), sessionShown = !$("session").classList.contains("hidden");
  for (const s of found) {
    const item = document.createElement("li");
    const open = document.createElement("button");
    open.dataset.id = s.id;
    const shown = sessionShown && s.id === current;
    open.classList.toggle("current", shown);
    if (shown) open.setAttribute("aria-current", "page");
    // Long tasks are cut to two lines; the whole task is the tooltip and the accessible name.
    const title = text("span", s.task, "clamp");
    open.title = s.task;
    const meta = text("span", "", "when");
    meta.append(chip(text("span", "", "chip small"), s.status), ` ${when(s.created_at)}`);
    open.append(title, meta);
    open.onclick = () => openSession(s.id);
    item.append(open);
    items.push(item);
  }
  if (!items.length) items.push(text("li", "No sessions yet: start one with New task.", "hint"));
  $("sessions").replaceChildren(...items);
}

// ---- The inbox: questions sessions with no one attached wait on, answered here or from any shell. ----
async function loadInbox(list) {
  const pending = await api("GET", "/api/inbox");
  $("inbox-count").textContent = String(pending.length);
  $("inbox-count").classList.toggle("some", pending.length > 0);
  if (!list) return;
  const items = pending.map((q) => {
    const what = q.kind === "approval" ? `${q.subject} ${JSON.stringify(q.body.input || {})}`
      : q.kind === "plan" ? `plan: ${q.subject}` : `${q.subject} asks for input`;
    const item = text("li", `${what} · ${q.task} · since ${when(q.asked_at)} `);
    if (q.reason) item.append(text("span", q.reason, "hint"), " ");
    const answer = (label, path, body) => {
      const button = text("button", label);
      button.onclick = async () => {
        try { await api("POST", path, body); await loadInbox(true); } catch (error) { $("inbox-result").textContent = error.message; }
      };
      item.append(button, " ");
    };
    const calls = `/api/sessions/${q.session_id}/approvals/${encodeURIComponent(q.request_id)}`;
    if (q.kind === "approval") { answer("Allow", calls, { answer: "allow_once" }); answer("Deny", calls, { answer: "deny", reason: null }); }
    if (q.kind === "plan") { answer("Approve", `/api/sessions/${q.session_id}/plan`, { answer: "approve" }); answer("Reject", `/api/sessions/${q.session_id}/plan`, { answer: "reject" }); }
    const open = text("button", "Open session");
    open.onclick = () => openSession(q.session_id);
    item.append(open);
    return item;
  });
  if (!items.length) items.push(text("li", "Nothing is waiting for an answer.", "status"));
  $("inbox-list").replaceChildren(...items);
}
$("show-inbox").onclick = async (e) => {
  e.preventDefault();
  show("inbox");
  $("inbox-result").textContent = "";
  try { await loadInbox(true); } catch (error) { $("inbox-result").textContent = error.message; }
};
// Other processes put questions in the inbox: the count is refreshed now and then, not only on this page's doing.
setInterval(() => loadInbox(!$("inbox").classList.contains("hidden")).catch(() => {}), 5000);

// ---- The log: kept as data (one entry per line), with only the blocks near the viewport in the DOM. ----
// A session can run to tens of thousands of events; rendering each as a node would make the page crawl.
// Entries are grouped in blocks of BLOCK; a block off screen is an empty element as tall as it was (or, if
// never drawn, as tall as its entries are on average). MARGIN is how far beyond the viewport blocks are drawn.
const BLOCK = 100, ESTIMATE = 22, MARGIN = 1500, FOLLOW_SLACK = 40;
const log = $("log");
let entries = [], blocks = [], following = true, flushPending = false, folders = [], agentsCounted = true, outputsDirty = false;
const dirty = new Set(), agentsDirty = new Set(), measured = { height: 0, entries: 0 };
const perEntry = () => measured.entries ? measured.height / measured.entries : ESTIMATE;
const observer = new IntersectionObserver((records) => {
  // Measure every leaving block before changing any, so the layout is computed once.
  const leaving = records.filter((r) => !r.isIntersecting && r.target.block.rendered)
    .map((r) => [r.target.block, r.target.getBoundingClientRect().height]);
  for (const [block, height] of leaving) unrender(block, height);
  for (const r of records) if (r.isIntersecting && !r.target.block.rendered) render(r.target.block);
  if (following) schedule();
}, { root: log, rootMargin: `${MARGIN}px 0px` });

function resetLog() {
  observer.disconnect();
  entries = []; blocks = []; following = true; dirty.clear(); agentsDirty.clear(); outputsDirty = false;
  measured.height = measured.entries = 0;
  log.replaceChildren();
  $("latest").classList.add("hidden");
}
function addEntry(entry) {
  entry.index = entries.length;
  entry.node = null;
  entries.push(entry);
  let block = blocks[blocks.length - 1];
  if (!block || block.count === BLOCK) {
    const element = document.createElement("div");
    element.className = "block";
    // A new block at the bottom is drawn at once only when the person is there to see it.
    block = { start: entry.index, count: 0, drawn: 0, element, rendered: following || blocks.length === 0, height: 0 };
    element.block = block;
    blocks.push(block);
    log.append(element);
    observer.observe(element);
  }
  block.count++;
  if (!block.rendered) { block.height += perEntry(); block.element.style.height = `${block.height}px`; }
  touch(entry);
  return entry;
}
const blockOf = (entry) => blocks[Math.floor(entry.index / BLOCK)];
function touch(entry) { dirty.add(entry); schedule(); }
function schedule() { if (!flushPending) { flushPending = true; requestAnimationFrame(flush); } }
// Once per frame: draw what changed since the last frame (many events, one layout), then follow the end.
function flush() {
  flushPending = false;
  const skipped = following ? skipFarBlocks() : [];
  for (const entry of dirty) {
    const block = blockOf(entry);
    if (!block.rendered) continue;
    if (entry.node) redraw(entry); else { block.element.append(draw(entry)); block.drawn++; }
  }
  dirty.clear();
  // Agents' blocks change in place (status, usage, new lines); one not in the page is drawn from its data later.
  for (const agent of agentsDirty) refreshAgent(agent);
  agentsDirty.clear();
  if (!agentsCounted && view) showAgents(view);
  if (outputsDirty && view) { outputsDirty = false; showOutputs(view); }
  if (skipped.length) sizeSkipped(skipped);
  if (following) log.scrollTop = log.scrollHeight;
  log.dataset.entries = entries.length;
}
// The view is about to go to the end: a block far above the end with nothing drawn yet (a burst of events,
// a replay) is only sized, not drawn, rather than drawn now and dropped by the observer a frame later.
function skipFarBlocks() {
  const skipped = [];
  let room = log.clientHeight + MARGIN;
  for (let b = blocks.length - 1; b >= 0; b--) {
    const block = blocks[b];
    if (room <= 0) {
      if (block.rendered && block.drawn === 0) { unrender(block, 0, false); skipped.push(block); }
      else if (!block.rendered || block.drawn === block.count) break;
    }
    room -= block.count * perEntry();
  }
  return skipped;
}
// Skipped blocks get the height their entries would have by the average of the entries just drawn at the end
// (the same kind of session, so the scrollbar tells the truth). Costs one layout of the few drawn blocks.
function sizeSkipped(skipped) {
  let height = 0, count = 0;
  for (let b = blocks.length - 1; b >= 0 && count < 2 * BLOCK; b--) {
    const block = blocks[b];
    if (block.rendered && block.drawn === block.count) { height += block.element.offsetHeight; count += block.count; }
  }
  if (count && !measured.entries) { measured.height = height; measured.entries = count; }
  const each = count ? height / count : perEntry();
  for (const block of skipped) { block.height = block.count * each; block.element.style.height = `${block.height}px`; }
}
function render(block) {
  const fragment = document.createDocumentFragment();
  for (let i = block.start; i < block.start + block.count; i++) fragment.append(draw(entries[i]));
  block.element.replaceChildren(fragment);
  block.element.style.height = "";
  block.rendered = true;
  block.drawn = block.count;
}
function unrender(block, height, wasDrawn = true) {
  if (wasDrawn) { measured.height += height; measured.entries += block.count; }
  block.height = height;
  block.drawn = 0;
  block.element.style.height = `${height}px`;
  for (let i = block.start; i < block.start + block.count; i++) entries[i].node = null;
  block.element.replaceChildren();
  block.rendered = false;
}
log.addEventListener("scroll", () => {
  following = log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOW_SLACK;
  $("latest").classList.toggle("hidden", following);
}, { passive: true });
$("latest").onclick = () => { following = true; log.scrollTop = log.scrollHeight; schedule(); };

const shortPath = (path) => {
  for (const folder of folders) if (path.startsWith(folder + "/")) return path.slice(folder.length + 1);
  return path;
};
function draw(entry) {
  let node;
  if (entry.kind === "text") {
    node = text("pre", "", "text");
    node.append(document.createTextNode(entry.text));
    entry.drawn = entry.text.length;
  } else if (entry.kind === "note") {
    node = text("div", entry.text, `line note ${entry.cls || ""}`);
  } else {
    // Tool calls and file changes: one line that opens to the details, fetched on first opening.
    const details = document.createElement("details");
    details.className = entry.kind;
    details.append(document.createElement("summary"), text("div", "", "detail"));
    details.addEventListener("toggle", () => {
      entry.open = details.open;
      if (details.open) (entry.kind === "tool" ? openCall : openChange)(entry, details);
    });
    fillSummary(entry, details);
    if (entry.open) details.open = true;
    node = details;
    if (entry.agent) {
      // A `task` call that started an agent: the agent's block sits under the call's line.
      node = text("div", "", "agent-call");
      node.append(details, drawAgent(entry.agent));
    }
  }
  node.classList.add("entry");
  node.dataset.index = entry.index;
  entry.node = node;
  return node;
}
function redraw(entry) {
  if (entry.kind === "text") {
    // Only the new text goes into the DOM: appending to the text node, not rewriting it.
    entry.node.firstChild.appendData(entry.text.slice(entry.drawn));
    entry.drawn = entry.text.length;
  } else if (entry.agent && !entry.node.classList.contains("agent-call")) {
    // The agent started after the call's line was drawn: the line is drawn again, with the agent's block.
    entry.node.replaceWith(draw(entry));
  } else if (entry.kind !== "note") fillSummary(entry, callNode(entry));
}
// A tool entry's own line: the entry's node, or its first child when an agent's block is drawn under it.
const callNode = (entry) => entry.node.classList.contains("agent-call") ? entry.node.firstChild : entry.node;
// One tool call as a line of text: done or not, the tool, and its summary (or what it works on so far).
function callText(call) {
  const mark = call.finished ? (call.is_error ? "✗" : "✓") : "…";
  const what = call.finished ? call.summary
    : call.progress || (call.input && typeof call.input.path === "string" ? call.input.path : "running");
  return `${mark} ${call.tool} · ${what}`;
}
function fillSummary(entry, node) {
  const summary = node.firstChild;
  if (entry.kind === "tool") {
    summary.textContent = callText(entry);
    node.classList.toggle("failed", !!entry.is_error);
    return;
  }
  summary.replaceChildren(`${entry.change} `);
  if (entry.from) summary.append(`${shortPath(entry.from)} → `);
  if (entry.change === "deleted") {
    summary.append(text("span", shortPath(entry.path)));
    if (entry.trash_id) summary.append(` (in the trash: ${entry.trash_id})`);
  } else {
    const link = text("a", shortPath(entry.path), "file");
    link.href = fileUrl(current, entry.path);
    link.target = "_blank";
    link.title = entry.path;
    link.onclick = (e) => {
      // A plain click previews in the page; a modified or middle click keeps the browser's own meaning.
      if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      openPreview(entry.path, link);
    };
    summary.append(link);
  }
}
// The inner pieces of a detail (input, output, diff) are built from data, with textContent only.
function valueBlock(value) {
  return text("pre", typeof value === "string" ? value : JSON.stringify(value, null, 2));
}
function inputBlock(input) {
  // Each argument on its own: a file's content reads as text, not as one escaped JSON string.
  if (!input || typeof input !== "object" || Array.isArray(input)) return valueBlock(input);
  const list = document.createElement("dl");
  list.className = "input";
  for (const [key, value] of Object.entries(input)) {
    const item = document.createElement("dd");
    item.append(valueBlock(value));
    list.append(text("dt", key), item);
  }
  return list;
}
function showCall(entry, node) {
  const detail = node.lastChild;
  const call = entry.call;
  const parts = [text("h3", "Input"), inputBlock(call ? call.input : entry.input)];
  parts.push(text("h3", call && call.is_error ? "Output (error)" : "Output"));
  if (entry.callError) parts.push(text("p", entry.callError, "status error"));
  else if (!call) parts.push(text("p", "loading…", "status"));
  else if (call.output === null) parts.push(text("p", "no output yet", "status"));
  else parts.push(text("pre", call.output, call.is_error ? "output error" : "output"));
  detail.replaceChildren(...parts);
}
async function openCall(entry, node) {
  showCall(entry, node);
  if (entry.call && entry.call.output !== null) return;
  const session = current;
  try {
    entry.call = await api("GET", `/api/sessions/${session}/calls/${encodeURIComponent(entry.call_id)}`);
    entry.callError = null;
  } catch (error) { entry.callError = `cannot load this call: ${error.message}`; }
  if (entry.node && session === current) showCall(entry, callNode(entry));
}
function showChange(entry, node) {
  const detail = node.lastChild, diff = entry.diff;
  if (entry.diffError) return detail.replaceChildren(text("p", entry.diffError, "status error"));
  if (!diff) return detail.replaceChildren(text("p", "loading…", "status"));
  const says = {
    binary: `binary content (${bytes(diff.size || 0)}), no text diff`,
    unchanged: "the content is the same as before",
    unrecorded: "errand stopped during this change, so its result was never recorded",
    none: "no content change recorded (a folder, a link, or nothing changed)",
  };
  if (diff.kind !== "text") return detail.replaceChildren(text("p", says[diff.kind] || diff.kind, "status"));
  const pre = document.createElement("pre");
  pre.className = "diff";
  for (const line of diff.diff.split("\n")) {
    if (line === "") continue;
    const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+++") || line.startsWith("---") ? "hunk"
      : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
    pre.append(text("span", line, cls));
  }
  detail.replaceChildren(pre);
  if (diff.truncated) detail.append(text("p", `the diff is cut; it has ${diff.lines} lines in all`, "status"));
}
async function openChange(entry, node) {
  showChange(entry, node);
  if (entry.diff) return;
  const session = current;
  try {
    entry.diff = await api("GET", `/api/sessions/${session}/diff?path=${encodeURIComponent(entry.path)}`);
    entry.diffError = null;
  } catch (error) { entry.diffError = `cannot load the diff: ${error.message}`; }
  if (entry.node && session === current) showChange(entry, entry.node);
}

// ---- The preview panel: a produced file shown in the page. ----
let previewFrom = null, previewAsked = 0;
async function openPreview(path, from) {
  const asked = ++previewAsked, session = current, url = fileUrl(session, path);
  previewFrom = from;
  $("preview-title").textContent = shortPath(path);
  $("preview-title").title = path;
  $("preview-download").href = `${url}&download=1`;
  $("preview-body").replaceChildren(text("p", "loading…", "status"));
  $("preview").classList.remove("hidden");
  $("preview-close").focus();
  let preview;
  try { preview = await api("GET", `/api/sessions/${session}/preview?path=${encodeURIComponent(path)}`); }
  catch (error) { preview = { kind: "failed", message: error.message }; }
  // A later click wins over a slow answer to an earlier one.
  if (asked !== previewAsked) return;
  const body = $("preview-body");
  body.replaceChildren();
  if (preview.kind === "markdown") {
    // The server renders markdown with raw HTML escaped and unsafe links dropped; the page's CSP runs no script.
    const article = document.createElement("article");
    article.className = "markdown";
    article.innerHTML = preview.html;
    for (const link of article.querySelectorAll("a[href]")) { link.target = "_blank"; link.rel = "noopener"; }
    body.append(article);
  } else if (preview.kind === "table") {
    for (const sheet of preview.sheets) {
      if (preview.sheets.length > 1 || sheet.name) body.append(text("h3", sheet.name));
      body.append(table(sheet.rows));
      if (sheet.truncated) body.append(text("p", `showing part of it: ${sheet.total_rows} rows × ${sheet.total_columns} columns in all`, "status"));
    }
  } else if (preview.kind === "text") {
    body.append(text("pre", preview.text));
  } else if (preview.kind === "image") {
    const image = document.createElement("img");
    image.src = url; image.alt = shortPath(path);
    body.append(image);
  } else if (preview.kind === "pdf") {
    const frame = document.createElement("iframe");
    frame.src = url; frame.title = shortPath(path);
    body.append(frame);
  } else if (preview.kind === "binary") {
    body.append(text("p", `No preview for this file (${bytes(preview.size || 0)}); use Download.`, "status"));
  } else {
    body.append(text("p", `Cannot preview this file: ${preview.message || preview.kind}`, "status error"));
  }
  if (preview.truncated) body.append(text("p", "the preview is cut; download the file for all of it", "status"));
}
function table(rows) {
  const element = document.createElement("table");
  const [head, ...rest] = rows;
  if (head) {
    const row = document.createElement("tr");
    for (const cell of head) row.append(text("th", cell));
    element.createTHead().append(row);
  }
  const tbody = element.createTBody();
  for (const cells of rest) {
    const row = document.createElement("tr");
    for (const cell of cells) row.append(text("td", cell));
    tbody.append(row);
  }
  return element;
}
function closePreview() {
  if ($("preview").classList.contains("hidden")) return;
  previewAsked++;
  $("preview").classList.add("hidden");
  $("preview-body").replaceChildren();
  if (previewFrom && previewFrom.isConnected) previewFrom.focus();
  previewFrom = null;
}
$("preview-close").onclick = closePreview;
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closePreview(); });

// ---- One session: its events, replayed from the start, drive the page. ----
let source = null, current = null, pendingCall = null, pendingInput = null;

// ---- A server's request for input: one control per field, typed as the server asked. ----
const TEXT_TYPES = { email: "email", uri: "url", date: "date", "date-time": "datetime-local" };
function fieldControl(field) {
  const kind = field.kind.type;
  const label = text("label", `${field.title || field.name}${field.required ? " *" : ""} `);
  let control;
  if (kind === "boolean") {
    control = document.createElement("input");
    control.type = "checkbox";
    control.checked = field.default === true;
  } else if (kind === "choice" || kind === "choices") {
    control = document.createElement("select");
    control.multiple = kind === "choices";
    if (kind === "choice" && !field.required) control.append(text("option", "—"));
    const chosen = [].concat(field.default ?? []);
    for (const option of field.kind.options) {
      const element = text("option", option.label);
      element.value = option.value;
      element.selected = chosen.includes(option.value);
      control.append(element);
    }
    if (kind === "choice" && !field.required && !chosen.length) control.firstChild.value = "";
  } else {
    control = document.createElement("input");
    control.type = kind === "number" || kind === "integer" ? "number" : (TEXT_TYPES[field.kind.format] || "text");
    if (kind === "integer") control.step = "1";
    if (kind === "number") control.step = "any";
    if (field.default !== undefined && field.default !== null) control.value = String(field.default);
  }
  control.dataset.name = field.name;
  if (field.required && kind !== "boolean") control.required = true;
  label.append(control);
  if (field.description) label.append(text("span", ` ${field.description}`, "status"));
  return label;
}
// The answer as the server expects it: numbers as numbers, yes/no as booleans, choices as their values.
function inputContent() {
  const content = {};
  for (const field of pendingInput.fields) {
    const control = $("input-fields").querySelector(`[data-name="${CSS.escape(field.name)}"]`);
    const kind = field.kind.type;
    if (kind === "boolean") content[field.name] = control.checked;
    else if (kind === "choices") content[field.name] = [...control.selectedOptions].map((o) => o.value);
    else if (control.value === "") continue;
    else if (kind === "number" || kind === "integer") content[field.name] = Number(control.value);
    else content[field.name] = control.value;
  }
  return content;
}
// ---- One session's view: what its events said so far. ----
let view = null;
const problem = (id, message) => { $(id).textContent = message || ""; $(id).classList.toggle("hidden", !message); };
function newView(id) {
  return {
    id, textEntry: null, calls: new Map(), outputs: new Map(), steps: [], proposed: null, current: null,
    requests: 0, priced: 0, unpriced: 0, tokens: 0, cost: 0, running: false, ended: null, asking: new Set(),
    record: null, undoneAt: null, folders: [], agents: new Map(), queue: [], streams: new Set(), usageTimer: null,
    apps: new Map(),
  };
}
const line = (v, entry) => { v.textEntry = null; return addEntry(entry); };
function showStatus(v) {
  if (v.ended) chip($("session-status"), v.ended.status, v.ended.reason);
  else if (v.running && v.asking.size) chip($("session-status"), "waiting");
  else if (v.running || !v.record) chip($("session-status"), "running");
  else chip($("session-status"), v.record.status, v.record.status_detail);
  $("stop").classList.toggle("hidden", !v.running);
  // Steering is for a task at work; a finished one is continued with a follow-up instead.
  $("steer-row").classList.toggle("hidden", !v.running);
  $("follow-up-row").classList.toggle("hidden", v.running || !v.record);
  const changes = v.record ? v.record.changes : 0;
  $("undo").classList.toggle("hidden", v.running || !changes || !!v.undoneAt);
  $("session-undone").textContent = v.undoneAt ? `↶ Undone ${when(v.undoneAt)}` : "";
  $("session-undone").classList.toggle("hidden", !v.undoneAt);
}
// The tokens and cost of a session or an agent, from its Usage events.
function countUsage(u, e) {
  u.requests++;
  u.tokens += e.input_tokens + e.output_tokens + e.cache_read_tokens + e.cache_write_tokens;
  if (e.cost_usd === null || e.cost_usd === undefined) u.unpriced++; else { u.priced++; u.cost += e.cost_usd; }
}
function costText(u) {
  if (!u.requests) return "none yet";
  const tokens = `${u.tokens.toLocaleString()} tokens`;
  // A request without a known price (a local model, a model missing from the price table) is never $0.
  const dollars = `$${u.cost.toFixed(4)}`;
  return !u.priced ? `cost unknown · ${tokens}` : u.unpriced ? `${dollars} + unknown · ${tokens}` : `${dollars} · ${tokens}`;
}
function showCost(v) { $("session-usage").textContent = costText(v); }
// ---- The usage panel: the session's ledger from the API, its agents' requests included, by tool and by agent.
// Fetched when the session opens and ends, and at most once a second while its Usage events come in.
const tokensOf = (g) => g.input_tokens + g.output_tokens + g.cache_read_tokens + g.cache_write_tokens;
const usageCost = (g) => g.cost_usd === null || g.cost_usd === undefined ? (g.unpriced_requests ? "unknown" : "$0")
  : `$${g.cost_usd.toFixed(4)}${g.unpriced_requests ? " + unknown" : ""}`;
function usageSoon(v) { if (v && !v.usageTimer) v.usageTimer = setTimeout(() => refreshUsage(v), 1000); }
async function refreshUsage(v) {
  clearTimeout(v.usageTimer); v.usageTimer = null;
  try {
    const usage = await api("GET", `/api/sessions/${v.id}/usage`);
    if (view === v) showUsage(usage);
  } catch (error) { if (view === v) problem("session-error", `cannot load this session's usage: ${error.message}`); }
}
function usageTable(caption, cls, rows) {
  const element = table(rows);
  element.className = `usage-table ${cls}`;
  element.createCaption().textContent = caption;
  return element;
}
function showUsage(u) {
  const t = u ? u.totals : { requests: 0 };
  $("usage-empty").classList.toggle("hidden", t.requests > 0);
  $("usage-facts").classList.toggle("hidden", !t.requests);
  $("usage-count").textContent = !t.requests ? "· none yet" : [`${t.requests.toLocaleString()} request${t.requests === 1 ? "" : "s"}`,
    `${tokensOf(t).toLocaleString()} tokens`, usageCost(t), u.cache_share ? `${Math.round(u.cache_share * 100)} % from cache` : ""]
    .filter(Boolean).map((part) => `· ${part}`).join(" ");
  if (!t.requests) {
    $("usage-facts").replaceChildren(); $("usage-breakdown").replaceChildren(); problem("usage-notes", "");
    return;
  }
  const share = u.cache_share === null ? "none" : `${Math.round(u.cache_share * 100)} % of input`;
  const facts = [["Cost", usageCost(t)], ["Input", t.input_tokens], ["Output", t.output_tokens],
    ["Cache read", t.cache_read_tokens], ["Cache write", t.cache_write_tokens], ["Cache share", share]];
  $("usage-facts").replaceChildren(...facts.flatMap(([name, value]) =>
    [text("dt", name), text("dd", typeof value === "number" ? `${value.toLocaleString()} tokens` : value)]));
  const tools = u.by_tool.map((g) => [g.key === null ? "(no tool)" : g.key, g.requests.toLocaleString(),
    g.calls === null ? "" : g.calls.toLocaleString(), tokensOf(g).toLocaleString(), usageCost(g)]);
  const agents = u.by_agent.map((g) => [g.agent === null ? "lead" : g.agent, g.key, g.requests.toLocaleString(),
    tokensOf(g).toLocaleString(), usageCost(g)]);
  $("usage-breakdown").replaceChildren(
    usageTable("By tool (whose results a request carried)", "by-tool", [["Tool", "Requests", "Calls", "Tokens", "Cost"], ...tools]),
    usageTable("By agent", "by-agent", [["Agent", "Session", "Requests", "Tokens", "Cost"], ...agents]));
  problem("usage-notes", u.notes.join(" "));
}
const STEP_MARKS = { done: "✓", in_progress: "▶", pending: "○", skipped: "–", proposed: "·" };
function showProgress(v) {
  const steps = v.steps.length ? v.steps : (v.proposed ? v.proposed.steps.map((step) => ({ text: step, status: "proposed" })) : []);
  $("progress-empty").classList.toggle("hidden", steps.length > 0);
  $("progress-summary").textContent = v.proposed ? v.proposed.summary : "";
  const done = steps.filter((step) => step.status === "done" || step.status === "skipped").length;
  $("progress-count").textContent = !steps.length ? "" : !v.steps.length ? `· proposed, ${steps.length} steps`
    : `· ${done} of ${steps.length} done`;
  $("checklist").replaceChildren(...steps.map((step, index) => {
    const item = text("li", "", step.status);
    const mark = text("span", STEP_MARKS[step.status] || "·", "mark");
    mark.setAttribute("aria-hidden", "true");
    const words = text("span", step.text);
    if (index === v.current) {
      item.classList.add("current");
      item.setAttribute("aria-current", "step");
      words.append(text("span", " (now)", "visually-hidden"));
    }
    if (step.status === "done") words.append(text("span", " (done)", "visually-hidden"));
    if (step.note) words.append(text("span", step.note, "note"));
    item.append(mark, words);
    return item;
  }));
}
function showOutputs(v) {
  const undone = !!v.undoneAt;
  $("outputs-empty").classList.toggle("hidden", v.outputs.size > 0);
  $("outputs-count").textContent = v.outputs.size ? `· ${v.outputs.size} file${v.outputs.size === 1 ? "" : "s"}${undone ? ", undone" : ""}` : "";
  $("outputs-list").replaceChildren(...[...v.outputs.values()].map((output) => {
    const item = document.createElement("li");
    item.dataset.path = output.path;
    const change = undone ? "undone" : output.change;
    const gone = undone || output.change === "deleted";
    item.classList.toggle("gone", gone);
    const badge = text("span", { created: "+ created", modified: "✎ modified", moved: "→ moved", deleted: "✗ deleted", undone: "↶ undone" }[change] || change, `chip small change-${change}`);
    const head = text("div", "", "head");
    head.append(text("span", shortPath(output.path), "name"), badge);
    const actions = text("span", "", "actions");
    if (!gone) {
      const preview = text("button", "Preview", "preview");
      preview.onclick = () => openPreview(output.path, preview);
      const download = text("a", "Download");
      download.href = `${fileUrl(v.id, output.path)}&download=1`;
      actions.append(preview, download);
    }
    // "Show in folder": the full path, selectable and copyable, since a browser cannot open a file manager.
    const path = document.createElement("input");
    path.type = "text"; path.readOnly = true; path.value = output.path;
    path.setAttribute("aria-label", `Full path of ${shortPath(output.path)}`);
    path.onfocus = () => path.select();
    const copy = text("button", "Copy path", "copy");
    copy.onclick = async () => {
      path.select();
      try { await navigator.clipboard.writeText(output.path); copy.textContent = "Copied ✓"; }
      catch { copy.textContent = "Selected: press Ctrl+C"; }
    };
    actions.append(copy);
    head.append(actions);
    item.append(head, path);
    if (output.from) item.append(text("div", `moved from ${shortPath(output.from)}`, "hint"));
    if (gone && output.trash_id && !undone) item.append(text("div", `in the trash: ${output.trash_id}`, "hint"));
    return item;
  }));
}
// The outputs panel keeps one row per file, under its latest name: the session's own changes and its agents'.
// It is drawn again once per frame, however many agents changed files in it.
function noteOutput(v, e) {
  const earlier = v.outputs.get(e.from || e.path);
  if (e.from) v.outputs.delete(e.from);
  const change = earlier && earlier.change === "created" && e.change !== "deleted" ? "created" : e.change;
  v.outputs.set(e.path, { path: e.path, change, from: e.from || (earlier && earlier.from), trash_id: e.trash_id });
  outputsDirty = true;
  schedule();
}
async function refreshRecord(v) {
  try {
    const shown = await api("GET", `/api/sessions/${v.id}`);
    if (view !== v) return;
    v.record = shown.session;
    v.undoneAt = shown.session.undone_at;
    $("session-model").textContent = shown.session.model;
    $("session-time").textContent = when(shown.session.created_at) + (v.took ? ` · took ${v.took}` : "");
    if (!v.folders.length) $("session-folders").textContent = (shown.session.folders || []).map((f) => f.path + (f.read_only ? " (read-only)" : "")).join(", ");
    if (!$("session-title").textContent || $("session-title").textContent === v.id) $("session-title").textContent = shown.session.task;
    showStatus(v); showOutputs(v);
  } catch (error) { problem("session-error", `cannot load this session: ${error.message}`); }
}
const seconds = (ms) => ms < 60000 ? `${Math.round(ms / 1000)} s` : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;

// ---- Sub-agents: each a block under the `task` call that started it, fed by the agent's own event stream. ----
// Over HTTP/1.1 a browser keeps at most six connections to one server, and an open EventSource holds one: the
// lead's stream and AGENT_STREAMS agents' leave one for the page's requests. The other agents wait in line, in
// the order they started (a block the person opens goes first), and replay their events when their turn comes.
// Blocks are drawn closed, and an agent's lines are drawn only once its block is opened, then appended as they
// come: a task of hundreds of agents is hundreds of one-line blocks.
const AGENT_STREAMS = 4;
const PLAN_TOOLS = ["propose_plan", "update_plan"];
function startAgent(v, e, parent) {
  const agent = {
    id: e.child_session, name: e.agent, status: "running", ended: false, asking: new Set(), lines: [], calls: new Map(),
    toolCalls: 0, requests: 0, priced: 0, unpriced: 0, tokens: 0, cost: 0, node: null, open: false, drawn: 0,
    changed: new Set(), source: null, loaded: false, seq: 0, retries: 0, description: "",
  };
  v.agents.set(agent.id, agent);
  if (parent) {
    let call = parent.calls.get(e.call_id);
    if (!call) parent.calls.set(e.call_id, call = agentLine(parent, { kind: "tool", tool: "task", call_id: e.call_id, input: null }));
    agent.description = describeTask(call.input);
    call.agent = agent;
    parent.changed.add(call);
    touchAgent(parent);
  } else {
    let entry = v.calls.get(e.call_id);
    if (!entry) v.calls.set(e.call_id, entry = line(v, { kind: "tool", call_id: e.call_id, tool: "task", input: null }));
    agent.description = describeTask(entry.input);
    entry.agent = agent;
    touch(entry);
  }
  v.queue.push(agent);
  pumpAgents(v);
  agentsCounted = false;
}
const describeTask = (input) => input && typeof input.description === "string" ? input.description : "";
// The lead (or the agent's parent) says how the agent ended; its own Finished says the same.
function endAgent(v, id, status) {
  const agent = v.agents.get(id);
  if (!agent) return;
  Object.assign(agent, { status, ended: true });
  agent.asking.clear();
  touchAgent(agent);
  agentsCounted = false;
}
function agentLine(agent, item) {
  agent.lines.push(item);
  touchAgent(agent);
  return item;
}
function touchAgent(agent) { agentsDirty.add(agent); schedule(); }
function pumpAgents(v) {
  // A view no longer shown opens nothing: a handler or an error of its streams may still run after it closed.
  if (view !== v) return;
  while (v.streams.size < AGENT_STREAMS && v.queue.length) followAgent(v, v.queue.shift());
}
function followAgent(v, agent) {
  const source = new EventSource(`/api/sessions/${agent.id}/events${agent.seq ? `?after=${agent.seq}` : ""}`);
  agent.source = source;
  v.streams.add(agent);
  for (const [kind, handle] of Object.entries(AGENT_HANDLERS)) {
    source.addEventListener(kind, (m) => {
      if (agent.source !== source) return;
      agent.seq = Number(m.lastEventId) || agent.seq;
      handle(JSON.parse(m.data), agent, v);
    });
  }
  // The stream ended before the agent's end (a dropped connection): it queues again, to go on from where it was.
  source.onerror = () => {
    unfollowAgent(v, agent);
    if (!agent.ended && agent.retries++ < 3) v.queue.push(agent); else agent.loaded = true;
    touchAgent(agent);
    agentsCounted = false;
    pumpAgents(v);
  };
}
function unfollowAgent(v, agent) {
  if (agent.source) agent.source.close();
  agent.source = null;
  v.streams.delete(agent);
}
function closeAgents(v) {
  for (const agent of v.streams) { agent.source.close(); agent.source = null; }
  v.streams.clear();
  v.queue = [];
}
function drawAgent(agent) {
  const node = document.createElement("details");
  node.className = "agent";
  node.dataset.session = agent.id;
  node.append(document.createElement("summary"), text("div", "", "agent-lines"));
  node.addEventListener("toggle", () => {
    if (agent.node !== node) return;
    agent.open = node.open;
    if (!node.open) return;
    fillAgentLines(agent);
    // An opened block's agent is the next to load, if it waits for its turn.
    const waiting = view ? view.queue.indexOf(agent) : -1;
    if (waiting > 0) view.queue.unshift(...view.queue.splice(waiting, 1));
  });
  agent.node = node;
  agent.drawn = 0;
  agent.changed.clear();
  fillAgentSummary(agent);
  if (agent.open) { node.open = true; fillAgentLines(agent); }
  return node;
}
function fillAgentSummary(agent) {
  const status = agent.ended ? agent.status : agent.asking.size ? "waiting" : "running";
  const facts = agent.description ? [agent.description] : [];
  if (agent.toolCalls) facts.push(`${agent.toolCalls} call${agent.toolCalls === 1 ? "" : "s"}`);
  if (agent.requests) facts.push(costText(agent));
  else if (!agent.source && !agent.loaded) facts.push("not loaded yet");
  const summary = agent.node.firstChild;
  summary.replaceChildren(text("span", `↳ agent ${agent.name}`, "name"), " ", chip(text("span", "", "chip small"), status));
  if (facts.length) summary.append(" ", text("span", facts.join(" · "), "facts"));
}
// The agent's lines that changed are redrawn, the new ones appended: nothing already drawn is drawn again.
function fillAgentLines(agent) {
  const body = agent.node.lastChild;
  if (!agent.lines.length) {
    body.replaceChildren(text("div", agent.loaded ? "no tool calls" : "loading…", "line note"));
    return;
  }
  if (agent.drawn === 0) body.replaceChildren();
  else for (const item of agent.changed) if (item.node && item.node.isConnected) redrawAgentLine(item);
  agent.changed.clear();
  const fragment = document.createDocumentFragment();
  for (let i = agent.drawn; i < agent.lines.length; i++) fragment.append(drawAgentLine(agent.lines[i]));
  body.append(fragment);
  agent.drawn = agent.lines.length;
}
function drawAgentLine(item) {
  const node = item.kind === "tool" ? text("div", callText(item), "line call") : text("div", item.text, `line note ${item.cls || ""}`);
  node.classList.toggle("failed", !!item.is_error);
  item.node = node;
  if (!item.agent) return node;
  const group = text("div", "", "agent-call");
  group.append(node, drawAgent(item.agent));
  return group;
}
function redrawAgentLine(item) {
  item.node.textContent = callText(item);
  item.node.classList.toggle("failed", !!item.is_error);
  if (item.agent && item.agent.node !== item.node.nextSibling) {
    const group = text("div", "", "agent-call");
    item.node.replaceWith(group);
    group.append(item.node, drawAgent(item.agent));
  }
}
function refreshAgent(agent) {
  if (!agent.node || !agent.node.isConnected) return;
  fillAgentSummary(agent);
  if (agent.node.open) fillAgentLines(agent);
}
function showAgents(v) {
  agentsCounted = true;
  const all = [...v.agents.values()];
  $("progress-agents").classList.toggle("hidden", !all.length);
  if (!all.length) return;
  const counts = new Map([["at work", 0], ["done", 0], ["failed", 0], ["stopped", 0], ["cancelled", 0]]);
  let loading = 0;
  for (const agent of all) {
    const said = agent.ended ? agent.status : "at work";
    counts.set(said, (counts.get(said) || 0) + 1);
    // Waiting for a stream, or replaying an end already known; an agent followed as it works is not loading.
    if (!agent.loaded && (agent.ended || !agent.source)) loading++;
  }
  const parts = [...counts].filter(([, n]) => n).map(([said, n]) => `${n} ${said}`);
  $("progress-agents").textContent = `${all.length} agent${all.length === 1 ? "" : "s"}: ${parts.join(", ")}`
    + (loading ? ` · ${loading} still loading` : "");
}
// What an agent's block shows of its own stream: its calls, warnings, changes, questions, usage and end. Its
// text (its report is the `task` call's output), its task list moves (its parent's stream relays them) and the
// rest stay in its own session, which the sidebar opens like any other.
const AGENT_HANDLERS = {
  ToolStarted(e, agent) {
    if (PLAN_TOOLS.includes(e.tool)) return;
    agent.toolCalls++;
    agent.calls.set(e.call_id, agentLine(agent, { kind: "tool", call_id: e.call_id, tool: e.tool, input: e.input, finished: false }));
  },
  ToolProgress(e, agent) {
    const call = agent.calls.get(e.call_id);
    if (!call || call.finished) return;
    call.progress = `running · ${e.total ? `${Math.round((e.progress / e.total) * 100)}%` : e.progress}`;
    agent.changed.add(call);
    touchAgent(agent);
  },
  ToolFinished(e, agent) {
    let call = agent.calls.get(e.call_id);
    if (!call) {
      if (!e.is_error && PLAN_TOOLS.includes(e.tool)) return;
      agent.toolCalls++;
      call = agentLine(agent, { kind: "tool", call_id: e.call_id, tool: e.tool, input: null });
    }
    Object.assign(call, { finished: true, is_error: e.is_error, summary: e.summary });
    agent.changed.add(call);
    touchAgent(agent);
  },
  Warning(e, agent) { agentLine(agent, { kind: "note", text: `⚠ warning: ${e.message}`, cls: "error" }); },
  Retrying(e, agent) { agentLine(agent, { kind: "note", text: `retrying (attempt ${e.attempt}): ${e.reason}` }); },
  FileChanged(e, agent, v) {
    agentLine(agent, { kind: "note", text: `${e.change} ${e.from ? `${shortPath(e.from)} → ` : ""}${shortPath(e.path)}` });
    // The agent's changes are the lead's: `undo` of the lead puts them back, and its outputs list them.
    noteOutput(v, e);
  },
  ApprovalRequested(e, agent) {
    agent.asking.add(e.call_id);
    agentLine(agent, { kind: "note", text: `? asks before ${e.tool}: ${e.reason}` });
  },
  ApprovalResolved(e, agent) {
    agent.asking.delete(e.call_id);
    const answer = e.answer && e.answer.answer;
    agentLine(agent, { kind: "note", text: `${answer === "deny" ? "✗ denied" : "✓ allowed"} (${e.by})`, cls: answer === "deny" ? "error" : undefined });
  },
  SubagentStarted(e, agent, v) { startAgent(v, e, agent); },
  SubagentFinished(e, agent, v) { endAgent(v, e.child_session, e.status); },
  Usage(e, agent, v) { countUsage(agent, e); touchAgent(agent); usageSoon(v); },
  Finished(e, agent, v) {
    if (e.reason && e.status !== "done") agentLine(agent, { kind: "note", text: `${e.status}: ${e.reason}`, cls: "error" });
    endAgent(v, agent.id, e.status);
    agent.loaded = true;
    unfollowAgent(v, agent);
    pumpAgents(v);
  },
};

// ---- MCP Apps: a server's view of a call's result, in a frame that cannot reach the desk. ----
// The frame is sandboxed with scripts only (an opaque origin: no cookie, no storage, no reach into this page),
// and the server sends its HTML under the policy the view declared (no network by default). It talks to the
// desk only by postMessage JSON-RPC (the MCP Apps protocol): the desk answers what errand hosts (the handshake,
// the call's input and result, calls of the view's own server's tools through errand's gate, display modes)
// and refuses the rest.
const APP_PROTOCOL = "2026-01-26", APP_MODES = ["inline", "fullscreen"];
function showApp(v, e) {
  if (v.apps.has(e.call_id)) return;
  const card = document.createElement("section");
  card.className = `card app${e.prefers_border ? " bordered" : ""}`;
  card.dataset.call = e.call_id;
  const frame = document.createElement("iframe");
  // Scripts only: never allow-same-origin, which would hand the view this page's origin and cookie.
  frame.setAttribute("sandbox", "allow-scripts");
  frame.title = `View of ${e.tool}`;
  frame.src = `/api/sessions/${v.id}/apps/${encodeURIComponent(e.call_id)}`;
  const inline = text("button", "Exit full screen", "hidden");
  const heading = text("h2", `${e.tool} · ${e.resource_uri} `);
  heading.append(inline);
  card.append(heading, frame);
  const app = { event: e, frame, card, session: v.id, mode: "inline", modes: null, initialized: false, loads: 0 };
  // A view that navigates its frame elsewhere is no longer the server's view: whatever loaded there gets no
  // result and no relay to the session, and the frame goes.
  frame.addEventListener("load", () => {
    if (++app.loads < 2) return;
    v.apps.delete(e.call_id);
    frame.remove();
    card.append(text("p", "The view left its page, so errand closed it.", "problem"));
  });
  inline.onclick = () => setAppMode(app, "inline");
  app.exit = inline;
  v.apps.set(e.call_id, app);
  $("apps").append(card);
  $("apps").classList.remove("hidden");
}
const toApp = (app, message) => { if (app.frame.contentWindow) app.frame.contentWindow.postMessage({ jsonrpc: "2.0", ...message }, "*"); };
function setAppMode(app, mode) {
  app.mode = mode;
  app.card.classList.toggle("fullscreen", mode === "fullscreen");
  app.exit.classList.toggle("hidden", mode !== "fullscreen");
  if (app.initialized) toApp(app, { method: "ui/notifications/host-context-changed", params: { displayMode: mode } });
}
function appContext(app) {
  const e = app.event, prefix = `mcp__${e.server}__`;
  return {
    toolInfo: { id: e.call_id, tool: { name: e.tool.startsWith(prefix) ? e.tool.slice(prefix.length) : e.tool, inputSchema: { type: "object" } } },
    theme: matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light",
    displayMode: app.mode, availableDisplayModes: APP_MODES, platform: "web",
    locale: navigator.language, timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    containerDimensions: { maxHeight: 600 },
  };
}
async function appRequest(app, method, params) {
  switch (method) {
    case "ui/initialize":
      app.modes = Array.isArray(params?.appCapabilities?.availableDisplayModes) ? params.appCapabilities.availableDisplayModes : null;
      return { protocolVersion: APP_PROTOCOL, hostInfo: { name: "errand", version: "desk" },
               hostCapabilities: { serverTools: {}, logging: {} }, hostContext: appContext(app) };
    case "ping": return {};
    case "tools/call": {
      // The session runs it as its own call of the view's server's tool: the gate may ask the person above.
      const request_id = `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
      const answer = await api("POST", `/api/sessions/${app.session}/apps/${encodeURIComponent(app.event.call_id)}/calls`,
        { request_id, name: String(params?.name ?? ""), arguments: params?.arguments ?? {} });
      if (answer.error) throw new Error(answer.error);
      return answer.result;
    }
    case "ui/request-display-mode": {
      const mode = params?.mode;
      if (APP_MODES.includes(mode) && (!app.modes || app.modes.includes(mode))) setAppMode(app, mode);
      return { mode: app.mode };
    }
    default: throw Object.assign(new Error(`${method} is not supported by errand`), { code: -32601 });
  }
}
window.addEventListener("message", (m) => {
  // Only the frames this page made for the session shown are listened to, each by its window.
  const app = view && [...view.apps.values()].find((candidate) => candidate.frame.contentWindow === m.source);
  const message = m.data;
  if (!app || !message || message.jsonrpc !== "2.0" || typeof message.method !== "string") return;
  if (message.id === undefined || message.id === null) {
    if (message.method === "ui/notifications/initialized" && !app.initialized) {
      app.initialized = true;
      toApp(app, { method: "ui/notifications/tool-input", params: { arguments: app.event.input || {} } });
      toApp(app, { method: "ui/notifications/tool-result", params: app.event.result });
    } else if (message.method === "ui/notifications/size-changed" && app.mode === "inline") {
      const height = Number(message.params?.height);
      if (height > 0) app.frame.style.height = `${Math.min(Math.max(height, 60), 600)}px`;
    }
    return;
  }
  appRequest(app, message.method, message.params).then(
    (result) => toApp(app, { id: message.id, result }),
    (error) => toApp(app, { id: message.id, error: { code: error.code || -32000, message: error.message } }),
  );
});

// Every event kind the agent emits is handled here or listed in IGNORED with the reason; a test reads both
// tables against the agent's event type, so a new kind cannot pass by unseen.
const HANDLERS = {
  TaskStarted(e, v) {
    v.folders = (e.folders || []).map((f) => f.path);
    folders = v.folders;
    v.running = true; v.ended = null;
    $("session-title").textContent = e.task;
    $("session-model").textContent = e.model;
    $("session-folders").textContent = (e.folders || []).map((f) => f.path + (f.read_only ? " (read-only)" : "")).join(", ");
    if (e.resumed) line(v, { kind: "note", text: `continued: ${e.task}` });
    showStatus(v);
  },
  Steered(e, v) { line(v, { kind: "note", text: `you: ${e.text}` }); },
  TextDelta(e, v) {
    // Deltas grow one text entry per stretch of text; the DOM catches up once per frame.
    if (!v.textEntry) v.textEntry = addEntry({ kind: "text", text: "" });
    v.textEntry.text += e.text;
    touch(v.textEntry);
  },
  Retrying(e, v) { line(v, { kind: "note", text: `retrying (attempt ${e.attempt}): ${e.reason}` }); },
  Warning(e, v) { line(v, { kind: "note", text: `⚠ warning: ${e.message}`, cls: "error" }); },
  Compacted(e, v) {
    line(v, { kind: "note", text: `compacted the conversation: older turns summarized (~${e.before_tokens.toLocaleString()} → ~${e.after_tokens.toLocaleString()} tokens)` });
  },
  ResultsCleared(e, v) {
    line(v, { kind: "note", text: `cleared ${e.results} older tool result${e.results === 1 ? "" : "s"} from the conversation (~${e.before_tokens.toLocaleString()} → ~${e.after_tokens.toLocaleString()} tokens)` });
  },
  ToolStarted(e, v) {
    v.textEntry = null;
    // The plan and its checklist have their own places on the page.
    if (e.tool === "propose_plan" || e.tool === "update_plan") return;
    v.calls.set(e.call_id, line(v, { kind: "tool", call_id: e.call_id, tool: e.tool, input: e.input, finished: false }));
  },
  ToolFinished(e, v) {
    v.textEntry = null;
    let entry = v.calls.get(e.call_id);
    if (!entry) {
      if (!e.is_error && (e.tool === "propose_plan" || e.tool === "update_plan")) return;
      entry = line(v, { kind: "tool", call_id: e.call_id, tool: e.tool, input: null });
    }
    Object.assign(entry, { finished: true, is_error: e.is_error, summary: e.summary });
    touch(entry);
  },
  ToolProgress(e, v) {
    const entry = v.calls.get(e.call_id);
    if (!entry || entry.finished) return;
    const amount = e.total ? `${Math.round((e.progress / e.total) * 100)}%` : `${e.progress}`;
    entry.progress = `running · ${amount}${e.message ? ` ${e.message}` : ""}`;
    touch(entry);
  },
  SubagentStarted(e, v) { v.textEntry = null; startAgent(v, e, null); },
  SubagentFinished(e, v) { endAgent(v, e.child_session, e.status); },
  HookRan(e, v) {
    // Hooks that changed something show in the log; the ones that let things be stay in the event stream.
    if (e.outcome === "continue" || e.outcome === "allow") return;
    line(v, { kind: "note", text: `hook ${e.hook} (${e.plugin}) ${e.outcome}${e.message ? `: ${e.message}` : ""}`,
              cls: e.outcome === "error" ? "error" : undefined });
  },
  NetworkRequest(e, v) {
    // Allowed requests are routine; a refused one explains a command's failure.
    if (!e.allowed) line(v, { kind: "note", text: `⚠ network refused: ${e.host}:${e.port}${e.reason ? ` (${e.reason})` : ""}`, cls: "error" });
  },
  InputRequested(e, v) {
    line(v, { kind: "note", text: `${e.server} asks: ${e.message}` });
    pendingInput = { id: e.input_id, fields: e.fields };
    v.asking.add(`input:${e.input_id}`);
    $("input-text").textContent = `${e.server} asks: ${e.message}`;
    $("input-fields").replaceChildren(...e.fields.map(fieldControl));
    problem("input-error", "");
    $("input").classList.remove("hidden");
    showStatus(v);
    const first = $("input-fields").querySelector("input, select");
    if (first) first.focus();
  },
  InputAnswered(e, v) {
    line(v, { kind: "note", text: `${e.server}: ${e.action} (${e.by})` });
    v.asking.delete(`input:${e.input_id}`);
    if (pendingInput && pendingInput.id === e.input_id) { $("input").classList.add("hidden"); pendingInput = null; }
    showStatus(v);
  },
  FileChanged(e, v) {
    line(v, { kind: "change", path: e.path, change: e.change, from: e.from, trash_id: e.trash_id });
    noteOutput(v, e);
  },
  PlanProposed(e, v) {
    v.proposed = e.plan; v.steps = []; v.current = null;
    v.asking.add("plan");
    $("plan-summary").textContent = e.plan.summary;
    $("plan-steps").replaceChildren(...e.plan.steps.map((s) => text("li", s)));
    const effects = Object.entries(e.plan.effects || {}).map(([k, list]) => `${k} ${list.join(", ")}`).join(" · ");
    $("plan-effects").textContent = effects ? `It will ${effects}.` : "";
    $("plan").classList.remove("hidden");
    showProgress(v); showStatus(v);
  },
  PlanResolved(e, v) {
    v.asking.delete("plan");
    $("plan").classList.add("hidden");
    const answer = e.review && e.review.answer;
    line(v, { kind: "note", text: `plan ${answer === "approve" ? "approved" : answer === "revise" ? "sent back for revision" : "rejected"} (${e.by})` });
    showStatus(v);
  },
  TaskListChanged(e, v) {
    v.steps = e.steps;
    const working = e.steps.findIndex((step) => step.status === "in_progress");
    v.current = e.current ?? (working >= 0 ? working : null);
    showProgress(v);
  },
  ApprovalRequested(e, v) {
    pendingCall = e.call_id;
    v.asking.add(`call:${e.call_id}`);
    const what = text("p", "");
    what.append(text("strong", e.tool), ` — ${e.reason}`);
    // A view's own call (MCP Apps) is asked about like the model's, saying who asks.
    if (e.call_id.startsWith("app-")) what.append(" (a view on this page asks)");
    $("approval-text").replaceChildren(what, valueBlock(e.input));
    $("approval").classList.remove("hidden");
    showStatus(v);
    $("allow-once").focus();
  },
  ApprovalResolved(e, v) {
    v.asking.delete(`call:${e.call_id}`);
    $("approval").classList.add("hidden");
    const answer = e.answer && e.answer.answer;
    line(v, { kind: "note", text: `${answer === "deny" ? "✗ denied" : "✓ allowed"}${answer === "allow_session" ? " for the session" : ""} (${e.by})`,
              cls: answer === "deny" ? "error" : undefined });
    showStatus(v);
  },
  Usage(e, v) { countUsage(v, e); showCost(v); usageSoon(v); },
  AppAvailable(e, v) {
    line(v, { kind: "note", text: `▸ ${e.tool} has a view, shown above` });
    showApp(v, e);
  },
  AppCallAnswered(e, v) {
    if (e.error) line(v, { kind: "note", text: `⚠ a view's call was refused: ${e.error}`, cls: "error" });
  },
  Finished(e, v) {
    v.running = false; v.ended = e; v.asking.clear(); v.current = null;
    ["plan", "approval", "input"].forEach((box) => $(box).classList.add("hidden"));
    if (e.summary && e.summary.duration_ms !== undefined) v.took = seconds(e.summary.duration_ms);
    if (e.status === "failed") problem("session-error", e.reason || "the task failed");
    showStatus(v); showProgress(v);
    // A session showing views keeps its stream: their calls run after the run, and may ask the person.
    if (!v.apps.size) source.close();
    loadSessions();
    refreshRecord(v);
    refreshUsage(v);
  },
};
const IGNORED = {
  ThinkingDelta: "the model's reasoning stays out of the desk; its answer is what the person reads",
  PermissionDecided: "every call gets one; questions arrive as ApprovalRequested, refusals as failed tool lines",
};

function openSession(id) {
  show("session");
  closePreview();
  current = id;
  for (const item of $("sessions").querySelectorAll("button")) {
    item.classList.toggle("current", item.dataset.id === id);
    if (item.dataset.id === id) item.setAttribute("aria-current", "page"); else item.removeAttribute("aria-current");
  }
  // The address names the session, so a reload comes back to it and replays every event.
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  if (source) source.close();
  if (view) closeAgents(view);
  resetLog();
  ["plan", "approval", "input", "undo-result", "apps"].forEach((box) => $(box).classList.add("hidden"));
  $("apps").replaceChildren($("apps").firstElementChild);
  $("undo-result").classList.remove("undone");
  problem("session-error", "");
  ["session-title", "session-model", "session-folders", "session-time"].forEach((field) => { $(field).textContent = ""; });
  const v = view = newView(id);
  showStatus(v); showCost(v); showProgress(v); showOutputs(v); showAgents(v); showUsage(null);
  refreshRecord(v); refreshUsage(v);
  source = new EventSource(`/api/sessions/${id}/events`);
  source.onerror = () => { source.close(); loadSessions(); };
  for (const [kind, handle] of Object.entries(HANDLERS)) {
    source.addEventListener(kind, (m) => { if (view === v) handle(JSON.parse(m.data), v); });
  }
}

// Errors of a button's request show beside the buttons rather than vanishing.
const attempt = (work) => () => work().catch((error) => problem("session-error", error.message));
$("new-task").onclick = () => { history.replaceState(null, "", location.pathname); show("composer"); $("task").focus(); };
async function start() {
  problem("start-error", "");
  try {
    const folders = $("folders").value.split("\n").map((f) => f.trim()).filter(Boolean);
    const read_only = $("read-only").value.split("\n").map((f) => f.trim()).filter(Boolean);
    const body = { task: $("task").value, folders, read_only, no_plan: $("no-plan").checked };
    if ($("model").value.trim()) body.model = $("model").value.trim();
    if ($("max-cost").value.trim()) body.max_cost = Number($("max-cost").value);
    const { id } = await api("POST", "/api/sessions", body);
    await loadSessions();
    openSession(id);
  } catch (error) { problem("start-error", error.message); }
}
$("start").onclick = start;
$("task").onkeydown = (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); start(); } };
const review = (answer) => attempt(() => api("POST", `/api/sessions/${current}/plan`, answer))();
$("plan-approve").onclick = () => review({ answer: "approve" });
$("plan-revise").onclick = () => review({ answer: "revise", feedback: $("plan-feedback").value });
$("plan-reject").onclick = () => review({ answer: "reject" });
const answer = (body) => attempt(() => api("POST", `/api/sessions/${current}/approvals/${pendingCall}`, body))();
$("allow-once").onclick = () => answer({ answer: "allow_once" });
$("allow-session").onclick = () => answer({ answer: "allow_session" });
$("deny").onclick = () => answer({ answer: "deny", reason: $("approval-reason").value || null });
const sendInput = (body) => api("POST", `/api/sessions/${current}/inputs/${pendingInput.id}`, body)
  .catch((error) => problem("input-error", error.message));
// The browser checks required fields and formats before the form submits.
$("input").onsubmit = (e) => { e.preventDefault(); if (pendingInput) sendInput({ action: "accept", content: inputContent() }); };
$("input-decline").onclick = () => { if (pendingInput) sendInput({ action: "decline" }); };
$("stop").onclick = attempt(() => api("POST", `/api/sessions/${current}/stop`));
$("undo").onclick = attempt(async () => {
  const v = view;
  const report = await api("POST", `/api/sessions/${current}/undo`, {});
  const box = $("undo-result");
  const count = (outcome) => report.entries.filter((entry) => entry.outcome === outcome).length;
  const back = count("restored") + count("removed") + count("already_original");
  const refused = report.entries.filter((entry) => entry.outcome === "conflict" || entry.outcome === "failed");
  box.replaceChildren(text("strong", report.entries.length === 0 ? "↶ Undo: this session changed nothing."
    : `↶ Undo: ${back} paths put back${refused.length ? `, ${refused.length} left alone` : ""}.`));
  const list = document.createElement("ul");
  for (const entry of report.entries) {
    const says = entry.reason ? `${entry.outcome.replace("_", " ")}: ${entry.reason}` : entry.outcome.replace("_", " ");
    list.append(text("li", `${entry.op} ${shortPath(entry.path)} — ${says}`, refused.includes(entry) ? "error" : ""));
  }
  if (report.entries.length) box.append(list);
  box.classList.remove("hidden");
  box.classList.add("undone");
  if (view === v) {
    v.undoneAt = new Date().toISOString();
    showStatus(v); showOutputs(v);
    box.tabIndex = -1; box.focus();
    refreshRecord(v);
  }
});
// Enter sends the person's words: to the running task (steering), or as a follow-up that continues it.
const sendMessage = (field) => async (e) => {
  if (e.key !== "Enter" || !$(field).value.trim()) return;
  try {
    const { id } = await api("POST", `/api/sessions/${current}/messages`, { text: $(field).value });
    $(field).value = "";
    if (id && source.readyState === EventSource.CLOSED) openSession(id);
  } catch (error) { problem("session-error", error.message); }
};
$("steer").onkeydown = sendMessage("steer");
$("follow-up").onkeydown = sendMessage("follow-up");
let picked = null;
async function browse(path) {
  const listing = await api("GET", path ? `/api/folders?path=${encodeURIComponent(path)}` : "/api/folders");
  picked = listing;
  $("picker").classList.remove("hidden");
  $("picker-path").textContent = listing.path;
  $("picker-up").disabled = !listing.parent;
  $("picker-list").replaceChildren(...listing.folders.map((name) => {
    const item = text("li", "");
    const link = text("a", `${name}/`);
    link.href = "#";
    link.onclick = (e) => { e.preventDefault(); browse(`${listing.path}/${name}`).catch(pickerFailed); };
    item.append(link);
    return item;
  }));
}
const pickerFailed = (error) => problem("start-error", error.message);
const addLine = (id, line) => { $(id).value = ($(id).value.trim() ? $(id).value.trim() + "\n" : "") + line; };
$("browse").onclick = () => browse(null).catch(pickerFailed);
$("picker-up").onclick = () => picked && picked.parent && browse(picked.parent).catch(pickerFailed);
$("grant").onclick = () => picked && addLine("folders", picked.path);
$("grant-read-only").onclick = () => picked && addLine("read-only", picked.path);

// ---- Schedules: tasks errand serve runs on a timetable, their next fires and what became of each fire. ----
// Instants come from the server in UTC; the page shows them in the person's time, the UTC one on hover.
const fireStamps = new Intl.DateTimeFormat([], { weekday: "short", year: "numeric", month: "short", day: "numeric",
  hour: "numeric", minute: "2-digit" });
function instant(stamp) {
  const element = text("time", stamp);
  const date = new Date(stamp);
  if (Number.isNaN(date.getTime())) return element;
  element.textContent = fireStamps.format(date);
  element.dateTime = stamp;
  element.title = `${stamp.replace("T", " ").replace(/(:00)?(\.\d+)?(Z|[+-]00:00)$/, "")} UTC`;
  return element;
}
const DAY_WORDS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DAY_NAMES = ["Sundays", "Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays"];
const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
  "November", "December"];
const CRON_MACROS = { "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *" };
const pad = (n) => String(n).padStart(2, "0");
const ordinal = (n) => `${n}${[11, 12, 13].includes(n % 100) ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th"}`;
const listed = (words) => words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
// The days a cron day-of-week field names (numbers, names, lists, ranges; 0 and 7 are Sunday); null for steps.
function cronDays(field) {
  const day = (word) => DAY_WORDS.includes(word) ? DAY_WORDS.indexOf(word) : /^[0-7]$/.test(word) ? Number(word) : null;
  const days = new Set();
  for (const part of field.split(",")) {
    const ends = part.split("-");
    const low = day(ends[0]), high = day(ends[ends.length - 1]);
    if (ends.length > 2 || low === null || high === null || low > high) return null;
    for (let d = low; d <= high; d++) days.add(d % 7);
  }
  return days;
}
// A cron expression in words ("Weekdays at 08:00"), for the common shapes; null for the rest, shown raw only.
function cronWords(cron) {
  const fields = (CRON_MACROS[cron.trim().toLowerCase()] || cron).trim().toLowerCase().split(/\s+/);
  if (fields.length !== 5) return null;
  const [minute, hour, dom, month, dow] = fields;
  const number = (field, high) => /^\d{1,2}$/.test(field) && Number(field) <= high ? Number(field) : null;
  const m = number(minute, 59), h = number(hour, 23), day = number(dom, 31), mon = number(month, 12);
  let days;
  if (dom === "*" && month === "*") {
    const set = dow === "*" ? new Set([0, 1, 2, 3, 4, 5, 6]) : cronDays(dow);
    if (!set) return null;
    const week = [1, 2, 3, 4, 5, 6, 0].filter((d) => set.has(d));
    days = week.length === 7 ? "Every day" : week.join() === "1,2,3,4,5" ? "Weekdays" : week.join() === "6,0" ? "Weekends"
      : listed(week.map((d) => DAY_NAMES[d]));
  } else if (day !== null && month === "*" && dow === "*") days = `Monthly on the ${ordinal(day)}`;
  else if (day !== null && mon !== null && dow === "*") days = `Yearly on ${MONTH_NAMES[mon - 1]} ${day}`;
  else return null;
  if (m !== null && h !== null) return `${days} at ${pad(h)}:${pad(m)}`;
  if (hour !== "*") return null;
  const step = /^\*\/(\d+)$/.exec(minute);
  const every = m !== null ? `every hour at :${pad(m)}` : minute === "*" || (step && step[1] === "1") ? "every minute"
    : step ? `every ${step[1]} minutes` : null;
  if (!every) return null;
  return days === "Every day" ? every[0].toUpperCase() + every.slice(1) : `${days}, ${every}`;
}
// When a schedule fires: in words, then as written (the cron expression and its time zone).
function timing(schedule) {
  const element = text("span", "", "timing");
  if (schedule.cron) element.append(cronWords(schedule.cron) || "Custom timetable", " ", text("code", `${schedule.cron} · ${schedule.tz}`));
  else element.append("Once at ", instant(schedule.at), " ", text("code", schedule.tz));
  return element;
}
const nextFire = (schedule) => schedule.next_fires.length ? instant(schedule.next_fires[0])
  : schedule.paused ? "none while paused" : "none to come";
const fireChip = (status) => chip(text("span", "", "chip small"), status);
const modified = (e) => e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey;

async function loadSchedules() {
  const items = (await api("GET", "/api/schedules")).map((s) => {
    const item = text("li", "", "card schedule-item");
    item.dataset.id = s.id;
    // The task is the button (and the accessible name); a click anywhere on the card opens it too.
    const heading = document.createElement("h2");
    const open = text("button", s.task);
    open.title = s.task;
    heading.append(open);
    const meta = text("p", "", "meta");
    const next = text("span", "", "fact next");
    next.append(text("span", "Next", "label"), " ", nextFire(s));
    const last = text("span", "", "fact last");
    last.append(text("span", "Last", "label"), " ");
    if (s.last_fire) last.append(fireChip(s.last_fire.status), " ", instant(s.last_fire.fire_time));
    else last.append("never fired");
    meta.append(chip(text("span", "", "chip small state"), s.paused ? "paused" : "active"), timing(s), next, last);
    item.append(heading, meta);
    item.onclick = () => openSchedule(s.id);
    return item;
  });
  $("schedule-list").replaceChildren(...items);
  $("schedules-empty").classList.toggle("hidden", items.length > 0);
}
async function openSchedules() {
  show("schedules");
  if (location.hash !== "#schedules") history.replaceState(null, "", "#schedules");
  problem("schedules-error", "");
  try { await loadSchedules(); } catch (error) { problem("schedules-error", `cannot load the schedules: ${error.message}`); }
}
$("show-schedules").onclick = (e) => { if (!modified(e)) { e.preventDefault(); openSchedules(); } };
$("back-to-schedules").onclick = $("show-schedules").onclick;

// ---- One schedule: its settings, next fires and history; pause, resume, run now. ----
// While one of its fires is at work, the history is read again every FIRE_POLL ms until the fire ends.
const FIRE_POLL = 1500;
let shownSchedule = null, scheduleTimer = null, scheduleSessions = null;
async function openSchedule(id, focus = true) {
  clearTimeout(scheduleTimer);
  show("schedule");
  if (location.hash !== `#schedules/${id}`) history.replaceState(null, "", `#schedules/${id}`);
  problem("schedule-error", "");
  $("schedule-result").textContent = "";
  if (shownSchedule !== id) {
    ["schedule-title", "schedule-when", "schedule-next-fire", "schedule-settings", "schedule-next", "history-rows", "history-count"]
      .forEach((field) => $(field).replaceChildren());
    scheduleSessions = null;
  }
  shownSchedule = id;
  await refreshSchedule(id);
  if (focus) $("schedule-title").focus();
}
async function refreshSchedule(id) {
  clearTimeout(scheduleTimer);
  let shown;
  try { shown = await api("GET", `/api/schedules/${encodeURIComponent(id)}`); } catch (error) {
    if (shownSchedule === id) problem("schedule-error", `cannot load this schedule: ${error.message}`);
    return;
  }
  if (shownSchedule !== id) return;
  showSchedule(shown.schedule, shown.history);
  // A fire's new session joins the sidebar.
  const sessions = shown.history.map((fire) => fire.session_id || "").join();
  if (scheduleSessions !== null && sessions !== scheduleSessions) loadSessions();
  scheduleSessions = sessions;
  if (shown.history.some((fire) => fire.status === "running")) {
    scheduleTimer = setTimeout(() => { if (!$("schedule").classList.contains("hidden")) refreshSchedule(id); }, FIRE_POLL);
  }
}
const CATCH_UP = {
  skip: "skip: fires due while errand serve was not running are noted, not run",
  once: "once: the latest fire missed runs, once",
  all: "all: every fire missed runs",
};
// A budget as written ($0.50, $0.125), to four places at most.
const budget = (value) => `$${Number(value).toFixed(Math.min(4, Math.max(2, (String(value).split(".")[1] || "").length)))}`;
const span = (secs) => secs % 3600 === 0 ? `${secs / 3600} h` : secs % 60 === 0 ? `${secs / 60} min` : `${secs} s`;
function showSchedule(s, history) {
  const settings = s.settings || {};
  $("schedule-title").textContent = s.task;
  chip($("schedule-state"), s.paused ? "paused" : "active");
  $("schedule-when").replaceChildren(timing(s));
  $("schedule-next-fire").replaceChildren(nextFire(s));
  $("schedule-pause").classList.toggle("hidden", s.paused);
  $("schedule-resume").classList.toggle("hidden", !s.paused);

  const paths = (list) => list && list.length ? list.map((path) => text("code", path, "path")) : ["none"];
  const wait = settings.wait_secs ?? 3600;
  const facts = [
    ["Folders", paths(settings.folders)],
    ...(settings.read_only && settings.read_only.length ? [["Read-only", paths(settings.read_only)]] : []),
    ["Output", settings.output ? [text("code", settings.output, "path")] : ["not set"]],
    ["Max cost", [settings.max_cost === null || settings.max_cost === undefined ? "no limit" : `${budget(settings.max_cost)} per fire`]],
    ["Catch-up", [CATCH_UP[s.catch_up] || s.catch_up]],
    ["Plan", [settings.plan ? "each fire's plan waits in the inbox for approval" : "none: each fire works straight away"]],
    ["Questions", [wait === 0 ? "denied at once" : `wait ${span(wait)} in the inbox, then are denied`]],
    ["Created", [instant(s.created_at)]],
    ["Id", [text("code", s.id)]],
  ];
  $("schedule-settings").replaceChildren(...facts.flatMap(([term, content]) => {
    const dd = document.createElement("dd");
    dd.append(...content);
    return [text("dt", term), dd];
  }));

  $("schedule-next").replaceChildren(...s.next_fires.map((fire) => { const item = text("li", ""); item.append(instant(fire)); return item; }));
  $("schedule-next-empty").textContent = s.next_fires.length ? "" : s.paused ? "Paused: nothing fires until it is resumed."
    : s.cron ? "None to come." : "None: a one-shot fires once.";

  $("history-count").textContent = history.length ? `· ${history.length === 50 ? "the latest 50" : history.length} fire${history.length === 1 ? "" : "s"}` : "";
  $("history-empty").classList.toggle("hidden", history.length > 0);
  $("history").classList.toggle("hidden", !history.length);
  $("history-rows").replaceChildren(...history.map((fire) => {
    const row = document.createElement("tr");
    row.dataset.fireTime = fire.fire_time;
    const cell = (label, ...content) => {
      const td = document.createElement("td");
      td.dataset.label = label;
      const inside = document.createElement("div");
      inside.append(...content);
      td.append(inside);
      row.append(td);
      return td;
    };
    const time = cell("Fire time", instant(fire.fire_time));
    if (fire.manual) time.firstChild.append(text("span", "run by hand", "by-hand"));
    cell("Status", fireChip(fire.status)).classList.add("status");
    const none = () => text("span", "—", "none");
    cell("Cost", fire.cost_usd === null || fire.cost_usd === undefined ? none() : `$${fire.cost_usd.toFixed(4)}`).classList.add("cost");
    cell("Output", fire.output || none()).classList.add("path");
    cell("Reason", fire.reason || none()).classList.add("reason");
    const session = cell("Session");
    session.classList.add("session");
    if (fire.session_id) {
      const link = text("a", "Open session");
      link.href = `#${fire.session_id}`;
      link.append(text("span", ` of the fire at ${instant(fire.fire_time).textContent}`, "visually-hidden"));
      link.onclick = (e) => { if (!modified(e)) { e.preventDefault(); openSession(fire.session_id); } };
      session.firstChild.append(link);
    } else session.firstChild.append(none());
    return row;
  }));
}
// Pause, resume and run now: the answer refreshes the schedule; an error shows beside the buttons.
const scheduleAction = (action, done) => async (e) => {
  const button = e.currentTarget, id = shownSchedule;
  problem("schedule-error", "");
  $("schedule-result").textContent = "";
  button.disabled = true;
  try {
    await api("POST", `/api/schedules/${encodeURIComponent(id)}/${action}`);
    if (shownSchedule !== id) return;
    $("schedule-result").textContent = done;
    await refreshSchedule(id);
  } catch (error) {
    if (shownSchedule === id) problem("schedule-error", error.message);
  } finally {
    button.disabled = false;
    // Pause and Resume take each other's place: the keyboard stays on the one shown.
    if (button.classList.contains("hidden")) (button === $("schedule-pause") ? $("schedule-resume") : $("schedule-pause")).focus();
  }
};
$("schedule-pause").onclick = scheduleAction("pause", "Paused: no fire runs until you resume it.");
$("schedule-resume").onclick = scheduleAction("resume", "Resumed.");
$("schedule-run").onclick = scheduleAction("run", "Started a fire; it is in the history below.");

// ---- The trash: what errand deleted, to put back or to remove for good. ----
async function loadTrash() {
  const items = [];
  for (const entry of await api("GET", "/api/trash")) {
    const item = text("li", `${entry.original_path} · ${entry.kind}, ${bytes(entry.size)} · deleted ${entry.deleted_at} `);
    item.dataset.id = entry.id;
    const restore = text("button", "Restore");
    restore.onclick = async () => {
      restore.disabled = true;
      try {
        const restored = await api("POST", `/api/trash/${entry.id}/restore`);
        item.replaceChildren(text("span", `restored to ${restored.original_path}`, "restored"));
      } catch (error) {
        restore.disabled = false;
        item.append(text("span", ` cannot restore: ${error.message}`, "status error"));
      }
    };
    item.append(restore);
    items.push(item);
  }
  $("trash-list").replaceChildren(...items);
  if (!items.length) $("trash-list").append(text("li", "The trash is empty.", "status"));
}
$("show-trash").onclick = async (e) => {
  e.preventDefault();
  show("trash");
  $("trash-result").textContent = "";
  try { await loadTrash(); } catch (error) { $("trash-result").textContent = error.message; }
};
$("empty-trash").onclick = async () => {
  if (!confirm("Remove everything in the trash for good? Nothing in it can be restored afterwards.")) return;
  try {
    const emptied = await api("POST", "/api/trash/empty", {});
    $("trash-result").textContent = `Emptied the trash: ${emptied.entries} entries, ${bytes(emptied.bytes)} freed.`;
    await loadTrash();
  } catch (error) { $("trash-result").textContent = `Cannot empty the trash: ${error.message}`; }
};

// The address names what is shown: a session (#ID), the schedules (#schedules) or one of them (#schedules/ID).
const isSchedules = (hash) => hash === "schedules" || hash.startsWith("schedules/");
function route() {
  const hash = location.hash.slice(1);
  if (hash === "schedules") openSchedules();
  else if (isSchedules(hash)) openSchedule(hash.slice("schedules/".length), false);
  else if (hash) openSession(hash);
  else show("composer");
}
loadSessions();
loadInbox(false).catch(() => {});
route();
window.addEventListener("hashchange", () => {
  const hash = location.hash.slice(1);
  if (isSchedules(hash) || (hash && (hash !== current || $("session").classList.contains("hidden")))) route();
});
