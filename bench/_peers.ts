/**
 * The things being compared: direct transfer (no proxy: the harness's own limit), dualgate,
 * Dante and microsocks. Each proxy runs as its own process tree with the file-descriptor limit
 * raised to the hard limit, and is stopped by its own process id.
 *
 * @module
 */

import {
  closeQuietly,
  encodeConnect,
  type Endpoint,
  httpConnect,
  socksConnect,
  type SocksTarget,
  writeAll,
} from "./_wire.ts";
import { GATEWAY_V8_FLAGS_ARG } from "../gateway/runtime_flags.ts";
import { directUdp, socksUdp, type UdpPath, type UdpTarget } from "./_udp.ts";

/** Names of the peers, in table order. */
export const PEER_NAMES = [
  "direct",
  "dualgate",
  "dualgate-w2",
  "dualgate-http",
  "dualgate-egress",
  "dante",
  "microsocks",
] as const;

/**
 * Peers left out unless `--only` names them: dualgate with `workers: 2`, dualgate's HTTP proxy
 * front door (CONNECT instead of SOCKS5, same core), and dualgate with an egress pool (every
 * connection through node:net's `localAddress`, see net/node_tcp.ts).
 */
export const OPTIONAL_PEERS: readonly PeerName[] = [
  "dualgate-w2",
  "dualgate-http",
  "dualgate-egress",
];

/** One of {@linkcode PEER_NAMES}. */
export type PeerName = typeof PEER_NAMES[number];

/** The name dualgate resolves (from its static hosts) to `::1` in the v4→v6 figures. */
export const V6_NAME = "v6.bench.example";

/** Ports of the target server. */
export interface TargetPorts {
  /** Port on 127.0.0.1. */
  readonly v4: number;
  /** Port on ::1. */
  readonly v6: number;
  /** UDP echo port on 127.0.0.1. */
  readonly udp4: number;
  /** UDP echo port on ::1. */
  readonly udp6: number;
}

/** A way to reach the target server, with or without a proxy in between. */
export interface Peer extends AsyncDisposable {
  /** Which peer. */
  readonly name: PeerName;
  /** Process id of the proxy (the root of its tree); `null` for direct. */
  readonly pid: number | null;
  /** What the ATYP 3 name in the v4→v6 figures is, or how the peer reaches ::1. */
  readonly v6Note: string;
  /**
   * Opens a connection to the target server over IPv4 (`family` 4) or to its IPv6 side
   * through a name the peer resolves (`family` 6), and sends `header` first.
   */
  open(family: 4 | 6, header: Uint8Array): Promise<Deno.TcpConn>;
  /**
   * Opens a UDP path to the target's echo over IPv4 or to its IPv6 side (as `v6Note` says);
   * absent when the peer has no UDP relay (microsocks).
   */
  readonly udp?: (family: 4 | 6) => Promise<UdpPath>;
}

/** Options of {@linkcode startPeer}. */
export interface StartPeerOptions {
  /** Directory for config and log files. */
  readonly workDir: string;
  /** The target server's ports. */
  readonly target: TargetPorts;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

async function waitForPort(
  port: number,
  child: Deno.ChildProcess,
  ms: number,
  log: string,
): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !exited) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  let tail = "";
  try {
    tail = (await Deno.readTextFile(log)).trim().split("\n").slice(-3).join(" / ");
  } catch { /* no log */ }
  throw new Error(
    `Cannot start proxy: nothing listens on port ${port}${exited ? " (it exited)" : ""}` +
      (tail ? `; log: ${tail}` : ""),
  );
}

