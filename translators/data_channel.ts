/**
 * Pieces every translator with data channels needs, written once: the port-range option of
 * its listeners, the bridge from an accepted connection to the other leg, and the set of
 * background tasks that `close()` awaits.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import type { IpEndpoint } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";
import { closeQuietly } from "../net/io.ts";
import type { DataChannelBroker, Side } from "./types.ts";

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

/** Background tasks of a session (listeners, relays): `settled()` waits for them all. */
export class TaskSet {
  readonly #tasks = new Set<Promise<void>>();
  readonly #onError: (error: unknown) => void;

  /** `onError` reports a task that threw (a session never lets one escape). */
  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  /** Runs `task` in the background. */
  spawn(task: () => Promise<void>): void {
    const promise = task().catch(this.#onError).finally(() => this.#tasks.delete(promise));
    this.#tasks.add(promise);
  }

  /** Resolves when every task spawned so far has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#tasks]);
  }
}
