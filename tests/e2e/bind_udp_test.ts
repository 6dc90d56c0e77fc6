/**
 * RFC 3089 BIND and UDP ASSOCIATE end to end: dualgate (`main.ts serve`) on the dual-stack
 * gateway host; a real SOCKS5 client, the npm package `socks` (pinned `npm:socks@2.8.11`, run by
 * Deno inside the client host), on IPv4-only and IPv6-only clients; UDP echo servers and BIND
 * peers on IPv4-only and IPv6-only servers. Names are known only to the gateway.
 */
import assert from "node:assert/strict";
import { MAIN_TS, REPO_ROOT, startDualgate } from "../helpers/dualgate.ts";
import { formatIp, parseIp } from "../../net/address.ts";
import {
  createTopology,
  e2eTest,
  type HostName,
  NAMES,
  type SpawnedProcess,
  type Topology,
} from "../helpers/netns.ts";

const PROGRAMS = ["python3"];
const ECHO_PORT = 7;

/** The socks package spells IPv6 in full; compare addresses, not spellings. */
function norm(host: string): string {
  const address = parseIp(host);
  assert.ok(address, `${host} is not an address`);
  return formatIp(address);
}

/** The SOCKS client, run with `deno run --no-config` in a client host; prints JSON lines. */
const CLIENT_SCRIPT = `
import { SocksClient } from "npm:socks@2.8.11";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";

const [mode, proxyHost, proxyPort, destHost, destPort, own, foreign] = Deno.args;
const proxy = { host: proxyHost, port: Number(proxyPort), type: 5 };
const print = (value) => console.log(JSON.stringify(value));

function socket(address) {
  const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
  const got = [];
  s.on("message", (message, from) => got.push({ message, from }));
  return new Promise((resolve) => s.bind(0, address, () => resolve({ s, got })));
}

if (mode === "udp") {
  const main = await socket(own);
  const otherPort = await socket(own);
  const otherAddress = await socket(foreign);
  // createConnection() is for CONNECT only; the other commands use the event API.
  const associate = new SocksClient({
    proxy,
    command: "associate",
    destination: { host: own, port: main.s.address().port },
  });
  const ready = new Promise((resolve, reject) => {
    associate.on("established", resolve);
    associate.on("error", reject);
  });
  associate.connect();
  const { socket: control, remoteHost } = await ready;
  const frame = (text, frameNumber = 0) =>
    SocksClient.createUDPFrame({
      frameNumber,
      remoteHost: { host: destHost, port: Number(destPort) },
      data: Buffer.from(text),
    });
  const send = (from, bytes) =>
    new Promise((resolve, reject) =>
      from.s.send(bytes, remoteHost.port, remoteHost.host, (e) => (e ? reject(e) : resolve()))
    );
  await send(main, frame("fragment", 1));
  await send(otherAddress, frame("from another address"));
  await send(otherPort, frame("from another port"));
  await send(main, frame("hello"));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  print({
    bound: remoteHost,
    replies: main.got.map(({ message, from }) => {
      const parsed = SocksClient.parseUDPFrame(message);
      return {
        from: from.address + " " + from.port,
        frag: parsed.frameNumber,
        host: parsed.remoteHost.host,
        port: parsed.remoteHost.port,
        data: parsed.data.toString(),
      };
    }),
    strays: otherPort.got.length + otherAddress.got.length,
  });
  control.destroy();
  for (const s of [main, otherPort, otherAddress]) s.s.close();
} else {
  const client = new SocksClient({
    proxy,
    command: "bind",
    destination: { host: destHost, port: Number(destPort) },
    timeout: 20000,
  });
  client.on("bound", (info) => print({ event: "bound", host: info.remoteHost.host, port: info.remoteHost.port }));
  client.on("error", (error) => { print({ event: "error", message: String(error) }); Deno.exit(1); });
  const established = new Promise((resolve) => client.on("established", resolve));
  client.connect();
  const info = await established;
  const conn = info.socket;
  conn.write("from client\\n");
  let text = "";
  conn.on("data", (chunk) => { text += chunk.toString(); });
  await new Promise((resolve) => conn.on("end", resolve));
  print({ event: "established", host: info.remoteHost.host, port: info.remoteHost.port, received: text });
  conn.destroy();
}
`;