/** Runs `argv` under bash with `ulimit -n` raised to the hard limit, output to `log`. */
function spawnLimited(argv: string[], log: string): Deno.ChildProcess {
  const script = 'ulimit -n "$(ulimit -Hn)"; exec "$@" >>"$BENCH_LOG" 2>&1';
  return new Deno.Command("bash", {
    args: ["-c", script, "bash", ...argv],
    env: { BENCH_LOG: log },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Writes `header` on `conn` and returns it; closes it when the write fails. */
async function sentOrClosed(conn: Deno.TcpConn, header: Uint8Array): Promise<Deno.TcpConn> {
  try {
    await writeAll(conn, header);
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
  return conn;
}

/**
 * Spawns `argv` as {@linkcode spawnLimited} does and waits up to `ms` for it to listen on
 * `port`; stops it when it does not.
 */
async function spawnListening(
  argv: string[],
  log: string,
  port: number,
  ms: number,
): Promise<Deno.ChildProcess> {
  const child = spawnLimited(argv, log);
  try {
    await waitForPort(port, child, ms, log);
  } catch (error) {
    await stopTree(child);
    throw error;
  }
  return child;
}

async function stopTree(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  const timer = new Promise<"timeout">((resolve) => {
    const id = setTimeout(() => resolve("timeout"), 3000);
    child.status.finally(() => clearTimeout(id));
  });
  if ((await Promise.race([child.status, timer])) === "timeout") {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  }
}

function proxyPeer(
  name: PeerName,
  child: Deno.ChildProcess,
  proxy: Endpoint,
  target: TargetPorts,
  v6Target: SocksTarget,
  v6Note: string,
  udpV6Target?: UdpTarget,
): Peer {
  const v4Request = encodeConnect({
    kind: "ip",
    family: 4,
    address: "127.0.0.1",
    port: target.v4,
  });
  const v6Request = encodeConnect(v6Target);
  return {
    name,
    pid: child.pid,
    v6Note,
    async open(family, header) {
      const conn = await socksConnect(proxy, family === 4 ? v4Request : v6Request);
      return await sentOrClosed(conn, header);
    },
    ...(udpV6Target !== undefined && {
      udp: (family: 4 | 6) =>
        socksUdp(
          proxy,
          family === 4
            ? { kind: "ip", family: 4, address: "127.0.0.1", port: target.udp4 }
            : udpV6Target,
        ),
    }),
    [Symbol.asyncDispose]: () => stopTree(child),
  };
}

function directPeer(target: TargetPorts): Peer {
  return {
    name: "direct",
    pid: null,
    v6Note: "connects to [::1] itself",
    async open(family, header) {
      const conn = await Deno.connect(
        family === 4
          ? { hostname: "127.0.0.1", port: target.v4 }
          : { hostname: "::1", port: target.v6 },
      );
      try {
        conn.setNoDelay(true);
        await writeAll(conn, header);
      } catch (error) {
        closeQuietly(conn);
        throw error;
      }
      return conn;
    },
    udp: (family) =>
      Promise.resolve(
        directUdp(
          family === 4
            ? { transport: "udp", hostname: "127.0.0.1", port: target.udp4 }
            : { transport: "udp", hostname: "::1", port: target.udp6 },
        ),
      ),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

const MAIN_TS = new URL("../main.ts", import.meta.url).pathname;

async function startDualgate(
  options: StartPeerOptions,
  workers = 1,
  variant: "socks5" | "http" | "egress" = "socks5",
): Promise<Peer> {
  const protocol = variant === "http" ? "http" : "socks5";
  const egress = variant === "egress";
  const name: PeerName = variant === "http"
    ? "dualgate-http"
    : egress
    ? "dualgate-egress"
    : workers === 1
    ? "dualgate"
    : "dualgate-w2";
  const port = freePort();
  const hostsFile = `${options.workDir}/dualgate_hosts`;
  await Deno.writeTextFile(hostsFile, "# empty: names come from resolver.hosts\n");
  const config = `${options.workDir}/${name}.yaml`;
  await Deno.writeTextFile(
    config,
    [
      `listen: [{ address: "127.0.0.1:${port}", protocol: ${protocol} }]`,
      `resolver: { hosts: { "${V6_NAME}": ["::1"] }, hosts_file: "${hostsFile}" }`,
      // Info, as in production: every connection logs its line (to the log file).
      "log: { level: info }",
      "limits: { max_connections: 20000, max_connections_per_client: 20000 }",
      `workers: ${workers}`,
      // Sources of both families, so that every dial goes through node:net with localAddress.
      ...(egress ? ['routes: [{ to: ["*"], egress: ["127.0.0.1", "::1"] }]'] : []),
      "",
    ].join("\n"),
  );
  const log = `${options.workDir}/${name}.log`;
  // Extra `deno run` flags, e.g. an import map that swaps in a relay variant, or
  // --cpu-prof: see README "A/B of relay variants".
  const extra = (Deno.env.get("BENCH_DUALGATE_FLAGS") ?? "").split(/\s+/).filter(Boolean);
  const child = await spawnListening(
    [
      Deno.execPath(),
      "run",
      "-A",
      // As `deno task start` and the compiled gateway run; BENCH_DUALGATE_FLAGS come after,
      // so `--v8-flags=--max-semi-space-size=32` there measures V8's own default.
      GATEWAY_V8_FLAGS_ARG,
      ...extra,
      MAIN_TS,
      "serve",
      "--config",
      config,
    ],
    log,
    port,
    60_000,
  );
  if (protocol === "http") return httpPeer(child, { hostname: "127.0.0.1", port }, options.target);
  return proxyPeer(
    name,
    child,
    { hostname: "127.0.0.1", port },
    options.target,
    { kind: "name", name: V6_NAME, port: options.target.v6 },
    `ATYP 3 "${V6_NAME}" (its static hosts → ::1)`,
    { kind: "name", name: V6_NAME, port: options.target.udp6 },
  );
}

/** dualgate's HTTP front door: `CONNECT 127.0.0.1:PORT`, or `CONNECT v6.bench.example:PORT`. */
function httpPeer(child: Deno.ChildProcess, proxy: Endpoint, target: TargetPorts): Peer {
  return {
    name: "dualgate-http",
    pid: child.pid,
    v6Note: `CONNECT ${V6_NAME} (its static hosts → ::1)`,
    async open(family, header) {
      const conn = await httpConnect(
        proxy,
        family === 4 ? `127.0.0.1:${target.v4}` : `${V6_NAME}:${target.v6}`,
      );
      return await sentOrClosed(conn, header);
    },
    [Symbol.asyncDispose]: () => stopTree(child),
  };
}

async function startDante(options: StartPeerOptions): Promise<Peer> {
  const port = freePort();
  const config = `${options.workDir}/danted.conf`;
  await Deno.writeTextFile(
    config,
    [
      "logoutput: stderr",
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      "external: ::1",
      "socksmethod: none",
      "clientmethod: none",
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 127.0.0.0/8 to: ::/0 }",
      // UDP replies: from the echo (either family) back to the loopback client.
      "socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: udpreply }",
      "socks pass { from: ::/0 to: 127.0.0.0/8 command: udpreply }",
      "",
    ].join("\n"),
  );
  const log = `${options.workDir}/danted.log`;
  const child = await spawnListening(
    ["danted", "-f", config, "-N", String(navigator.hardwareConcurrency)],
    log,
    port,
    15_000,
  );
  return proxyPeer(
    "dante",
    child,
    { hostname: "127.0.0.1", port },
    options.target,
    { kind: "name", name: "::1", port: options.target.v6 },
    'ATYP 3 "::1" (literal; getaddrinfo parses it, no hosts lookup)',
    // UDP to ::1 as ATYP 4: Dante would look a name up for every datagram.
    { kind: "ip", family: 6, address: "::1", port: options.target.udp6 },
  );
}

async function startMicrosocks(options: StartPeerOptions): Promise<Peer> {
  const port = freePort();
  // microsocks 1.0.3 logs every connection to stderr and has no quiet flag: discard it, as
  // dualgate's own logging is set to warnings only.
  const child = await spawnListening(
    ["microsocks", "-i", "127.0.0.1", "-p", String(port)],
    "/dev/null",
    port,
    15_000,
  );
  return proxyPeer(
    "microsocks",
    child,
    { hostname: "127.0.0.1", port },
    options.target,
    { kind: "name", name: "::1", port: options.target.v6 },
    'ATYP 3 "::1" (literal; getaddrinfo parses it, no hosts lookup)',
  );
}

/** Starts `name` and waits until it accepts connections. */
export function startPeer(name: PeerName, options: StartPeerOptions): Promise<Peer> {
  switch (name) {
    case "direct":
      return Promise.resolve(directPeer(options.target));
    case "dualgate":
      return startDualgate(options);
    case "dualgate-w2":
      return startDualgate(options, 2);
    case "dualgate-http":
      return startDualgate(options, 1, "http");
    case "dualgate-egress":
      return startDualgate(options, 1, "egress");
    case "dante":
      return startDante(options);
    case "microsocks":
      return startMicrosocks(options);
  }
}
