/**
 * The status page in a real browser: Debian's headless Chromium loads `GET /` from the admin
 * listener (bearer token sent by the DevTools protocol, as a reverse proxy in front would) while
 * relays flow v4→v6 and v6→v4, and the test reads what the page shows — the DOM text of its
 * tables and chart legends after the page's own script has polled `/api/status` — and keeps a
 * screenshot under `tests/artifacts/status_page/` (printed; CI keeps it as an artifact). Then
 * the page is loaded again without the header, answering the Basic challenge as a person at the
 * browser's prompt would (user `token`), and its own polls must get through as well.
 *
 * Chromium is driven over `--remote-debugging-port` with Deno's WebSocket. Skipped, saying
 * why, when `/usr/bin/chromium` is missing.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { formatIp, type IpEndpoint, parseIp } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { tokenDigest } from "../../gateway/observe/admin_auth.ts";
import {
  connectTo,
  echo,
  readerOf,
  readSocksReply,
  startServer,
  startTestGateway,
  writeAll,
} from "../integration/_fixtures.ts";
import { e2eIgnore, requireE2e } from "../helpers/netns.ts";

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "browser-test-token";
const ARTIFACTS = fileURLToPath(new URL("../artifacts/status_page/", import.meta.url));

function target(text: string, port: number): SocksTarget {
  return { address: parseIp(text)!, port };
}

/** A relay through the gateway; `ping()` sends and reads back 1 KiB through it. */
async function openRelay(gateway: IpEndpoint, to: SocksTarget) {
  const conn = await connectTo(gateway);
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(conn, encodeRequest({ command: 1, target: to }));
  assert.equal((await readSocksReply(reader)).reply, 0);
  const chunk = new Uint8Array(1024).fill(42);
  return {
    conn,
    async ping() {
      await writeAll(conn, chunk);
      await reader.readExact(chunk.length);
    },
  };
}

/** A minimal DevTools protocol client over one target's WebSocket. */
class Cdp {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, (message: Record<string, unknown>) => void>();
  #next = 1;
  /** Receives the protocol's events (method and params). */
  onEvent: (method: string, params: Record<string, unknown>) => void = () => {};

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (typeof message.id === "number") this.#pending.get(message.id)?.(message);
      else if (typeof message.method === "string") this.onEvent(message.method, message.params);
    };
  }

  static async open(url: string): Promise<Cdp> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`Cannot open ${url}`));
    });
    return new Cdp(socket);
  }

  async send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<T> {
    const id = this.#next++;
    const { promise, resolve } = Promise.withResolvers<Record<string, unknown>>();
    this.#pending.set(id, resolve);
    this.#socket.send(JSON.stringify({ id, method, params }));
    const timer = setTimeout(() => resolve({ error: { message: `${method}: no answer` } }), 30_000);
    const answer = await promise.finally(() => {
      clearTimeout(timer);
      this.#pending.delete(id);
    });
    if (answer.error) throw new Error(`${method}: ${JSON.stringify(answer.error)}`);
    return answer.result as T;
  }

  /** Evaluates `expression` in the page and returns its (JSON) value. */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = await this.send<{ result: { value: T } }>("Runtime.evaluate", {
      expression,
      returnByValue: true,
    });
    return answer.result.value;
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.#socket.onclose = resolve);
    this.#socket.close();
    await closed;
  }
}

