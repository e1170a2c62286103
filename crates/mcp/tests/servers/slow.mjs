// A minimal MCP server over stdio with one tool that never finishes on its own. When the client cancels the
// call (notifications/cancelled), it writes the cancelled request's id and the reason to the file named by
// its first argument: what errand must send when the person presses Ctrl-C.
import { createInterface } from "node:readline";
import { writeFileSync } from "node:fs";

const record = process.argv[2];
const send = (message) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
const waiting = new Map();
for await (const line of createInterface({ input: process.stdin })) {
  const message = JSON.parse(line);
  if (message.method === "initialize") {
    send({ id: message.id, result: {
      protocolVersion: message.params.protocolVersion,
      capabilities: { tools: {} },
      serverInfo: { name: "slow", version: "1.0.0" },
    } });
  } else if (message.method === "tools/list") {
    send({ id: message.id, result: { tools: [{
      name: "wait", description: "Waits until cancelled.", inputSchema: { type: "object", properties: {} },
      annotations: { readOnlyHint: true },
    }] } });
  } else if (message.method === "tools/call") {
    const token = message.params._meta?.progressToken;
    if (token !== undefined) {
      send({ method: "notifications/progress", params: { progressToken: token, progress: 1, message: "waiting" } });
    }
    waiting.set(message.id, true);
  } else if (message.method === "notifications/cancelled") {
    const id = message.params.requestId;
    writeFileSync(record, JSON.stringify({ requestId: id, wasWaiting: waiting.has(id), reason: message.params.reason }));
  } else if (message.id !== undefined) {
    send({ id: message.id, result: {} });
  }
}
