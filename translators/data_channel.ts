/**
 * Pieces every translator with data channels needs, written once: the port-range option of
 * its listeners, the bridge from an accepted connection to the other leg, a listener served
 * together with the SOCKS CONNECT the gateway expects instead (first one wins), and the set of
 * background tasks that `close()` awaits.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import type { IpEndpoint } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";
import { closeQuietly } from "../net/io.ts";
import type { SocksTarget } from "../socks5/types.ts";
import type { DataChannelBroker, DataListener, Side, TranslatorContext } from "./types.ts";

const logger = getLogger(["dualgate", "translators"]);

/** An inclusive port range; `{ from: 0, to: 0 }` lets the kernel choose. */
export interface PortRange {
  /** First port. */
  readonly from: number;
  /** Last port (inclusive). */
  readonly to: number;
}

const port = z.number().int("must be an integer").min(0, "must be 0..65535").max(
  65535,
  "must be 0..65535",
);

/**
 * The YAML schema of a listener port range (`{ from, to }`): 1024..65535, or `{ from: 0, to:
 * 0 }` for the kernel's choice; issue paths name `from` or `to`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { portRangeSchema } from "./data_channel.ts";
 *
 * assert.deepEqual(portRangeSchema.parse({ from: 50000, to: 50999 }), { from: 50000, to: 50999 });
 * assert.equal(portRangeSchema.safeParse({ from: 80, to: 90 }).success, false);
 * ```
 */
export const portRangeSchema: z.ZodType<PortRange> = z.strictObject({ from: port, to: port })
  .superRefine((range, ctx) => {
    if (range.from > range.to) {
      ctx.addIssue({ code: "custom", path: ["from"], message: `must not exceed to (${range.to})` });
    } else if (
      (range.from === 0) !== (range.to === 0) || (range.from !== 0 && range.from < 1024)
    ) {
      ctx.addIssue({
        code: "custom",
        path: [range.from === 0 || range.from >= 1024 ? "to" : "from"],
        message: "ports must be 1024..65535, or { from: 0, to: 0 } for the kernel's choice",
      });
    }
  });

/** Options of {@linkcode bridgeDataChannel}. */
export interface BridgeOptions {
  /** The session id, for the log. */
  readonly id: string;
  /** The side `endpoint` is on. */
  readonly side: Side;
  /** The label of the relay's record (`"ftp-data"`, `"irc-dcc"`). */
  readonly label: string;
  /** Aborting stops the dial or tears the relay down. */
  readonly signal: AbortSignal;
}

/**
 * Connects the other leg of a data channel (`endpoint`, under the gateway's rules) and relays
 * it with `accepted` through the gateway's relay, until the relay ends. When the other leg
 * cannot be had, `accepted` is closed and the failure logged.
 */
export async function bridgeDataChannel(
  broker: DataChannelBroker,
  accepted: Deno.Conn,
  endpoint: IpEndpoint,
  options: BridgeOptions,
): Promise<void> {
  let other: Deno.Conn;
  try {
    other = await broker.connect(endpoint, { side: options.side, signal: options.signal });
  } catch (error) {
    closeQuietly(accepted);
    logger.info("Cannot connect {label} channel: {error}", {
      id: options.id,
      label: options.label,
      error: errorText(error),
    });
    return;
  }
  await broker.relay(accepted, other, { label: options.label, signal: options.signal });
}

/**
 * Background tasks of a session (listeners, relays): `settled()` waits for them all. A task
 * that throws is logged (a session never lets one escape).
 */
export class TaskSet {
  readonly #tasks = new Set<Promise<void>>();
  readonly #label: string;
  readonly #id: string;

  /** `label` names the session's data channels in the log (`"ftp-data"`); `id` the session. */
  constructor(label: string, id: string) {
    this.#label = label;
    this.#id = id;
  }

  /** Runs `task` in the background. */
  spawn(task: () => Promise<void>): void {
    const promise = task().catch((error) => {
      logger.warn("{label} task failed: {error}", {
        id: this.#id,
        label: this.#label,
        error: errorText(error),
      });
    }).finally(() => this.#tasks.delete(promise));
    this.#tasks.add(promise);
  }

  /** Resolves when every task spawned so far has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#tasks]);
  }
}

/**
 * What every translator session that opens data channels holds (FTP, IRC DCC): its context, the
 * broker that opens the channels, its options, and the background tasks its end waits for.
 */
export abstract class DataChannelSession<Options> {
  /** The session's context: ids, endpoints, the rules' view. */
  protected readonly ctx: TranslatorContext;
  /** Opens listeners and dials for the data channels. */
  protected readonly broker: DataChannelBroker;
  /** The plugin's options. */
  protected readonly options: Options;
  /** The data channels' background tasks, logged under `label`. */
  protected readonly tasks: TaskSet;

  /** `label` names the session's data channels in the log (`"ftp-data"`, `"irc-dcc"`). */
  constructor(ctx: TranslatorContext, broker: DataChannelBroker, options: Options, label: string) {
    this.ctx = ctx;
    this.broker = broker;
    this.options = options;
    this.tasks = new TaskSet(label, ctx.id);
  }
}

/** Options of {@linkcode serveDataListener}. */
export interface ServeDataListenerOptions extends BridgeOptions {
  /** The other leg: where the connection taken is bridged to (on `side`). */
  readonly target: IpEndpoint;
  /**
   * Where a SOCKS client may CONNECT instead of reaching the listener directly (the gateway
   * expects those CONNECTs from this session's client); empty: no expectation.
   */
  readonly expectTargets: readonly SocksTarget[];
  /** How long the expectation lives. */
  readonly ttlMs: number;
  /** Aborting drops the expectation (a new setup, the session's end); not a running relay. */
  readonly setupSignal: AbortSignal;
  /** Called once, when the channel is taken either way or the listener ended without a peer. */
  readonly settled?: () => void;
}

/**
 * Serves one data channel offered on `listener`: the first of a connection to the listener and
 * an expected SOCKS CONNECT to one of `expectTargets` takes it (the other is closed, or no
 * longer expected), and is bridged to `target` through the gateway's relay until `signal`
 * aborts. The accept runs in `tasks`.
 */
export function serveDataListener(
  broker: DataChannelBroker,
  tasks: TaskSet,
  listener: DataListener,
  options: ServeDataListenerOptions,
): void {
  const { target, side, signal } = options;
  let claimed = false;
  let settled = false;
  const settle = () => {
    if (!settled) options.settled?.();
    settled = true;
  };
  const claim = (): boolean => {
    if (claimed) return false;
    claimed = true;
    settle();
    return true;
  };
  const expectation = options.expectTargets.length === 0 ? null : broker.expect({
    targets: options.expectTargets,
    ttlMs: options.ttlMs,
    signal: options.setupSignal,
    relaySignal: signal,
    open: (opening) => {
      if (!claim()) return Promise.reject(new Error(`Cannot open ${options.label} channel: taken`));
      listener[Symbol.dispose]();
      return broker.connect(target, { side, signal: AbortSignal.any([opening, signal]) });
    },
  });
  tasks.spawn(async () => {
    let accepted: Deno.Conn;
    try {
      accepted = await listener.accept();
    } catch {
      settle();
      return; // Timed out, replaced, closed, or the SOCKS path claimed it.
    }
    if (!claim()) {
      closeQuietly(accepted);
      return;
    }
    expectation?.[Symbol.dispose]();
    await bridgeDataChannel(broker, accepted, target, options);
  });
}
