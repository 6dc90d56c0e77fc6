/**
 * A real multi-host RFC 3089 topology built from Linux network namespaces, for e2e tests.
 *
 * ```
 *  client4 (192.0.2.2, v4 only) ──┐                ┌── server4 (198.51.100.2, v4 only)
 *                                 ├── gateway ─────┤
 *  client6 (2001:db8:1::2, v6) ───┘  (dual stack,  └── server6 (2001:db8:2::2, v6 only)
 *                                     no forwarding)
 * ```
 *
 * The gateway does not forward packets, so clients reach servers only through a proxy that runs
 * on the gateway. Names of the servers live only in the gateway's `/etc/hosts` (`ip netns exec`
 * bind-mounts `/etc/netns/NAME/*` over `/etc/*`); clients have no name service at all.
 *
 * Needs root and `ip` (iproute2); see {@link e2eAvailability} for the gate tests use.
 *
 * @module
 */

/** The five hosts of the topology. */
export type HostName = "client4" | "client6" | "gateway" | "server4" | "server6";

/** Every host of the topology, in creation order. */
export const HOST_NAMES: readonly HostName[] = [
  "client4",
  "client6",
  "gateway",
  "server4",
  "server6",
];

/** Fixed addresses of the topology (documentation prefixes only). */
export const ADDRESSES = {
  client4: { v4: "192.0.2.2" },
  client6: { v6: "2001:db8:1::2" },
  gateway: {
    /** Toward client4. */
    v4: "192.0.2.1",
    /** Toward client6. */
    v6: "2001:db8:1::1",
    /** Toward server4. */
    upstreamV4: "198.51.100.1",
    /** Toward server6. */
    upstreamV6: "2001:db8:2::1",
  },
  server4: { v4: "198.51.100.2" },
  server6: { v6: "2001:db8:2::2" },
} as const;

/** Names that only the gateway can resolve (through its own `/etc/hosts`). */
export const NAMES = {
  /** Resolves to server4's IPv4 address on the gateway. */
  v4: "v4.dualgate.example",
  /** Resolves to server6's IPv6 address on the gateway. */
  v6: "v6.dualgate.example",
} as const;

/** Prefix of every namespace this module creates; {@link cleanupStale} relies on it. */
export const NAMESPACE_PREFIX = "dgt-";

const SHORT: Record<HostName, string> = {
  client4: "c4",
  client6: "c6",
  gateway: "gw",
  server4: "s4",
  server6: "s6",
};

/** Owner pid and host are encoded in the name so a later run can tell stale from live. */
const NAME_PATTERN = /^dgt-(\d+)-[0-9a-f]+-(c4|c6|gw|s4|s6)$/;

const LOCALHOST_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

const DEFAULT_RUN_TIMEOUT_MS = 30_000;
const MAX_CAPTURE_BYTES = 8 * 1024 * 1024;
const encoder = new TextEncoder();

/** Options for {@link createTopology}. */
export interface TopologyOptions {
  /**
   * Extra `/etc/hosts` entries per host: name -> addresses. The gateway always knows
   * {@link NAMES}; the clients know nothing but localhost unless given entries here.
   * @default {}
   */
  hosts?: Partial<Record<HostName, Readonly<Record<string, readonly string[]>>>>;
  /**
   * Extra files per host, bind-mounted over `/etc/<name>` inside that host only (for example
   * `{ client4: { "proxychains4.conf": "..." } }`). Names are top-level entries of `/etc` and
   * `/etc/<name>` must exist on the machine, because `ip netns exec` can only bind over an
   * existing file.
   * @default {}
   */
  etcFiles?: Partial<Record<HostName, Readonly<Record<string, string>>>>;
  /**
   * Remove namespaces left behind by crashed earlier runs before building.
   * @default true
   */
  cleanupStale?: boolean;
}

