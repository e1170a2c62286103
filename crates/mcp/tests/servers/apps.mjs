// An MCP server that ships an MCP App, built with the official SDKs (@modelcontextprotocol/sdk and
// @modelcontextprotocol/ext-apps), over stdio. When the client declares the `io.modelcontextprotocol/ui`
// extension, `show_tally` names the view `ui://tally/view.html`; `add_to_tally` is for the view alone
// (visibility ["app"]) and changes the tally; `reset_tally` is for the model alone (visibility ["model"]).
// The view is one HTML file with the ext-apps App class inlined (no network): it shows the tool result, calls
// add_to_tally, asks for fullscreen, on request probes what a sandboxed view must not reach (the host's API,
// its document, storage, cookies), writing each outcome into the page for the test to read, and navigates its
// frame away.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import {
  registerAppTool,
  registerAppResource,
  getUiCapability,
  RESOURCE_MIME_TYPE,
} from "@modelcontextprotocol/ext-apps/server";
import { z } from "zod";

const VIEW = "ui://tally/view.html";
const require = createRequire(import.meta.url);
// The bundle is an ES module ending in `export{local as Name,…}`; a classic inline script cannot export, so
// its exports become one global object.
const bundle = readFileSync(
  require.resolve("@modelcontextprotocol/ext-apps/app-with-deps"),
  "utf8",
).replace(/export\s*\{([^}]*)\}\s*;?\s*$/, (_, names) => {
  const pairs = names.split(",").map((pair) => {
    const [local, exported] = pair.trim().split(/\s+as\s+/);
    return `${exported ?? local}:${local}`;
  });
  return `globalThis.McpApps={${pairs.join(",")}};`;
});

const view = `<!doctype html>
<html><head><meta charset="utf-8"><title>Tally</title>
<style>body{font-family:sans-serif;margin:8px} #count{font-size:2em}</style></head>
<body>
<h1 id="label">…</h1>
<p>Count: <span id="count">?</span> <span id="mode">inline</span></p>
<button id="add">Add 2</button> <button id="fullscreen">Fullscreen</button>
<button id="forbidden">Reset (model only)</button> <button id="probe">Probe</button> <button id="leave">Leave</button>
<pre id="status"></pre><pre id="probed"></pre>
<script>${bundle}</script>
<script>
const $ = (id) => document.getElementById(id);
const say = (text) => { $("status").textContent = text; };
const app = new McpApps.App({ name: "tally-view", version: "1.0.0" }, { availableDisplayModes: ["inline", "fullscreen"] });
app.ontoolinput = (params) => { $("label").textContent = params.arguments?.label ?? "(no label)"; };
app.ontoolresult = (result) => {
  $("count").textContent = String(result.structuredContent?.count);
  document.body.dataset.result = "received";
};
app.onhostcontextchanged = (context) => { if (context.displayMode) $("mode").textContent = context.displayMode; };
$("add").onclick = async () => {
  try {
    const result = await app.callServerTool({ name: "add_to_tally", arguments: { amount: 2 } });
    if (result.isError) { say("tool error: " + JSON.stringify(result.content)); return; }
    $("count").textContent = String(result.structuredContent?.count);
    say("added");
  } catch (error) { say("refused: " + error.message); }
};
$("forbidden").onclick = async () => {
  try {
    const result = await app.callServerTool({ name: "reset_tally", arguments: {} });
    say(result.isError ? "tool error: " + JSON.stringify(result.content) : "reset ran");
  } catch (error) { say("refused: " + error.message); }
};
$("fullscreen").onclick = async () => {
  try {
    const result = await app.requestDisplayMode({ mode: "fullscreen" });
    $("mode").textContent = result.mode;
  } catch (error) { say("refused: " + error.message); }
};
$("probe").onclick = async () => {
  const outcome = {};
  const attempt = async (name, action) => {
    try { outcome[name] = "allowed: " + String(await action()).slice(0, 80); }
    catch (error) { outcome[name] = "refused: " + (error.name || "error"); }
  };
  await attempt("fetch", async () => (await fetch("/api/sessions", { credentials: "include" })).status);
  await attempt("parent", () => parent.document.title);
  await attempt("storage", () => localStorage.length);
  await attempt("cookie", () => document.cookie || "(none)");
  await attempt("openLink", () => app.openLink({ url: "https://example.invalid/" }).then(() => "opened"));
  $("probed").textContent = JSON.stringify(outcome);
};
// A view that navigates its own frame away (to a page of the same server, here a data: URL) must lose the host.
$("leave").onclick = () => { location.href = "data:text/html,<p>elsewhere</p>"; };
app.connect().then(() => { document.body.dataset.connected = "yes"; });
</script>
</body></html>`;

let count = 0;
const server = new McpServer({ name: "tally", version: "1.0.0" });
const tally = (text) => ({ content: [{ type: "text", text }], structuredContent: { count } });

server.registerTool(
  "add_to_tally",
  {
    description: "Adds to the tally (for the tally view).",
    inputSchema: { amount: z.number() },
    _meta: { ui: { resourceUri: VIEW, visibility: ["app"] } },
  },
  async ({ amount }) => {
    count += amount;
    return tally(`the tally is now ${count}`);
  },
);
server.registerTool(
  "reset_tally",
  {
    description: "Sets the tally to zero.",
    inputSchema: {},
    _meta: { ui: { resourceUri: VIEW, visibility: ["model"] } },
  },
  async () => {
    count = 0;
    return tally("the tally is 0");
  },
);
registerAppResource(server, "Tally view", VIEW, { description: "Shows the tally." }, async () => ({
  contents: [{
    uri: VIEW,
    mimeType: RESOURCE_MIME_TYPE,
    text: view,
    _meta: { ui: { csp: { connectDomains: ["https://api.example.test"] }, prefersBorder: true } },
  }],
}));
// As the extension asks: the tool names its view only to a host that declared it can show one.
server.server.oninitialized = () => {
  const apps = getUiCapability(server.server.getClientCapabilities())?.mimeTypes?.includes(RESOURCE_MIME_TYPE);
  const config = { description: "Shows the tally in a view.", inputSchema: { label: z.string() }, annotations: { readOnlyHint: true } };
  const result = async ({ label }) => tally(`${label}: the tally is ${count}`);
  if (apps) {
    registerAppTool(server, "show_tally", { ...config, _meta: { ui: { resourceUri: VIEW } } }, result);
  } else {
    server.registerTool("show_tally", config, result);
  }
};
await server.connect(new StdioServerTransport());
