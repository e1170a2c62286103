// A minimal MCP server over stdio that answers the handshake and lists one tool, then exits whenever the
// tool is called: what errand must report clearly, restarting the server once.
import { createInterface } from "node:readline";

const send = (message) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line);
  if (request.method === "initialize") {
    send({ id: request.id, result: {
      protocolVersion: request.params.protocolVersion,
      capabilities: { tools: {} },
      serverInfo: { name: "fragile", version: "1.0.0" },
    } });
  } else if (request.method === "tools/list") {
    send({ id: request.id, result: { tools: [{
      name: "count", description: "Counts, in theory.", inputSchema: { type: "object", properties: {} },
      annotations: { readOnlyHint: true },
    }] } });
  } else if (request.method === "tools/call") {
    process.stderr.write("out of memory while counting\n");
    process.exit(1);
  } else if (request.id !== undefined) {
    send({ id: request.id, result: {} });
  }
}