/** Options for {@link Topology.run}. */
export interface RunOptions {
  /**
   * Kill the whole process group after this many milliseconds.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Working directory.
   * @default the test process's directory
   */
  cwd?: string;
  /**
   * Extra environment variables (proxy variables of the parent are always removed).
   * @default {}
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Data written to the process's stdin, which is then closed.
   * @default no stdin
   */
  stdin?: string | Uint8Array;
  /**
   * Throw an `Error` carrying stdout and stderr when the process does not exit with 0.
   * @default false
   */
  check?: boolean;
  /**
   * Abort kills the process group.
   * @default none
   */
  signal?: AbortSignal;
}

/** What {@link Topology.run} returns. */
export interface RunResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** `code === 0`. */
  success: boolean;
  /** The signal that ended the process, if any. */
  signal: Deno.Signal | null;
  /** Whether the timeout killed it. */
  timedOut: boolean;
  /** Captured standard output, decoded as UTF-8. */
  stdout: string;
  /** Captured standard error, decoded as UTF-8. */
  stderr: string;
}

/** Options for {@link Topology.spawn}. */
export interface SpawnOptions {
  /**
   * Working directory.
   * @default the test process's directory
   */
  cwd?: string;
  /**
   * Extra environment variables (proxy variables of the parent are always removed).
   * @default {}
   */
  env?: Readonly<Record<string, string>>;
}

/** Options for {@link Topology.waitForTcp} and {@link SpawnedProcess.waitForTcp}. */
export interface WaitForTcpOptions {
  /**
   * Give up (throw) after this many milliseconds.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Pause between attempts.
   * @default 100
   */
  intervalMs?: number;
  /**
   * Throw at once if this process exits before the port accepts.
   * @default none
   */
  process?: SpawnedProcess;
}

