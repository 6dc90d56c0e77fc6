// deno-lint-ignore-file no-console -- a command-line program: its output is its report
// An HTTP download through a SOCKS5 proxy with an npm client library, run by Node in a client
// host of the client matrix (tests/e2e/clients_test.ts).
//
//   node client.mjs socks-proxy-agent|undici PROXY_URL URL OUT
//
// Writes the body to OUT; on failure prints the error's code and message and exits 1.
import { writeFileSync } from "node:fs";
import http from "node:http";
import { SocksProxyAgent } from "socks-proxy-agent";
import { request, Socks5ProxyAgent } from "undici";

const [library, proxy, url, out] = process.argv.slice(2);

/** socks-proxy-agent as an `http.Agent`: `socks5h://` sends the name, `socks5://` resolves it. */
function viaSocksProxyAgent() {
  const agent = new SocksProxyAgent(proxy, { timeout: 30_000 });
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => resolve(Buffer.concat(chunks)));
      response.on("error", reject);
    }).on("error", reject);
  });
}

/** undici's Socks5ProxyAgent as a dispatcher: `socks5://` sends the name. */
async function viaUndici() {
  const dispatcher = new Socks5ProxyAgent(proxy);
  try {
    const response = await request(url, { dispatcher });
    return Buffer.from(await response.body.arrayBuffer());
  } finally {
    await dispatcher.close();
  }
}

try {
  const body = library === "undici" ? await viaUndici() : await viaSocksProxyAgent();
  writeFileSync(out, body);
} catch (error) {
  const cause = error.cause ? ` (cause: ${error.cause.code ?? ""} ${error.cause.message})` : "";
  console.error(`${library} failed: ${error.code ?? ""} ${error.message}${cause}`);
  process.exit(1);
}
