// An MCP server over streamable HTTP behind OAuth 2.1, with its own authorization server, on 127.0.0.1 only:
// protected-resource and authorization-server metadata, dynamic client registration, an authorization
// endpoint that approves at once (the "person" always says yes), PKCE-checked code exchange, refresh, and
// an /mcp endpoint that answers 401 with a challenge until a valid bearer token comes. Access tokens expire
// after `expires_in` seconds (the second argument, default 1), so a client must refresh them.
// The authorization server names itself in its redirects (`iss`, RFC 9207) and says so in its metadata. The
// third argument makes it misbehave the ways a client must catch: `mix-up` sends another server's `iss` in the
// redirect (as an authorization server an attacker controls would); `wrong-issuer` serves metadata whose
// `issuer` is not the server it was fetched from (RFC 8414 section 3.3). `cimd` takes client ID metadata
// documents (`client_id_metadata_document_supported`): a client may name itself by its document's address.
// Usage: node oauth-server.mjs LOG_FILE [EXPIRES_IN] [MODE]; prints "listening PORT" once ready. Each step is
// appended to LOG_FILE as a JSON line, for tests to check what the client did.
import { createServer } from "node:http";
import { appendFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";

const [log, expiresArgument, mode = "honest"] = process.argv.slice(2);
const expiresIn = Number(expiresArgument ?? 1);
const record = (entry) => appendFileSync(log, JSON.stringify(entry) + "\n");
const codes = new Map();
const refreshTokens = new Set();
const accessTokens = new Map(); // token -> its number
let issued = 0;
let base = "";

const json = (response, status, body, headers = {}) => {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify(body));
};
const body = (request) =>
  new Promise((resolve) => {
    let text = "";
    request.on("data", (chunk) => (text += chunk));
    request.on("end", () => resolve(text));
  });
const issue = (response, scope) => {
  issued += 1;
  const access = `at-${randomBytes(12).toString("hex")}`;
  const refresh = `rt-${randomBytes(12).toString("hex")}`;
  accessTokens.set(access, issued);
  refreshTokens.add(refresh);
  json(response, 200, { access_token: access, token_type: "Bearer", expires_in: expiresIn, refresh_token: refresh, scope });
};

const server = createServer(async (request, response) => {
  const url = new URL(request.url, base);
  if (url.pathname === "/.well-known/oauth-protected-resource/mcp") {
    return json(response, 200, { resource: `${base}/mcp`, authorization_servers: [base], scopes_supported: ["notes:read"] });
  }
  if (url.pathname === "/.well-known/oauth-authorization-server") {
    return json(response, 200, {
      issuer: mode === "wrong-issuer" ? "https://issuer.example" : base,
      authorization_response_iss_parameter_supported: true,
      ...(mode === "cimd" && { client_id_metadata_document_supported: true }),
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      registration_endpoint: `${base}/register`,
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["none"],
      response_types_supported: ["code"],
    });
  }
  if (url.pathname === "/register" && request.method === "POST") {
    const registration = JSON.parse(await body(request));
    record({ event: "register", client_name: registration.client_name, redirect_uris: registration.redirect_uris });
    return json(response, 201, { client_id: "client-1", token_endpoint_auth_method: "none", redirect_uris: registration.redirect_uris });
  }
  if (url.pathname === "/authorize") {
    const query = url.searchParams;
    record({
      event: "authorize",
      client_id: query.get("client_id"),
      scope: query.get("scope"),
      resource: query.get("resource"),
      code_challenge_method: query.get("code_challenge_method"),
    });
    const code = `code-${randomBytes(8).toString("hex")}`;
    codes.set(code, { challenge: query.get("code_challenge"), redirect: query.get("redirect_uri"), scope: query.get("scope") });
    const back = new URL(query.get("redirect_uri"));
    back.searchParams.set("code", code);
    back.searchParams.set("state", query.get("state"));
    back.searchParams.set("iss", mode === "mix-up" ? "https://attacker.example" : base);
    response.writeHead(302, { location: back.toString() });
    return response.end();
  }
  if (url.pathname === "/token" && request.method === "POST") {
    const form = new URLSearchParams(await body(request));
    const grant = form.get("grant_type");
    record({ event: "token", grant_type: grant, resource: form.get("resource"), client_id: form.get("client_id") });
    if (grant === "authorization_code") {
      const pending = codes.get(form.get("code"));
      codes.delete(form.get("code"));
      const verified = pending &&
        createHash("sha256").update(form.get("code_verifier") ?? "").digest("base64url") === pending.challenge &&
        form.get("redirect_uri") === pending.redirect;
      if (!verified) return json(response, 400, { error: "invalid_grant" });
      return issue(response, pending.scope);
    }
    if (grant === "refresh_token" && refreshTokens.delete(form.get("refresh_token"))) {
      return issue(response, "notes:read");
    }
    return json(response, 400, { error: "invalid_grant" });
  }
  if (url.pathname === "/mcp") {
    const token = (request.headers.authorization ?? "").replace(/^Bearer /, "");
    if (!accessTokens.has(token)) {
      const challenge = `Bearer error="invalid_token", resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`;
      return json(response, 401, { error: "invalid_token" }, { "www-authenticate": challenge });
    }
    if (request.method !== "POST") {
      response.writeHead(405);
      return response.end();
    }
    const message = JSON.parse(await body(request));
    record({ event: "mcp", method: message.method, token_number: accessTokens.get(token) });
    if (message.id === undefined) {
      response.writeHead(202);
      return response.end();
    }
    const answer = (result) => json(response, 200, { jsonrpc: "2.0", id: message.id, result });
    switch (message.method) {
      case "initialize":
        return answer({
          protocolVersion: message.params.protocolVersion,
          capabilities: { tools: {} },
          serverInfo: { name: "secure-notes", version: "1.0.0" },
        });
      case "tools/list":
        return answer({ tools: [{
          name: "whoami", description: "Says who you are signed in as.",
          inputSchema: { type: "object", properties: {} }, annotations: { readOnlyHint: true },
        }] });
      case "tools/call":
        return answer({ content: [{ type: "text", text: `signed in as ada (token number ${accessTokens.get(token)})` }] });
      default:
        return answer({});
    }
  }
  response.writeHead(404);
  response.end();
});

server.listen(0, "127.0.0.1", () => {
  base = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`listening ${server.address().port}\n`);
});