/** A UDP echo server (IPv4 or IPv6 only) that says "ready" once bound. */
function echoServer(family: 4 | 6): string {
  return [
    "import socket, sys",
    `s = socket.socket(socket.AF_INET${family === 6 ? "6" : ""}, socket.SOCK_DGRAM)`,
    `s.bind(("${family === 6 ? "::" : "0.0.0.0"}", ${ECHO_PORT}))`,
    'print("ready", flush=True)',
    "while True:",
    "    d, a = s.recvfrom(65535)",
    "    s.sendto(d, a)",
  ].join("\n");
}

/** A BIND peer: connects, sends a line, prints what it got until the client's EOF. */
const PEER_SCRIPT = [
  "import socket, sys",
  "c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)",
  'c.sendall(b"from peer\\n")',
  "data = b''",
  "while not data.endswith(b'\\n'):",
  "    chunk = c.recv(100)",
  "    if not chunk: break",
  "    data += chunk",
  "print(c.getsockname()[1], data.decode().strip(), flush=True)",
  "c.close()",
].join("\n");

async function waitForOutput(
  process: SpawnedProcess,
  pattern: RegExp,
  ms: number,
): Promise<RegExpExecArray> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const match = pattern.exec(process.stdout);
    if (match) return match;
    if (process.exited) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${pattern} from ${process.host}: ${process.stdout}\n${process.stderr}`);
}

/** Adds a second address on the client's interface: the "foreign" source of the same host. */
async function addForeignAddress(topo: Topology, client: HostName, own: string, extra: string) {
  const family = own.includes(":") ? "-6" : "-4";
  const listing = await topo.run(client, "ip", ["-o", family, "addr", "show"], { check: true });
  const line = listing.stdout.split("\n").find((l) => l.includes(` ${own}/`));
  const dev = line?.trim().split(/\s+/)[1];
  assert.ok(dev, `no interface with ${own} in ${client}: ${listing.stdout}`);
  await topo.run(client, "ip", [
    "addr",
    "add",
    `${extra}/${family === "-6" ? 64 : 24}`,
    "dev",
    dev,
    // Deprecated at once, so that it is never chosen as a source address (the control
    // connection must come from the client's own address); v4 secondaries never are.
    ...(family === "-6" ? ["nodad", "preferred_lft", "0"] : []),
  ], { check: true });
}

e2eTest(
  "`main.ts serve` relays UDP ASSOCIATE and BIND across families for the npm socks client",
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "dualgate-bind-udp-" });
    try {
      const client = `${dir}/socks_client.js`;
      await Deno.writeTextFile(client, CLIENT_SCRIPT);
      // The namespaces have no route to a registry: fill the cache out here.
      for (
        const [args, cwd] of [[["cache", MAIN_TS], REPO_ROOT], [
          ["cache", "--no-config", client],
          dir,
        ]] as const
      ) {
        const cached = await new Deno.Command(Deno.execPath(), {
          args: [...args],
          cwd,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(180_000),
        }).output();
        assert.ok(
          cached.success,
          `deno ${args.join(" ")}: ${new TextDecoder().decode(cached.stderr)}`,
        );
      }

      await using topo = await createTopology();
      const a = topo.addresses;
      const foreign = { client4: "192.0.2.3", client6: "2001:db8:1::3" } as const;
      await addForeignAddress(topo, "client4", a.client4.v4, foreign.client4);
      await addForeignAddress(topo, "client6", a.client6.v6, foreign.client6);
      await using echo4 = topo.spawn("server4", "python3", ["-c", echoServer(4)]);
      await using echo6 = topo.spawn("server6", "python3", ["-c", echoServer(6)]);
      await waitForOutput(echo4, /ready/, 10_000);
      await waitForOutput(echo6, /ready/, 10_000);

      await using gateway = await startDualgate(
        topo,
        `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]\nbind: { wait: 20 }\n`,
        { dir },
      );
      const runClient = (host: "client4" | "client6", args: string[]) =>
        topo.run(host, Deno.execPath(), ["run", "--no-config", "-A", client, ...args], {
          cwd: dir,
          timeoutMs: 60_000,
        });
      const proxyOf = (host: "client4" | "client6") =>
        host === "client4" ? a.gateway.v4 : a.gateway.v6;
      const ownOf = (host: "client4" | "client6") =>
        host === "client4" ? a.client4.v4 : a.client6.v6;

      const UDP_CASES = [
        { host: "client4", dest: NAMES.v6, peer: a.server6.v6 },
        { host: "client4", dest: a.server6.v6, peer: a.server6.v6 },
        { host: "client6", dest: NAMES.v4, peer: a.server4.v4 },
        { host: "client6", dest: a.server4.v4, peer: a.server4.v4 },
      ] as const;
      for (const c of UDP_CASES) {
        await t.step(
          `UDP: ${c.host} <-> ${c.dest}; FRAG != 0 and foreign sources not relayed`,
          async () => {
            const r = await runClient(c.host, [
              "udp",
              proxyOf(c.host),
              "1080",
              c.dest,
              String(ECHO_PORT),
              ownOf(c.host),
              foreign[c.host],
            ]);
            assert.equal(r.code, 0, `client: ${r.stderr}\ndualgate: ${gateway.stderr}`);
            const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
            assert.equal(norm(result.bound.host), proxyOf(c.host));
            assert.deepEqual(result.replies.map((x: { data: string }) => x.data), ["hello"]);
            const [reply] = result.replies;
            assert.equal(reply.frag, 0);
            assert.equal(norm(reply.host), c.peer);
            assert.equal(reply.port, ECHO_PORT);
            assert.equal(result.strays, 0);
          },
        );
      }
      await t.step("UDP: the gateway counted the dropped datagrams", async () => {
        const deadline = performance.now() + 5000;
        while (
          (gateway.stderr.match(/fragment=1/g) ?? []).length < 4 && performance.now() < deadline
        ) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(
          (gateway.stderr.match(/foreign=2 fragment=1/g) ?? []).length,
          4,
          gateway.stderr,
        );
      });

      const BIND_CASES = [
        {
          host: "client4",
          peerHost: "server6",
          dest: NAMES.v6,
          peer: a.server6.v6,
          bound: a.gateway.upstreamV6,
        },
        {
          host: "client4",
          peerHost: "server6",
          dest: a.server6.v6,
          peer: a.server6.v6,
          bound: a.gateway.upstreamV6,
        },
        {
          host: "client6",
          peerHost: "server4",
          dest: NAMES.v4,
          peer: a.server4.v4,
          bound: a.gateway.upstreamV4,
        },
        {
          host: "client6",
          peerHost: "server4",
          dest: a.server4.v4,
          peer: a.server4.v4,
          bound: a.gateway.upstreamV4,
        },
      ] as const;
      for (const c of BIND_CASES) {
        await t.step(
          `BIND: ${c.host} waits for ${c.dest}; data both ways after the second reply`,
          async () => {
            await using bind = topo.spawn(c.host, Deno.execPath(), [
              "run",
              "--no-config",
              "-A",
              client,
              "bind",
              proxyOf(c.host),
              "1080",
              c.dest,
              "0",
            ], { cwd: dir });
            const bound = JSON.parse(
              (await waitForOutput(bind, /^\{"event":"bound".*$/m, 30_000))[0],
            );
            assert.equal(norm(bound.host), c.bound);
            const peer = await topo.run(c.peerHost, "python3", [
              "-c",
              PEER_SCRIPT,
              bound.host,
              String(bound.port),
            ], {
              timeoutMs: 20_000,
            });
            assert.equal(peer.code, 0, `peer: ${peer.stderr}\ndualgate: ${gateway.stderr}`);
            const [, peerPort, fromClient] = /^(\d+) (.*)$/.exec(peer.stdout.trim()) ?? [];
            assert.equal(fromClient, "from client");
            const done = JSON.parse(
              (await waitForOutput(bind, /^\{"event":"established".*$/m, 20_000))[0],
            );
            assert.equal(norm(done.host), c.peer);
            assert.equal(String(done.port), peerPort);
            assert.equal(done.received, "from peer\n");
            await bind.status;
          },
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
