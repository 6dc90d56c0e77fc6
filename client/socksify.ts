/**
 * The `socksify` launcher: runs an unmodified program with the Socks Lib.
 *
 * - Deno programs: a `deno` wrapper placed first in `PATH` adds `--preload` (a generated module
 *   that installs the bundled `deno_preload.mjs`) to `deno run|serve|test|eval`, so `deno task …`
 *   and Deno subprocesses are covered too.
 * - Node programs: `NODE_OPTIONS=--import=node_preload.mjs` plus the configuration in
 *   `DUALGATE_SOCKSIFY` (inherited by every Node subprocess).
 * - Both preloads are bundles embedded in this module as text (so a `deno compile` executable
 *   carries them), written to a temporary directory that is removed when the program exits.
 * - Anything else: `proxychains4 -q -f GENERATED.conf` with remote DNS (`proxy_dns`), the
 *   gateways under `[ProxyList]` (one per connection: `dynamic_chain` skips dead ones for
 *   failover, `round_robin_chain`/`random_chain` with `chain_len = 1` balance) and the gateways themselves as
 *   `localnet` (reached directly).
 * - Always: `ALL_PROXY=socks5h://127.0.0.1:PORT`, a loopback SOCKS5 front in this process that
 *   opens connections through the gateway list (`socks_front.ts`), for programs with SOCKS
 *   support of their own (many mishandle a bracketed IPv6 gateway address), and
 *   `DENO_NO_UPDATE_CHECK=1`.
 *
 * @module
 */

import { networkInterfaces } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseIp } from "../net/address.ts";
import { connectVia } from "./connect.ts";
import DENO_PRELOAD from "./deno_preload.mjs" with { type: "text" };
import { GatewayList } from "./gateway_list.ts";
import { formatGatewayUrl, type GatewayEndpoint, parseGatewayUrl } from "./gateway_url.ts";
import NODE_PRELOAD from "./node_preload.mjs" with { type: "text" };
import { CONFIG_ENV, type PreloadConfig } from "./preload_config.ts";
import type { HopStrategy } from "./selector.ts";
import { startSocksFront } from "./socks_front.ts";

/** Options of {@linkcode runSocksify}. */
export interface SocksifyOptions {
  /** Gateway URLs (`socks5://[USER:PASS@]HOST:PORT`), tried in order. */
  readonly gateways: readonly string[];
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** Names resolved locally (`*.lan`, `intranet.example`). @default {[]} */
  readonly bypass?: readonly string[];
  /** Families this host reaches natively. @default {detected from the interfaces} */
  readonly nativeFamilies?: readonly (4 | 6)[];
  /** IPv4 fake range. @default {"198.18.0.0/15"} */
  readonly ipv4Range?: string;
  /** IPv6 fake range. @default {"100::/64"} */
  readonly ipv6Range?: string;
  /** Per-gateway connect timeout in milliseconds. @default {10000} */
  readonly connectTimeoutMs?: number;
  /** Extra environment for the program. @default {{}} */
  readonly env?: Readonly<Record<string, string>>;
  /** Standard streams of the program. @default {"inherit"} */
  readonly stdio?: "inherit" | "null";
  /** Kills the program (SIGTERM) when aborted. @default {undefined} */
  readonly signal?: AbortSignal;
  /** The proxychains4 executable for native programs. @default {"proxychains4"} */
  readonly proxychains?: string;
  /** How connections pick among the gateways. @default {"failover"} */
  readonly strategy?: HopStrategy;
}

/** How a command is socksified. */
export type LaunchKind = "deno" | "node" | "native";

/** Picks the mechanism from the program's name. */
export function detectLaunchKind(program: string): LaunchKind {
  const name = basename(program);
  if (name === "deno") return "deno";
  if (["node", "nodejs", "npx", "npm", "pnpm", "yarn"].includes(name)) return "node";
  return "native";
}

/**
 * The families this host can reach natively: one with a global-scope address on an interface
 * (not loopback, not link-local). IPv4 first when both.
 */