/** A long-running process inside one host; disposing it kills its whole process group. */
export interface SpawnedProcess extends AsyncDisposable {
  /** The host it runs in. */
  readonly host: HostName;
  /** Process id (also its process group id). */
  readonly pid: number;
  /** Standard output collected so far (capped at 8 MiB). */
  readonly stdout: string;
  /** Standard error collected so far (capped at 8 MiB). */
  readonly stderr: string;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** Resolves when the process exits. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Polls from the process's own host until `address:port` accepts a TCP connection. */
  waitForTcp(address: string, port: number, options?: WaitForTcpOptions): Promise<void>;
  /**
   * Waits until stderr matches `pattern` (a line the process logs a moment after what the test
   * saw, e.g. a connection's record once its relay has closed), at most `timeoutMs`; returns
   * stderr either way, for the assertion to judge and show.
   */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends a signal to the process group; ignores a group that is already gone. */
  kill(signal?: Deno.Signal): void;
  /**
   * SIGTERM, then SIGKILL after `graceMs`; waits for exit and for its output to drain.
   * @default graceMs 2000
   */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/** A built topology; dispose it (`await using`) to kill everything and delete the namespaces. */
export interface Topology extends AsyncDisposable {
  /** The fixed addresses, {@link ADDRESSES}. */
  readonly addresses: typeof ADDRESSES;
  /** The names only the gateway resolves, {@link NAMES}. */
  readonly names: typeof NAMES;
  /** The real namespace name of each host, for `ip netns exec NAME ...`. */
  readonly namespaces: Readonly<Record<HostName, string>>;
  /** Runs a command to completion inside a host. */
  run(
    host: HostName,
    cmd: string,
    args?: readonly string[],
    options?: RunOptions,
  ): Promise<RunResult>;
  /** Starts a long-running command inside a host; dispose or `stop()` it. */
  spawn(
    host: HostName,
    cmd: string,
    args?: readonly string[],
    options?: SpawnOptions,
  ): SpawnedProcess;
  /** Polls from `host` until `address:port` accepts a TCP connection; throws on timeout. */
  waitForTcp(
    host: HostName,
    address: string,
    port: number,
    options?: WaitForTcpOptions,
  ): Promise<void>;
  /** Appends `/etc/hosts` entries (name -> addresses) for one host; later commands see them. */
  addHosts(host: HostName, entries: Readonly<Record<string, readonly string[]>>): Promise<void>;
  /** Writes a file bind-mounted over `/etc/<name>` in one host (see `etcFiles`). */
  writeEtcFile(host: HostName, name: string, content: string): Promise<void>;
  /** Kills every process, deletes the namespaces and their `/etc/netns` directories. */
  close(): Promise<void>;
}

/**
 * Builds the five-host topology in fresh network namespaces.
 *
 * @example
 * ```ts ignore
 * await using topo = await createTopology();
 * const r = await topo.run("gateway", "getent", ["hosts", "v6.dualgate.example"]);
 * ```
 */
export async function createTopology(options: TopologyOptions = {}): Promise<Topology> {
  if (options.cleanupStale ?? true) await cleanupStale();
  const topo = new NetnsTopology(options);
  try {
    await topo.build();
  } catch (error) {
    try {
      await topo.close();
    } catch (closeError) {
      throw new AggregateError([error, closeError], "Cannot create topology");
    }
    throw error;
  }
  return topo;
}

/** Options for {@link cleanupStale}. */
export interface CleanupStaleOptions {
  /**
   * Also remove namespaces whose creating process is still alive (another running test).
   * @default false
   */
  includeLive?: boolean;
}

/**
 * Removes namespaces (and `/etc/netns` directories) with {@link NAMESPACE_PREFIX} left by a
 * crashed earlier run: those whose creating process no longer exists. Returns what it removed.
 */
export async function cleanupStale(options: CleanupStaleOptions = {}): Promise<string[]> {
  const listed = await command("ip", ["netns", "list"]);
  const names = new Set<string>();
  for (const line of listed.stdout.split("\n")) {
    const name = line.trim().split(/\s+/)[0];
    if (name && NAME_PATTERN.test(name)) names.add(name);
  }
  try {
    for await (const entry of Deno.readDir("/etc/netns")) {
      if (NAME_PATTERN.test(entry.name)) names.add(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const removed: string[] = [];
  for (const name of names) {
    const owner = Number(NAME_PATTERN.exec(name)?.[1]);
    if (!options.includeLive && (owner === Deno.pid || processAlive(owner))) continue;
    await deleteNamespace(name);
    removed.push(name);
  }
  return removed;
}

class NetnsTopology implements Topology {
  readonly addresses = ADDRESSES;
  readonly names = NAMES;
  readonly namespaces: Readonly<Record<HostName, string>>;
  readonly #options: TopologyOptions;
  readonly #created: string[] = [];
  readonly #processes = new Set<ProcessHandle>();
  #closed = false;

  constructor(options: TopologyOptions) {
    this.#options = options;
    const tag = crypto.getRandomValues(new Uint8Array(3));
    const suffix = Array.from(tag, (b) => b.toString(16).padStart(2, "0")).join("");
    const names = {} as Record<HostName, string>;
    for (const host of HOST_NAMES) {
      names[host] = `${NAMESPACE_PREFIX}${Deno.pid}-${suffix}-${SHORT[host]}`;
    }
    this.namespaces = names;
  }

  async build(): Promise<void> {
    for (const host of HOST_NAMES) {
      const ns = this.namespaces[host];
      // /etc/netns/NAME must be complete before the first `ip netns exec`, which binds it.
      await Deno.mkdir(`/etc/netns/${ns}`, { recursive: true });
      this.#created.push(ns);
      await Deno.writeTextFile(`/etc/netns/${ns}/hosts`, this.#hostsFile(host));
      // Empty resolv.conf: no DNS server at all (glibc then tries 127.0.0.1, which refuses).
      await Deno.writeTextFile(`/etc/netns/${ns}/resolv.conf`, "");
      for (const [name, content] of Object.entries(this.#options.etcFiles?.[host] ?? {})) {
        await this.writeEtcFile(host, name, content);
      }
      await ip(["netns", "add", ns]);
      await ip(["-n", ns, "link", "set", "lo", "up"]);
    }

    const { client4, client6, gateway, server4, server6 } = this.namespaces;
    // Single-stack hosts: IPv6 off before their interface arrives so it never gets an address.
    for (const ns of [client4, server4]) {
      await sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1");
      await sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
    }
    // The point of the topology: only a proxy on the gateway connects the two sides.
    await sysctl(gateway, "net.ipv4.ip_forward", "0");
    await sysctl(gateway, "net.ipv6.conf.all.forwarding", "0");
    await sysctl(gateway, "net.ipv6.conf.default.forwarding", "0");

    // Links are created inside the gateway namespace, so fixed short names never collide with
    // the root namespace or with another topology.
    const links: [string, string, string, string][] = [
      // [gateway side, leaf ns, gateway address, leaf address]
      ["c4", client4, "192.0.2.1/24", "192.0.2.2/24"],
      ["c6", client6, "2001:db8:1::1/64", "2001:db8:1::2/64"],
      ["s4", server4, "198.51.100.1/24", "198.51.100.2/24"],
      ["s6", server6, "2001:db8:2::1/64", "2001:db8:2::2/64"],
    ];
    for (const [gwIf, leaf, gwAddr, leafAddr] of links) {
      await ip([
        "-n",
        gateway,
        "link",
        "add",
        gwIf,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        leaf,
      ]);
      await addAddress(gateway, gwIf, gwAddr);
      await addAddress(leaf, "eth0", leafAddr);
      await ip(["-n", gateway, "link", "set", gwIf, "up"]);
      await ip(["-n", leaf, "link", "set", "eth0", "up"]);
    }
    await ip(["-n", client4, "route", "add", "default", "via", ADDRESSES.gateway.v4]);
    await ip(["-n", client6, "-6", "route", "add", "default", "via", ADDRESSES.gateway.v6]);
    await ip(["-n", server4, "route", "add", "default", "via", ADDRESSES.gateway.upstreamV4]);
    await ip([
      "-n",
      server6,
      "-6",
      "route",
      "add",
      "default",
      "via",
      ADDRESSES.gateway.upstreamV6,
    ]);
    for (const ns of [client4, server4]) {
      // Again after the interface moved in, in case the kernel did not inherit `default`.
      await sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
    }
  }

  #hostsFile(host: HostName): string {
    let text = LOCALHOST_HOSTS;
    if (host === "gateway") {
      text += `${ADDRESSES.server4.v4}\t${NAMES.v4}\n${ADDRESSES.server6.v6}\t${NAMES.v6}\n`;
    }
    return text + hostsLines(this.#options.hosts?.[host] ?? {});
  }

  async addHosts(
    host: HostName,
    entries: Readonly<Record<string, readonly string[]>>,
  ): Promise<void> {
    this.#assertOpen();
    await Deno.writeTextFile(`/etc/netns/${this.namespaces[host]}/hosts`, hostsLines(entries), {
      append: true,
    });
  }

  async writeEtcFile(host: HostName, name: string, content: string): Promise<void> {
    this.#assertOpen();
    if (name === "" || name.includes("/") || name === "." || name === "..") {
      throw new TypeError(`Cannot write /etc file "${name}": only top-level names of /etc work`);
    }
    try {
      await Deno.lstat(`/etc/${name}`);
    } catch {
      throw new TypeError(
        `Cannot write /etc file "${name}": /etc/${name} does not exist, so ip netns exec cannot bind over it`,
      );
    }
    await Deno.writeTextFile(`/etc/netns/${this.namespaces[host]}/${name}`, content);
  }

  async run(
    host: HostName,
    cmd: string,
    args: readonly string[] = [],
    options: RunOptions = {},
  ): Promise<RunResult> {
    this.#assertOpen();
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.namespaces[host], cmd, ...args],
      ...commandEnv(options),
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      // Own session and process group, so a timeout kills the command's children too.
      detached: true,
    }).spawn();
    const stdout = new Capture(child.stdout);
    const stderr = new Capture(child.stderr);
    let timedOut = false;
    const killGroup = () => signalGroup(child.pid, "SIGKILL");
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS);
    options.signal?.addEventListener("abort", killGroup, { once: true });
    try {
      if (options.stdin !== undefined) {
        const writer = child.stdin.getWriter();
        const data = typeof options.stdin === "string"
          ? encoder.encode(options.stdin)
          : options.stdin;
        try {
          await writer.write(data);
          await writer.close();
        } catch {
          // The process may exit without reading its input; its status tells the story.
        }
      }
      const status = await child.status;
      // Bounded: a daemon started by the command may keep the pipes open after it exits.
      await Promise.all([stdout.settle(2_000), stderr.settle(2_000)]);
      const result: RunResult = {
        code: status.code,
        success: status.success,
        signal: status.signal,
        timedOut,
        stdout: stdout.text(),
        stderr: stderr.text(),
      };
      if (options.check && !result.success) {
        throw new Error(
          `Cannot run ${cmd} ${args.join(" ")} in ${host}: exit ${result.code}` +
            `${timedOut ? " (timed out)" : ""}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
        );
      }
      return result;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", killGroup);
    }
  }

  spawn(
    host: HostName,
    cmd: string,
    args: readonly string[] = [],
    options: SpawnOptions = {},
  ): SpawnedProcess {
    this.#assertOpen();
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.namespaces[host], cmd, ...args],
      ...commandEnv(options),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    const handle = new ProcessHandle(this, host, child, () => this.#processes.delete(handle));
    this.#processes.add(handle);
    return handle;
  }

  async waitForTcp(
    host: HostName,
    address: string,
    port: number,
    options: WaitForTcpOptions = {},
  ): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const intervalMs = options.intervalMs ?? 100;
    const deadline = Date.now() + timeoutMs;
    const maxAttempts = Math.ceil(timeoutMs / Math.max(intervalMs, 1)) + 1;
    let last = "";
    for (let attempt = 0; attempt < maxAttempts && Date.now() < deadline; attempt++) {
      const proc = options.process;
      if (proc?.exited) {
        throw new Error(
          `Cannot reach ${address}:${port} from ${host}: the process exited first` +
            `\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`,
        );
      }
      // bash's /dev/tcp is a real connect(2); `exec 3<>` closes on exit. Bounded per attempt.
      const r = await this.run(host, "bash", [
        "-c",
        'exec 3<>"/dev/tcp/$1/$2"',
        "_",
        address,
        String(port),
      ], {
        timeoutMs: Math.min(2_000, Math.max(deadline - Date.now(), 200)),
      });
      if (r.success) return;
      last = r.stderr.trim();
      await delay(intervalMs);
    }
    throw new Error(
      `Cannot reach ${address}:${port} from ${host}: not accepting after ${timeoutMs} ms (${last})`,
    );
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("Cannot use topology: it is closed");
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    const stops = [...this.#processes].map((p) => p.stop().catch((e) => errors.push(e)));
    await Promise.all(stops);
    for (const ns of this.#created) {
      try {
        await deleteNamespace(ns);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "Cannot close topology cleanly");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

class ProcessHandle implements SpawnedProcess {
  readonly host: HostName;
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  readonly #topology: NetnsTopology;
  readonly #stdout: Capture;
  readonly #stderr: Capture;
  readonly #onGone: () => void;
  #exited = false;

  constructor(
    topology: NetnsTopology,
    host: HostName,
    child: Deno.ChildProcess,
    onGone: () => void,
  ) {
    this.#topology = topology;
    this.host = host;
    this.pid = child.pid;
    this.#onGone = onGone;
    this.#stdout = new Capture(child.stdout);
    this.#stderr = new Capture(child.stderr);
    this.status = child.status.then((status) => {
      this.#exited = true;
      return status;
    });
  }

  get stdout(): string {
    return this.#stdout.text();
  }

  get stderr(): string {
    return this.#stderr.text();
  }

  get exited(): boolean {
    return this.#exited;
  }

  waitForTcp(address: string, port: number, options: WaitForTcpOptions = {}): Promise<void> {
    return this.#topology.waitForTcp(this.host, address, port, { process: this, ...options });
  }

  async waitForStderr(pattern: RegExp, timeoutMs = 5_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (!pattern.test(this.stderr) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.stderr;
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (!this.#exited) signalGroup(this.pid, signal);
  }

  async stop(graceMs = 2_000): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const escalate = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.kill("SIGKILL");
        resolve();
      }, graceMs);
    });
    try {
      await Promise.race([this.status, escalate]);
      const status = await this.status;
      // The group may outlive its leader (e.g. a shell's children); they hold our pipes.
      signalGroup(this.pid, "SIGKILL");
      await Promise.all([this.#stdout.settle(1_000), this.#stderr.settle(1_000)]);
      return status;
    } finally {
      clearTimeout(timer);
      this.#onGone();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Collects a stream's bytes up to {@link MAX_CAPTURE_BYTES}, then discards the rest. */
class Capture {
  readonly done: Promise<void>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #chunks: Uint8Array[] = [];
  #size = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.done = this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done) return;
        if (this.#size >= MAX_CAPTURE_BYTES) continue;
        this.#chunks.push(value);
        this.#size += value.byteLength;
      }
    } catch {
      // A killed process can break the pipe mid-read; what we have is what it wrote.
    } finally {
      this.#reader.releaseLock();
    }
  }

  /**
   * Waits up to `ms` for end of stream, then stops reading: a daemon that escaped the process
   * group may hold the pipe open forever.
   */
  async settle(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), ms);
    });
    try {
      if ((await Promise.race([this.done, late])) === "late") {
        await this.#reader.cancel().catch(() => {});
        await this.done;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  text(): string {
    const all = new Uint8Array(this.#size);
    let offset = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return new TextDecoder().decode(all);
  }
}

/** Options for {@link e2eAvailability}. */
export interface E2eAvailabilityOptions {
  /**
   * Programs that must be on `PATH` besides `ip` (for example `["curl", "microsocks"]`).
   * @default []
   */
  programs?: readonly string[];
}

/** Whether e2e tests can run here, and why not. */
export interface E2eAvailability {
  /** True when root, Linux, `ip` and the programs are present and a namespace can be made. */
  available: boolean;
  /** Why not; empty when available. */
  reason: string;
}

let probeCache: E2eAvailability | undefined;

/**
 * Checks, synchronously (so the answer can feed `Deno.test({ ignore })`), whether e2e tests
 * can run: Linux, root, `ip`, the given programs, and a namespace that can really be created.
 */
export function e2eAvailability(options: E2eAvailabilityOptions = {}): E2eAvailability {
  probeCache ??= probeNamespaces();
  if (!probeCache.available) return probeCache;
  const missing = (options.programs ?? []).filter((p) => findProgram(p) === undefined);
  if (missing.length > 0) {
    return { available: false, reason: `missing programs: ${missing.join(", ")}` };
  }
  return { available: true, reason: "" };
}

/**
 * Decides `ignore` for an e2e `Deno.test`. Outside CI an unavailable environment is skipped
 * with a printed `SKIPPED (reason)` line; with `CI` set it is never skipped, so the test runs
 * and {@link requireE2e} fails it loudly.
 */
export function e2eIgnore(label: string, options: E2eAvailabilityOptions = {}): boolean {
  const status = e2eAvailability(options);
  if (status.available) return false;
  if (isCi()) return false;
  // Not console.*: tests write straight to stderr so the line shows even with quiet loggers.
  Deno.stderr.writeSync(encoder.encode(`SKIPPED (${status.reason}): ${label}\n`));
  return true;
}

/** Throws inside a test when e2e tests cannot run (the CI path of {@link e2eIgnore}). */
export function requireE2e(options: E2eAvailabilityOptions = {}): void {
  const status = e2eAvailability(options);
  if (!status.available) {
    throw new Error(
      `Cannot run e2e test: ${status.reason}${
        isCi() ? " (CI is set, so this is not skipped)" : ""
      }`,
    );
  }
}

/**
 * Registers an e2e test: skipped with a reason outside CI when unavailable, failing in CI.
 *
 * @example
 * ```ts ignore
 * e2eTest("curl reaches server6 through microsocks", async () => {
 *   await using topo = await createTopology();
 * }, { programs: ["curl", "microsocks"] });
 * ```
 */
export function e2eTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: E2eAvailabilityOptions = {},
): void {
  Deno.test({
    name,
    ignore: e2eIgnore(name, options),
    async fn(t) {
      requireE2e(options);
      await fn(t);
    },
  });
}

function isCi(): boolean {
  const value = Deno.env.get("CI");
  return value !== undefined && value !== "" && value !== "false" && value !== "0";
}

function probeNamespaces(): E2eAvailability {
  if (Deno.build.os !== "linux") {
    return { available: false, reason: `network namespaces need Linux, not ${Deno.build.os}` };
  }
  if (Deno.uid() !== 0) return { available: false, reason: "not root" };
  if (findProgram("ip") === undefined) {
    return { available: false, reason: "missing program: ip (iproute2)" };
  }
  const probe = `${NAMESPACE_PREFIX}probe-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const add = new Deno.Command("ip", {
      args: ["netns", "add", probe],
      stdout: "null",
      stderr: "piped",
    })
      .outputSync();
    if (!add.success) {
      return {
        available: false,
        reason: `cannot create a network namespace: ${new TextDecoder().decode(add.stderr).trim()}`,
      };
    }
  } finally {
    new Deno.Command("ip", { args: ["netns", "del", probe], stdout: "null", stderr: "null" })
      .outputSync();
  }
  return { available: true, reason: "" };
}

function findProgram(name: string): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return `${dir}/${name}`;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

function hostsLines(entries: Readonly<Record<string, readonly string[]>>): string {
  let text = "";
  for (const [name, addresses] of Object.entries(entries)) {
    for (const address of addresses) text += `${address}\t${name}\n`;
  }
  return text;
}

/** Environment without the parent's proxy variables, which would reroute curl and friends. */
function commandEnv(options: { cwd?: string; env?: Readonly<Record<string, string>> }): {
  cwd?: string;
  env: Record<string, string>;
  clearEnv: true;
} {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (!/^(https?|ftp|all|no)_proxy$/i.test(key)) env[key] = value;
  }
  Object.assign(env, options.env ?? {});
  return options.cwd === undefined
    ? { env, clearEnv: true }
    : { cwd: options.cwd, env, clearEnv: true };
}

function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // Group already gone.
  }
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function deleteNamespace(ns: string): Promise<void> {
  // Processes that escaped their group (daemons that setsid) would keep the namespace alive.
  const pids = await command("ip", ["netns", "pids", ns]);
  for (const pid of pids.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s))) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  const del = await command("ip", ["netns", "del", ns]);
  const missing = /No such file|not found|Invalid netns/i.test(del.stderr);
  try {
    await Deno.remove(`/etc/netns/${ns}`, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (!del.success && !missing) {
    throw new Error(`Cannot delete namespace ${ns}: ${del.stderr.trim()}`);
  }
}

async function addAddress(ns: string, dev: string, cidr: string): Promise<void> {
  // nodad: an IPv6 address is usable at once instead of "tentative" for a second or two.
  const extra = cidr.includes(":") ? ["nodad"] : [];
  await ip(["-n", ns, "addr", "add", cidr, "dev", dev, ...extra]);
}

async function sysctl(ns: string, key: string, value: string): Promise<void> {
  // Writing /proc/sys directly avoids depending on sysctl(8); net.* is per namespace.
  const path = `/proc/sys/${key.replaceAll(".", "/")}`;
  const r = await command("ip", [
    "netns",
    "exec",
    ns,
    "sh",
    "-c",
    'echo "$1" > "$2"',
    "_",
    value,
    path,
  ]);
  if (!r.success) throw new Error(`Cannot set ${key}=${value} in ${ns}: ${r.stderr.trim()}`);
}

async function ip(args: readonly string[]): Promise<void> {
  const r = await command("ip", args);
  if (!r.success) throw new Error(`Cannot run ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

async function command(
  cmd: string,
  args: readonly string[],
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  return {
    success: out.success,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
