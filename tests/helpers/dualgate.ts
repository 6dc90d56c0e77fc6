/**
 * Runs the real gateway (`main.ts serve`) on the gateway host of a test topology.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { SpawnedProcess, Topology } from "./netns.ts";
import { GATEWAY_V8_FLAGS_ARG } from "../../gateway/runtime_flags.ts";

/** Path of main.ts. */
export const MAIN_TS: string = fileURLToPath(new URL("../../main.ts", import.meta.url));
/** The repository root. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

let cached: Promise<void> | undefined;

/**
 * Caches main.ts's dependencies on the host: the gateway namespace has no route to a
 * registry. Once per process.
 */
export function cacheMain(): Promise<void> {
  cached ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["cache", MAIN_TS],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(180_000),
    }).output();
    if (!out.success) {
      throw new Error(`deno cache main.ts failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
  })();
  return cached;
}

/** Options of {@linkcode startDualgate}. */
export interface StartDualgateOptions {
  /** Where the config file is written. */
  dir: string;
  /** Host to run on. @default "gateway" */
  host?: "gateway" | "client4" | "client6" | "server4" | "server6";
  /** Endpoints to wait for (address, port); @default the gateway's v4 and v6 on 1080 */
  waitFor?: readonly (readonly [string, number])[];
  /** Config file name. @default "dualgate.yaml" */
  fileName?: string;
}

/** Starts `main.ts serve --config` with `yaml` and waits until it listens. */
export async function startDualgate(
  topo: Topology,
  yaml: string,
  options: StartDualgateOptions,
): Promise<SpawnedProcess> {
  await cacheMain();
  const config = `${options.dir}/${options.fileName ?? "dualgate.yaml"}`;
  await Deno.writeTextFile(config, yaml);
  const host = options.host ?? "gateway";
  const process = topo.spawn(
    host,
    Deno.execPath(),
    ["run", "--allow-all", GATEWAY_V8_FLAGS_ARG, MAIN_TS, "serve", "--config", config],
    { cwd: REPO_ROOT, env: { NO_COLOR: "1" } },
  );
  const waits = options.waitFor ??
    [[topo.addresses.gateway.v4, 1080], [topo.addresses.gateway.v6, 1080]] as const;
  try {
    for (const [address, port] of waits) {
      await process.waitForTcp(address, port, { timeoutMs: 30_000 });
    }
  } catch (error) {
    await process[Symbol.asyncDispose]();
    throw new Error(
      `dualgate did not start: ${error}\nstdout: ${process.stdout}\nstderr: ${process.stderr}`,
    );
  }
  return process;
}

/** A gateway process on this host's loopback (not in a namespace). */
export interface LocalGatewayProcess extends AsyncDisposable {
  /** The process id. */
  readonly pid: number;
  /** `host:port` strings it listens on, as logged. */
  readonly endpoints: readonly { hostname: string; port: number }[];
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
}

/**
 * Starts `main.ts serve --config` with `yaml` as a child process on this host and waits for its
 * "listening on" lines (one per `listen` entry; use port 0 for free ports).
 */
export async function spawnLocalGateway(
  yaml: string,
  options: {
    dir: string;
    listeners: number;
    /** Runs it under `ulimit -n` of this many open files (through bash). */
    openFilesLimit?: number;
  },
): Promise<LocalGatewayProcess> {
  const config = `${options.dir}/dualgate-local.yaml`;
  await Deno.writeTextFile(config, yaml);
  const serve = ["run", "--allow-all", GATEWAY_V8_FLAGS_ARG, MAIN_TS, "serve", "--config", config];
  const limit = options.openFilesLimit;
  const child = new Deno.Command(limit === undefined ? Deno.execPath() : "bash", {
    args: limit === undefined
      ? serve
      : ["-c", `ulimit -n ${Math.trunc(limit)} && exec "$0" "$@"`, Deno.execPath(), ...serve],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const endpoints: { hostname: string; port: number }[] = [];
  const ready = Promise.withResolvers<void>();
  const decoder = new TextDecoder();
  const pump = (async () => {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > 4_000_000) text = text.slice(-2_000_000);
      if (endpoints.length < options.listeners) {
        for (const match of text.matchAll(/listening on (?:\\?")?\[?([^\s\]"\\]+?)\]?:(\d+)/g)) {
          if (
            endpoints.length < options.listeners &&
            !endpoints.some((e) => e.port === Number(match[2]) && e.hostname === match[1])
          ) {
            endpoints.push({ hostname: match[1]!, port: Number(match[2]) });
          }
        }
        if (endpoints.length >= options.listeners) ready.resolve();
      }
    }
  })();
  const timer = setTimeout(
    () => ready.reject(new Error(`gateway did not start:\n${text}`)),
    30_000,
  );
  child.status.then(() => ready.reject(new Error(`gateway exited:\n${text}`)));
  try {
    await ready.promise;
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await pump;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    pid: child.pid,
    endpoints,
    stderr: () => text,
    status: child.status,
    rss() {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      const kib = Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0);
      return kib * 1024;
    },
    [Symbol.asyncDispose]: async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await pump;
    },
  };
}