export function detectNativeFamilies(): (4 | 6)[] {
  const families = new Set<4 | 6>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const entry of addresses ?? []) {
      if (entry.internal) continue;
      const ip = parseIp(entry.address);
      if (!ip) continue;
      if (ip.family === 4 && ip.bytes[0] !== 127 && !(ip.bytes[0] === 169 && ip.bytes[1] === 254)) {
        families.add(4);
      }
      if (
        ip.family === 6 && !(ip.bytes[0] === 0xfe && (ip.bytes[1]! & 0xc0) === 0x80) &&
        !ip.bytes.slice(0, 15).every((b) => b === 0)
      ) {
        families.add(6);
      }
    }
  }
  return [4, 6].filter((f) => families.has(f as 4 | 6)) as (4 | 6)[];
}

/** Writes the proxychains4 configuration for `gateways` (remote DNS, gateways reached directly). */
export function proxychainsConfig(
  gateways: readonly GatewayEndpoint[],
  strategy: HopStrategy = "failover",
): string {
  // One proxy per connection in every mode: the gateways are alternatives, not a chain.
  const chain = gateways.length === 1
    ? ["strict_chain"]
    : strategy === "round-robin"
    ? ["round_robin_chain", "chain_len = 1"]
    : strategy === "random"
    ? ["random_chain", "chain_len = 1"]
    : ["dynamic_chain"];
  const lines = [
    "# generated by dualgate socksify",
    ...chain,
    "proxy_dns",
    // Class E: never a real destination, and not multicast (which dig, nmap and ssh reject).
    "remote_dns_subnet 240",
    "tcp_read_time_out 15000",
    "tcp_connect_time_out 8000",
    "localnet 127.0.0.0/255.0.0.0",
  ];
  for (const gateway of gateways) {
    if (gateway.address?.family === 4) lines.push(`localnet ${gateway.hostname}/255.255.255.255`);
    if (gateway.address?.family === 6) lines.push(`localnet ${gateway.hostname}/128`);
  }
  lines.push("[ProxyList]");
  for (const gateway of gateways) {
    const auth = gateway.credentials
      ? ` ${gateway.credentials.username} ${gateway.credentials.password}`
      : "";
    lines.push(`socks5 ${gateway.hostname} ${gateway.port}${auth}`);
  }
  return lines.join("\n") + "\n";
}

