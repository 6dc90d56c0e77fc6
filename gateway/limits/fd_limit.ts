/**
 * The process's soft file-descriptor limit, and the connection cap it allows: each relayed
 * connection holds two descriptors (client and destination), and the runtime, listeners, log
 * and resolver need a reserve.
 *
 * @module
 */

/**
 * Reads the soft limit on open files (`RLIMIT_NOFILE`) from `/proc/self/limits`, falling back
 * to `sh -c "ulimit -n"`; `null` when unknown or unlimited.
 */
export function descriptorLimit(): number | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const match = text.match(/^Max open files\s+(\S+)/m);
    if (match) return parseLimit(match[1]!);
  } catch { /* not Linux, or no --allow-read */ }
  try {
    const out = new Deno.Command("sh", {
      args: ["-c", "ulimit -n"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (out.success) return parseLimit(new TextDecoder().decode(out.stdout).trim());
  } catch { /* no sh, or no --allow-run */ }
  return null;
}

function parseLimit(text: string): number | null {
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : null;
}

/** Descriptors kept back for the runtime, listeners, admin, DNS and BIND/UDP extras. */
export function descriptorReserve(limit: number): number {
  return Math.max(64, Math.ceil(limit / 20));
}

/**
 * The connection cap the descriptor limit allows: `(limit - reserve) / 2`, at least 1; the
 * configured value when the limit is unknown or higher.
 */
export function capConnections(configured: number, limit: number | null): number {
  if (limit === null) return configured;
  const allowed = Math.max(1, Math.floor((limit - descriptorReserve(limit)) / 2));
  return Math.min(configured, allowed);
}

/**
 * Formats one error stack while descriptors are free. Deno 2.9.6 panics (in `stacker`, "left:
 * 24", that is EMFILE) when the first error stack of a thread is formatted while the process
 * is out of descriptors: the first use reads /proc/self/maps to learn the stack size. After
 * one stack has been formatted the limit is cached and EMFILE is an ordinary error again.
 */
export function warmUpErrorStacks(): void {
  void new Error("descriptor warm-up").stack;
}

/**
 * Descriptors beyond the two a connection holds: a UDP association's relay sockets. Connections
 * are counted by the caller; this only tracks the extras against what the limit leaves.
 */
export class DescriptorBudget {
  readonly #capacity: number;
  #extra = 0;

  /** `capacity` is what connections may use in all, `Infinity` when the limit is unknown. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** The budget for a process limit: `limit - reserve`, or unbounded when unknown. */
  static forLimit(limit: number | null): DescriptorBudget {
    return new DescriptorBudget(limit === null ? Infinity : limit - descriptorReserve(limit));
  }

  /** Descriptors taken by extras now. */
  get extra(): number {
    return this.#extra;
  }

  /** True when one more connection (two descriptors) fits beside `connections` live ones. */
  admitsConnection(connections: number): boolean {
    return (connections + 1) * 2 + this.#extra <= this.#capacity;
  }

  /**
   * Takes `count` extra descriptors if they fit beside `connections` live connections; returns
   * the function that gives them back, or `null` when they do not fit.
   */
  take(count: number, connections: number): (() => void) | null {
    if (connections * 2 + this.#extra + count > this.#capacity) return null;
    this.#extra += count;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#extra -= count;
    };
  }
}
