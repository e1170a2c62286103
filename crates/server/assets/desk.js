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
const show = (id) => ["composer", "session", "trash"].forEach((s) => $(s).classList.toggle("hidden", s !== id));
const text = (tag, content, cls) => { const e = document.createElement(tag); e.textContent = content; if (cls) e.className = cls; return e; };
const bytes = (n) => n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
const fileUrl = (session, path) => `/api/sessions/${session}/file?path=${encodeURIComponent(path)}`;

// The token arrives once in the address (errand serve --open); the server turned it into a cookie.
if (location.search.includes("token=")) history.replaceState(null, "", location.pathname + location.hash);

async function loadSessions() {
  // Fetch first, then swap the list in one go: no flicker, no moment with an empty list.
  const items = [];
  for (const s of await api("GET", "/api/sessions")) {
    const item = text("li", "");
    item.tabIndex = 0;
    item.dataset.id = s.id;
    item.classList.toggle("current", s.id === current);
    item.append(text("div", s.task), text("div", `${s.status} · ${s.id}`, "status"));
    item.onclick = item.onkeydown = (e) => { if (!e.key || e.key === "Enter") openSession(s.id); };
    items.push(item);
  }
  $("sessions").replaceChildren(...items);
}

// ---- The log: kept as data (one entry per line), with only the blocks near the viewport in the DOM. ----
// A session can run to tens of thousands of events; rendering each as a node would make the page crawl.
// Entries are grouped in blocks of BLOCK; a block off screen is an empty element as tall as it was (or, if
// never drawn, as tall as its entries are on average). MARGIN is how far beyond the viewport blocks are drawn.
const BLOCK = 100, ESTIMATE = 22, MARGIN = 1500, FOLLOW_SLACK = 40;
const log = $("log");
let entries = [], blocks = [], following = true, flushPending = false, folders = [];
const dirty = new Set(), measured = { height: 0, entries: 0 };
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
  entries = []; blocks = []; following = true; dirty.clear();
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
    node = document.createElement("details");
    node.className = entry.kind;
    node.append(document.createElement("summary"), text("div", "", "detail"));
    node.addEventListener("toggle", () => {
      entry.open = node.open;
      if (node.open) (entry.kind === "tool" ? openCall : openChange)(entry, node);
    });
    fillSummary(entry, node);
    if (entry.open) node.open = true;
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
  } else if (entry.kind !== "note") fillSummary(entry, entry.node);
}
function fillSummary(entry, node) {
  const summary = node.firstChild;
  if (entry.kind === "tool") {
    const mark = entry.finished ? (entry.is_error ? "✗" : "✓") : "…";
    const what = entry.finished ? entry.summary
      : entry.progress || (entry.input && typeof entry.input.path === "string" ? entry.input.path : "running");
    summary.textContent = `${mark} ${entry.tool} · ${what}`;
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
  if (entry.node && session === current) showCall(entry, entry.node);
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
function openSession(id) {
  show("session");
  closePreview();
  current = id;
  for (const item of $("sessions").children) item.classList.toggle("current", item.dataset.id === id);
  // The address names the session, so a reload comes back to it and replays every event.
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  if (source) source.close();
  resetLog(); $("checklist").replaceChildren();
  ["plan", "approval", "input", "undo-result"].forEach((box) => $(box).classList.add("hidden"));
  $("undo-result").classList.remove("undone");
  $("session-error").textContent = "";
  $("session-title").textContent = id; $("session-status").textContent = "running"; $("session-usage").textContent = "";
  let textEntry = null, tokens = 0, cost = 0;
  const calls = new Map();
  const line = (entry) => { textEntry = null; return addEntry(entry); };
  source = new EventSource(`/api/sessions/${id}/events`);
  source.onerror = () => { source.close(); loadSessions(); };
  const on = (type, handle) => source.addEventListener(type, (m) => handle(JSON.parse(m.data)));
  on("TaskStarted", (e) => {
    folders = (e.folders || []).map((f) => f.path);
    $("session-title").textContent = e.task; $("session-status").textContent = "running";
    $("stop").hidden = false;
    if (e.resumed) line({ kind: "note", text: `continued: ${e.task}` });
  });
  on("Steered", (e) => line({ kind: "note", text: `you: ${e.text}` }));
  on("TextDelta", (e) => {
    // Deltas grow one text entry per stretch of text; the DOM catches up once per frame.
    if (!textEntry) textEntry = addEntry({ kind: "text", text: "" });
    textEntry.text += e.text;
    touch(textEntry);
  });
  on("Retrying", (e) => line({ kind: "note", text: `retrying (attempt ${e.attempt}): ${e.reason}` }));
  on("Warning", (e) => line({ kind: "note", text: `warning: ${e.message}`, cls: "error" }));
  on("ToolStarted", (e) => {
    textEntry = null;
    // The plan and its checklist have their own places on the page.
    if (e.tool === "propose_plan" || e.tool === "update_plan") return;
    calls.set(e.call_id, line({ kind: "tool", call_id: e.call_id, tool: e.tool, input: e.input, finished: false }));
  });
  on("ToolFinished", (e) => {
    textEntry = null;
    let entry = calls.get(e.call_id);
    if (!entry) {
      if (!e.is_error && (e.tool === "propose_plan" || e.tool === "update_plan")) return;
      entry = line({ kind: "tool", call_id: e.call_id, tool: e.tool, input: null });
    }
    Object.assign(entry, { finished: true, is_error: e.is_error, summary: e.summary });
    touch(entry);
  });
  on("ToolProgress", (e) => {
    const entry = calls.get(e.call_id);
    if (!entry || entry.finished) return;
    const amount = e.total ? `${Math.round((e.progress / e.total) * 100)}%` : `${e.progress}`;
    entry.progress = `running · ${amount}${e.message ? ` ${e.message}` : ""}`;
    touch(entry);
  });
  on("SubagentStarted", (e) => line({ kind: "note", text: `agent ${e.agent} at work (session ${e.session})` }));
  on("SubagentFinished", (e) => line({ kind: "note", text: `agent ${e.agent}: ${e.status}` }));
  // Hooks that changed something show in the log; the ones that let things be stay in the event stream.
  on("HookRan", (e) => {
    if (e.outcome === "continue" || e.outcome === "allow") return;
    line({ kind: "note", text: `hook ${e.hook} (${e.plugin}) ${e.outcome}${e.message ? `: ${e.message}` : ""}`,
           cls: e.outcome === "error" ? "error" : undefined });
  });
  on("InputRequested", (e) => {
    line({ kind: "note", text: `${e.server} asks: ${e.message}` });
    pendingInput = { id: e.input_id, fields: e.fields };
    $("input-text").textContent = `${e.server} asks: ${e.message}`;
    $("input-fields").replaceChildren(...e.fields.map(fieldControl));
    $("input-error").textContent = "";
    $("input").classList.remove("hidden");
    const first = $("input-fields").querySelector("input, select");
    if (first) first.focus();
  });
  on("InputAnswered", (e) => {
    line({ kind: "note", text: `${e.server}: ${e.action} (${e.by})` });
    if (pendingInput && pendingInput.id === e.input_id) { $("input").classList.add("hidden"); pendingInput = null; }
  });
  on("FileChanged", (e) => line({ kind: "change", path: e.path, change: e.change, from: e.from, trash_id: e.trash_id }));
  on("PlanProposed", (e) => {
    $("plan-summary").textContent = e.plan.summary;
    $("plan-steps").replaceChildren(...e.plan.steps.map((s) => text("li", s)));
    const effects = Object.entries(e.plan.effects || {}).map(([k, v]) => `${k} ${v.join(", ")}`).join(" · ");
    $("plan-effects").textContent = effects ? `will ${effects}` : "";
    $("plan").classList.remove("hidden");
  });
  on("PlanResolved", () => $("plan").classList.add("hidden"));
  on("TaskListChanged", (e) => {
    $("checklist").replaceChildren(...e.steps.map((s) => text("li", `${s.text}${s.status === "done" ? " ✓" : ""}`, `step ${s.status}`)));
  });
  on("ApprovalRequested", (e) => {
    pendingCall = e.call_id;
    $("approval-text").textContent = `${e.tool} ${JSON.stringify(e.input)} — ${e.reason}`;
    $("approval").classList.remove("hidden");
    $("allow-once").focus();
  });
  on("ApprovalResolved", () => $("approval").classList.add("hidden"));
  on("Usage", (e) => {
    tokens += e.input_tokens + e.output_tokens + e.cache_read_tokens + e.cache_write_tokens;
    cost += e.cost_usd || 0;
    $("session-usage").textContent = `${tokens.toLocaleString()} tokens · $${cost.toFixed(4)}`;
  });
  on("Finished", (e) => {
    $("session-status").textContent = e.reason ? `${e.status}: ${e.reason}` : e.status;
    // A finished task has nothing to stop; the steer box continues it instead.
    $("stop").hidden = true;
    source.close();
    loadSessions();
  });
}

// Errors of a button's request show beside the buttons rather than vanishing.
const attempt = (work) => () => work().catch((error) => { $("session-error").textContent = error.message; });
$("new-task").onclick = () => { history.replaceState(null, "", location.pathname); show("composer"); $("task").focus(); };
async function start() {
  $("start-error").textContent = "";
  try {
    const folders = $("folders").value.split("\n").map((f) => f.trim()).filter(Boolean);
    const read_only = $("read-only").value.split("\n").map((f) => f.trim()).filter(Boolean);
    const body = { task: $("task").value, folders, read_only, no_plan: $("no-plan").checked };
    if ($("model").value.trim()) body.model = $("model").value.trim();
    if ($("max-cost").value.trim()) body.max_cost = Number($("max-cost").value);
    const { id } = await api("POST", "/api/sessions", body);
    await loadSessions();
    openSession(id);
  } catch (error) { $("start-error").textContent = error.message; }
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
  .catch((error) => { $("input-error").textContent = error.message; });
// The browser checks required fields and formats before the form submits.
$("input").onsubmit = (e) => { e.preventDefault(); if (pendingInput) sendInput({ action: "accept", content: inputContent() }); };
$("input-decline").onclick = () => { if (pendingInput) sendInput({ action: "decline" }); };
$("stop").onclick = attempt(() => api("POST", `/api/sessions/${current}/stop`));
$("undo").onclick = attempt(async () => {
  const report = await api("POST", `/api/sessions/${current}/undo`, {});
  const box = $("undo-result");
  const count = (outcome) => report.entries.filter((entry) => entry.outcome === outcome).length;
  const back = count("restored") + count("removed") + count("already_original");
  const refused = report.entries.filter((entry) => entry.outcome === "conflict" || entry.outcome === "failed");
  box.replaceChildren(text("strong", report.entries.length === 0 ? "Undo: this session changed nothing."
    : `Undo: ${back} paths put back${refused.length ? `, ${refused.length} left alone` : ""}.`));
  const list = document.createElement("ul");
  for (const entry of report.entries) {
    const says = entry.reason ? `${entry.outcome.replace("_", " ")}: ${entry.reason}` : entry.outcome.replace("_", " ");
    list.append(text("li", `${entry.op} ${shortPath(entry.path)} — ${says}`, refused.includes(entry) ? "error" : ""));
  }
  if (report.entries.length) box.append(list);
  box.classList.remove("hidden");
  box.classList.add("undone");
});
$("steer").onkeydown = async (e) => {
  if (e.key !== "Enter" || !$("steer").value.trim()) return;
  try {
    const { id } = await api("POST", `/api/sessions/${current}/messages`, { text: $("steer").value });
    $("steer").value = "";
    if (id && source.readyState === EventSource.CLOSED) openSession(id);
  } catch (error) { $("session-error").textContent = error.message; }
};
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
const pickerFailed = (error) => { $("start-error").textContent = error.message; };
const addLine = (id, line) => { $(id).value = ($(id).value.trim() ? $(id).value.trim() + "\n" : "") + line; };
$("browse").onclick = () => browse(null).catch(pickerFailed);
$("picker-up").onclick = () => picked && picked.parent && browse(picked.parent).catch(pickerFailed);
$("grant").onclick = () => picked && addLine("folders", picked.path);
$("grant-read-only").onclick = () => picked && addLine("read-only", picked.path);

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

loadSessions();
if (location.hash.length > 1) openSession(location.hash.slice(1)); else show("composer");
window.addEventListener("hashchange", () => { if (location.hash.length > 1 && location.hash.slice(1) !== current) openSession(location.hash.slice(1)); });