async function findExecutable(name: string, path: string): Promise<string | undefined> {
  if (name.includes("/")) return name;
  for (const dir of path.split(":")) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `options.command` with the Socks Lib and returns its exit code (128 + signal number when
 * it was killed).
 *
 * @example
 * ```ts ignore
 * import { runSocksify } from "./socksify.ts";
 *
 * const code = await runSocksify({
 *   gateways: ["socks5://192.0.2.1:1080", "socks5://[2001:db8:1::1]:1080"],
 *   command: ["curl", "-s", "http://v6.dualgate.example/"],
 * });
 * Deno.exit(code);
 * ```
 *
 * @throws {TypeError} when no gateway or no command is given, or a gateway URL does not parse.
 * @throws {Deno.errors.NotFound} when the program, or proxychains4 for a native program, is missing.
 */
export async function runSocksify(options: SocksifyOptions): Promise<number> {
  const [program, ...args] = options.command;
  if (!program) throw new TypeError("Cannot socksify: no command is given");
  const gateways = options.gateways.map(parseGatewayUrl);
  if (gateways.length === 0) throw new TypeError("Cannot socksify: no gateway is given");
  const kind = detectLaunchKind(program);
  const nativeFamilies = options.nativeFamilies ?? detectNativeFamilies();
  const config: PreloadConfig = {
    gateways: gateways.map((g) => formatGatewayUrl(g)),
    nativeFamilies: nativeFamilies.length > 0 ? nativeFamilies : [4],
    bypass: options.bypass ?? [],
    ...(options.ipv4Range ? { ipv4Range: options.ipv4Range } : {}),
    ...(options.ipv6Range ? { ipv6Range: options.ipv6Range } : {}),
    ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.strategy ? { strategy: options.strategy } : {}),
  };
  const path = Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
  const list = new GatewayList(gateways, options.strategy ? { strategy: options.strategy } : {});
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  // Programs with SOCKS support of their own get a loopback front: 127.0.0.1 is an address every
  // client understands (a bracketed IPv6 gateway is not), and the front fails over between the
  // gateways. Gateway credentials are not lent to every local user: the front gets its own.
  const frontCredentials = gateways.some((g) => g.credentials)
    ? { username: "socksify", password: crypto.randomUUID() }
    : undefined;
  const front = startSocksFront({
    connect: async (target) => (await connectVia(list, target, { connectTimeoutMs })).conn,
    ...(frontCredentials ? { credentials: frontCredentials } : {}),
  });
  let dir: string | undefined;
  try {
    dir = await Deno.makeTempDir({ prefix: "dualgate-socksify-" });
    // The preloads are part of this program (text imports, so also in a compiled executable),
    // written to the temporary directory for the child.
    await Deno.writeTextFile(join(dir, "deno_preload.mjs"), DENO_PRELOAD);
    await Deno.writeTextFile(join(dir, "node_preload.mjs"), NODE_PRELOAD);
    // Deno: a generated preload (the configuration travels in the module, so the program needs
    // no --allow-env) and a `deno` wrapper first in PATH.
    const preload = join(dir, "preload.mjs");
    await Deno.writeTextFile(
      preload,
      `import { installDenoSocksify } from "./deno_preload.mjs";\n` +
        `installDenoSocksify(${JSON.stringify(config)});\n`,
    );
    const realDeno = kind === "deno" && program.includes("/")
      ? program
      : (await findExecutable("deno", path)) ?? Deno.execPath();
    const wrapper = join(dir, "deno");
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh\ncase "$1" in\n  run|serve|test|eval) sub=$1; shift; exec ${
        shellQuote(realDeno)
      } "$sub" --preload ${shellQuote(preload)} "$@" ;;\n  *) exec ${
        shellQuote(realDeno)
      } "$@" ;;\nesac\n`,
    );
    await Deno.chmod(wrapper, 0o755);

    const nodePreload = pathToFileURL(join(dir, "node_preload.mjs")).href;
    const nodeOptions = [Deno.env.get("NODE_OPTIONS"), `--import=${nodePreload}`]
      .filter(Boolean).join(" ");
    const env: Record<string, string> = {
      PATH: `${dir}:${path}`,
      NODE_OPTIONS: nodeOptions,
      [CONFIG_ENV]: JSON.stringify(config),
      ALL_PROXY: front.url,
      all_proxy: front.url,
      NO_PROXY: ["localhost", "127.0.0.1", "::1", ...(options.bypass ?? [])].join(","),
      DENO_NO_UPDATE_CHECK: "1",
      ...options.env,
    };

    let argv: string[];
    if (kind === "deno") {
      argv = [wrapper, ...args];
    } else if (kind === "node") {
      argv = [program, ...args];
    } else {
      const proxychains = await findExecutable(options.proxychains ?? "proxychains4", path);
      if (!proxychains) {
        throw new Deno.errors.NotFound(
          `Cannot socksify ${program}: proxychains4 is not installed (apt-get install proxychains4); ` +
            `Deno and Node programs need no proxychains4, and programs with SOCKS support of their own can use ALL_PROXY=${env.ALL_PROXY} directly`,
        );
      }
      const conf = join(dir, "proxychains.conf");
      await Deno.writeTextFile(conf, proxychainsConfig(gateways, options.strategy));
      argv = [proxychains, "-q", "-f", conf, program, ...args];
    }
    const executable = argv[0]!;
    if (kind !== "native" && !(await findExecutable(executable, path))) {
      throw new Deno.errors.NotFound(`Cannot socksify ${program}: no such program in PATH`);
    }
    const stdio = options.stdio ?? "inherit";
    const child = new Deno.Command(executable, {
      args: argv.slice(1),
      env,
      stdin: stdio,
      stdout: stdio,
      stderr: stdio,
      ...(options.signal ? { signal: options.signal } : {}),
    }).spawn();
    // A signal to the launcher goes to the program, and the launcher stays until the program has
    // exited, so the temporary directory (the preloads) is removed.
    const forwards = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((signal) => {
      const forward = () => {
        try {
          child.kill(signal);
        } catch {
          // already exited
        }
      };
      Deno.addSignalListener(signal, forward);
      return [signal, forward] as const;
    });
    try {
      const status = await child.status;
      return status.signal ? 128 + signalNumber(status.signal) : status.code;
    } finally {
      for (const [signal, forward] of forwards) Deno.removeSignalListener(signal, forward);
    }
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    await front.close();
  }
}

function signalNumber(signal: Deno.Signal): number {
  const numbers: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return numbers[signal] ?? 1;
}
