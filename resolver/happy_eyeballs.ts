/**
 * Happy Eyeballs (RFC 8305): address ordering by family preference, and connection racing.
 *
 * @module
 */

import type { FamilyPreference } from "../gateway/config/types.ts";
import type { IpAddress } from "../net/address.ts";

/**
 * Orders a name's addresses for connecting.
 *
 * - `happy-eyeballs`: interleaved, IPv6 first (RFC 8305 §4, First Address Family Count 1);
 * - `ipv6` / `ipv4`: every address of that family, then the other family;
 * - `ipv6-only` / `ipv4-only`: only that family.
 *
 * Within a family the resolver's order is kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderAddresses } from "./happy_eyeballs.ts";
 *
 * const a4 = { family: 4, bytes: new Uint8Array([192, 0, 2, 1]) } as const;
 * const a6 = { family: 6, bytes: new Uint8Array(16) } as const;
 * assert.deepEqual(orderAddresses({ v4: [a4], v6: [a6] }, "happy-eyeballs"), [a6, a4]);
 * assert.deepEqual(orderAddresses({ v4: [a4], v6: [a6] }, "ipv4-only"), [a4]);
 * ```
 */
export function orderAddresses(
  resolved: { readonly v4: readonly IpAddress[]; readonly v6: readonly IpAddress[] },
  prefer: FamilyPreference,
): IpAddress[] {
  const { v4, v6 } = resolved;
  switch (prefer) {
    case "ipv6-only":
      return [...v6];
    case "ipv4-only":
      return [...v4];
    case "ipv6":
      return [...v6, ...v4];
    case "ipv4":
      return [...v4, ...v6];
    case "happy-eyeballs": {
      const ordered: IpAddress[] = [];
      for (let i = 0; i < Math.max(v4.length, v6.length); i++) {
        const six = v6[i];
        const four = v4[i];
        if (six) ordered.push(six);
        if (four) ordered.push(four);
      }
      return ordered;
    }
  }
}

/** Options for {@linkcode connectHappyEyeballs}. */
export interface ConnectHappyEyeballsOptions<T> {
  /** Delay before starting the next attempt while earlier ones are pending (RFC 8305 §5). @default 250 */
  readonly attemptDelayMs?: number;
  /** Aborts every attempt; the race rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Disposes of a connection that succeeded after another had already won. */
  readonly close?: (value: T) => void;
  /** Run attempts one after another instead of staggered. @default false */
  readonly sequential?: boolean;
}

/** The winning attempt: its value (a connection) and the address it was made to. */
export interface HappyEyeballsResult<T> {
  /** What the winning attempt resolved with. */
  readonly value: T;
  /** The address of the winning attempt. */
  readonly address: IpAddress;
}

/** Every connection attempt failed (or there were no addresses to try). */
export class AllAttemptsFailedError extends AggregateError {
  /** Each attempt's error, in the order the attempts were started. */
  declare readonly errors: unknown[];
  /** The addresses tried, parallel to `errors`. */
  readonly addresses: readonly IpAddress[];
  /** The error of the attempt that failed last; `undefined` when there were no addresses. */
  readonly lastError: unknown;

  /** Creates the error from every attempt's error and the one that failed last. */
  constructor(addresses: readonly IpAddress[], errors: unknown[], lastError: unknown) {
    const detail = addresses.length === 0
      ? "no addresses to try"
      : `all ${addresses.length} attempts failed (last: ${
        lastError instanceof Error ? lastError.message : String(lastError)
      })`;
    super(errors, `Cannot connect: ${detail}`, { cause: lastError });
    this.name = "AllAttemptsFailedError";
    this.addresses = addresses;
    this.lastError = lastError;
  }
}

/**
 * Races connection attempts the RFC 8305 way: the first attempt starts at once, each next one
 * `attemptDelayMs` after the previous started, or at once when an attempt fails. The first
 * success wins; the other attempts' signals are aborted, and any that succeed anyway are
 * handed to `close`. Pass addresses already ordered by {@linkcode orderAddresses}.
 *
 * @throws {AllAttemptsFailedError} when every attempt fails (or `addresses` is empty).
 * @throws the signal's reason when `options.signal` aborts first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectHappyEyeballs } from "./happy_eyeballs.ts";
 *
 * const a6 = { family: 6, bytes: new Uint8Array(16) } as const;
 * const a4 = { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) } as const;
 * const { address } = await connectHappyEyeballs(
 *   [a6, a4],
 *   (address) => address.family === 6 ? Promise.reject(new Error("refused")) : Promise.resolve("ok"),
 *   { attemptDelayMs: 10 },
 * );
 * assert.equal(address, a4);
 * ```
 */
export function connectHappyEyeballs<T>(
  addresses: readonly IpAddress[],
  attempt: (address: IpAddress, signal: AbortSignal) => Promise<T>,
  options: ConnectHappyEyeballsOptions<T> = {},
): Promise<HappyEyeballsResult<T>> {
  const { attemptDelayMs = 250, signal, close, sequential = false } = options;
  const list = [...addresses];
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (list.length === 0) return Promise.reject(new AllAttemptsFailedError([], [], undefined));

  return new Promise((resolve, reject) => {
    const controllers: AbortController[] = [];
    const errors: unknown[] = [];
    let started = 0;
    let failed = 0;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const settle = (winner: AbortController | undefined) => {
      settled = true;
      clearTimeout(timer);
      timer = undefined;
      signal?.removeEventListener("abort", onAbort);
      for (const controller of controllers) {
        if (controller !== winner) {
          controller.abort(new DOMException("Another connection attempt won", "AbortError"));
        }
      }
    };

    const onAbort = () => {
      if (settled) return;
      settle(undefined);
      reject(signal?.reason);
    };

    const startNext = () => {
      clearTimeout(timer);
      timer = undefined;
      if (settled || started >= list.length) return;
      const index = started++;
      const address = list[index]!;
      const controller = new AbortController();
      controllers.push(controller);
      let pending: Promise<T>;
      try {
        pending = attempt(address, controller.signal);
      } catch (error) {
        pending = Promise.reject(error);
      }
      Promise.resolve(pending).then(
        (value) => {
          if (settled) {
            try {
              close?.(value);
            } catch {
              // A loser that fails to close is not the caller's problem.
            }
            return;
          }
          settle(controller);
          resolve({ value, address });
        },
        (error: unknown) => {
          errors[index] = error;
          failed++;
          if (settled) return;
          if (failed === list.length) {
            settle(undefined);
            reject(new AllAttemptsFailedError(list, errors, error));
            return;
          }
          // A failure frees its slot: start the next attempt without waiting for the delay.
          startNext();
        },
      );
      if (!sequential && started < list.length) timer = setTimeout(startNext, attemptDelayMs);
    };

    signal?.addEventListener("abort", onAbort, { once: true });
    startNext();
  });
}
