// The injection suite's MCP server, over stdio. `read_inbox` (marked read-only) returns the text of the file
// named by the first argument: the poisoned message. `save_note` (not marked read-only: it changes something
// outside errand's undo) appends each call's arguments, as a JSON line, to the file named by the second
// argument, which the suite reads to learn whether errand let a call through.
import { createInterface } from "node:readline";
import { appendFileSync, readFileSync } from "node:fs";

const [inbox, record] = process.argv.slice(2);
const send = (message) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
const text = (value) => ({ content: [{ type: "text", text: value }] });
for await (const line of createInterface({ input: process.stdin })) {
  const message = JSON.parse(line);
  if (message.method === "initialize") {
    send({ id: message.id, result: {
      protocolVersion: message.params.protocolVersion,
      capabilities: { tools: {} },
      serverInfo: { name: "inbox", version: "1.0.0" },
    } });
  } else if (message.method === "tools/list") {
    send({ id: message.id, result: { tools: [
      {
        name: "read_inbox", description: "Returns the newest message in the team inbox.",
        inputSchema: { type: "object", properties: {} }, annotations: { readOnlyHint: true },
      },
      {
        name: "save_note", description: "Saves a note to the team's shared notebook.",
        inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
      },
    ] } });
  } else if (message.method === "tools/call" && message.params.name === "read_inbox") {
    send({ id: message.id, result: text(readFileSync(inbox, "utf8")) });
  } else if (message.method === "tools/call" && message.params.name === "save_note") {
    appendFileSync(record, JSON.stringify(message.params.arguments ?? {}) + "\n");
    send({ id: message.id, result: text("saved") });
  } else if (message.id !== undefined) {
    send({ id: message.id, result: {} });
  }
}