/** Starts headless Chromium with a fresh profile and DevTools on a kernel-chosen port. */
async function startChromium(profile: string) {
  const child = new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      "--window-size=1280,1400",
      "about:blank",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // Chromium writes its port to DevToolsActivePort once it listens.
  let port = 0;
  for (let i = 0; i < 300 && port === 0; i++) {
    try {
      port = Number((await Deno.readTextFile(`${profile}/DevToolsActivePort`)).split("\n")[0]);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  if (!port) {
    child.kill();
    await child.status;
    throw new Error("Cannot start chromium: no DevToolsActivePort");
  }
  const client = Deno.createHttpClient({});
  try {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`, { client })).json();
    const page = targets.find((t: { type: string }) => t.type === "page");
    assert.ok(page, "chromium has a page target");
    return { child, wsUrl: page.webSocketDebuggerUrl as string };
  } finally {
    client.close();
  }
}

/** The cells of each row of table `id`, as the page shows them. */
function rowsOf(cdp: Cdp, id: string): Promise<string[][]> {
  return cdp.evaluate(
    `[...document.querySelectorAll("#${id} tr")].map((r) => [...r.cells].map((c) => c.textContent))`,
  );
}

const STATUS_PAGE_TEST =
  "status page in headless Chromium shows live v4→v6 and v6→v4 relays, hops, charts";

Deno.test({
  name: STATUS_PAGE_TEST,
  // Skipped with a printed reason outside CI when Chromium is missing; in CI it runs and fails.
  ignore: e2eIgnore(STATUS_PAGE_TEST, { programs: ["chromium"] }),
  async fn() {
    requireE2e({ programs: ["chromium"] });
    const digest = Array.from(tokenDigest(TOKEN), (b) => b.toString(16).padStart(2, "0")).join("");
    using closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadPort = closed.addr.port;
    closed.close();
    await using gw = startTestGateway(
      `admin:
  listen: "127.0.0.1:0"
  auth: { token_sha256: "${digest}" }
routes:
  - to: ["*.nowhere.example"]
    chain:
      - any: ["socks5://127.0.0.1:${deadPort}", "socks5://127.0.0.1:${deadPort + 1}"]
`,
      { statusIntervalMs: 200 },
    );
    await using v4 = startServer("127.0.0.1", echo);
    await using v6 = startServer("::1", echo);
    // A CONNECT through the route whose alternatives are both dead marks them both.
    {
      using conn = await connectTo(gw.endpoint(4));
      const reader = readerOf(conn);
      await writeAll(conn, encodeGreeting({ methods: [0] }));
      assert.equal(await readMethodSelection(reader), 0);
      await writeAll(
        conn,
        encodeRequest({
          command: 1,
          target: { address: { family: "name", name: "a.nowhere.example" }, port: 80 },
        }),
      );
      assert.notEqual((await readSocksReply(reader)).reply, 0);
    }
    const relays = [
      await openRelay(gw.endpoint(4), target("::1", v6.port)),
      await openRelay(gw.endpoint(6), target("127.0.0.1", v4.port)),
    ];
    // Traffic keeps flowing while the page loads and polls: bounded, stopped below.
    let flowing = true;
    const traffic = (async () => {
      for (let i = 0; i < 20_000 && flowing; i++) {
        for (const relay of relays) await relay.ping();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const profile = await Deno.makeTempDir({ prefix: "dualgate-status-chromium-" });
    const { child, wsUrl } = await startChromium(profile);
    try {
      const cdp = await Cdp.open(wsUrl);
      try {
        await cdp.send("Network.enable");
        await cdp.send("Network.setExtraHTTPHeaders", {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        await cdp.send("Runtime.enable");
        const admin = gw.gateway.adminEndpoint!;
        await cdp.send("Page.navigate", {
          url: `http://${formatIp(admin.address)}:${admin.port}/`,
        });
        // Wait (bounded) until the page's script has rendered a status with points to chart.
        let families: string[][] = [];
        let legend = "";
        for (let i = 0; i < 300; i++) {
          families = await rowsOf(cdp, "families").catch(() => []);
          legend = await cdp.evaluate<string>(
            `document.getElementById("throughput-legend")?.textContent ?? ""`,
          ).catch(() => "");
          const points = Number(/(\d+) points/.exec(legend)?.[1] ?? 0);
          const moving = /^up [1-9]/.test(legend) && / down [1-9]/.test(legend);
          if (families.length > 1 && points >= 3 && moving) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const title = await cdp.evaluate<string>("document.title");
        assert.equal(title, "dualgate status");
        const error = await cdp.evaluate<string>(`document.getElementById("error").textContent`);
        assert.equal(error, "", "the page could update");
        // Pair, active now, finished so far.
        assert.deepEqual(families, [
          ["pair", "active", "finished"],
          ["v4-v4", "0", "0"],
          ["v4-v6", "1", "0"],
          ["v6-v4", "1", "0"],
          ["v6-v6", "0", "0"],
        ]);
        const commands = await rowsOf(cdp, "commands");
        assert.deepEqual(commands.find((r) => r[0] === "connect"), ["connect", "2", "1"]);
        const pairs = await rowsOf(cdp, "pairs");
        assert.deepEqual(pairs.slice(1), [["connect v4-v6", "1"], ["connect v6-v4", "1"]]);
        const hops = await rowsOf(cdp, "hops");
        assert.deepEqual(hops.slice(1).map((r) => [r[0], r[1], r[2]]), [
          ["routes[0] hop 1", `socks5://127.0.0.1:${deadPort}`, "marked"],
          ["routes[0] hop 1", `socks5://127.0.0.1:${deadPort + 1}`, "marked"],
        ]);
        for (const row of hops.slice(1)) assert.match(row[3]!, /^\S.* \(\d+ s ago\)$/);
        // The rejected CONNECT is finished and counted; the relays are live.
        const replies = await rowsOf(cdp, "replies");
        assert.equal(replies.length, 2);
        assert.notEqual(replies[1]![0], "0");
        assert.match(
          legend,
          /^up [\d.]+( k)?B\/s · down [\d.]+( k)?B\/s · peak [\d.]+ k? ?· \d+ points$/,
        );
        const meta = await cdp.evaluate<string>(`document.getElementById("meta").textContent`);
        assert.match(meta, /workers 1\/1 · active connections 2 of \d+/);
        const resolver = await rowsOf(cdp, "resolver");
        assert.deepEqual(resolver[1], ["cache entries", "0"]);
        const shot = await cdp.send<{ data: string }>("Page.captureScreenshot", {
          format: "png",
          captureBeyondViewport: true,
        });
        await Deno.mkdir(ARTIFACTS, { recursive: true });
        const path = `${ARTIFACTS}status_page.png`;
        const png = Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
        await Deno.writeFile(path, png);
        assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
        // deno-lint-ignore no-console
        console.log(`screenshot: ${path}`);

        // A person at the browser's Basic prompt: without the header, the page's challenge is
        // answered with user `token` and the token, and the page and its polls get through.
        await cdp.send("Network.setExtraHTTPHeaders", { headers: {} });
        let challenges = 0;
        cdp.onEvent = (method, params) => {
          if (method === "Fetch.requestPaused") {
            void cdp.send("Fetch.continueRequest", { requestId: params.requestId })
              .catch(() => {});
          } else if (method === "Fetch.authRequired") {
            challenges++;
            void cdp.send("Fetch.continueWithAuth", {
              requestId: params.requestId,
              authChallengeResponse: {
                response: "ProvideCredentials",
                username: "token",
                password: TOKEN,
              },
            }).catch(() => {});
          }
        };
        await cdp.send("Fetch.enable", { handleAuthRequests: true });
        await cdp.send("Page.navigate", {
          url: `http://${formatIp(admin.address)}:${admin.port}/?basic`,
        });
        let polled = "";
        for (let i = 0; i < 100 && !/ · workers 1\/1/.test(polled); i++) {
          // Only the new page counts: the old one's text must not pass for it.
          polled = await cdp.evaluate<string>(
            `location.search === "?basic" && document.getElementById("meta")?.textContent || ""`,
          ).catch(() => "");
          if (!/ · workers 1\/1/.test(polled)) await new Promise((r) => setTimeout(r, 100));
        }
        assert.match(polled, /active connections 2 /);
        assert.ok(challenges >= 1, "the page was challenged");
        await cdp.send("Fetch.disable");
      } finally {
        await cdp.close();
      }
    } finally {
      flowing = false;
      await traffic.catch(() => {});
      for (const relay of relays) relay.conn.close();
      child.kill();
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
