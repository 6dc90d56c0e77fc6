/**
 * Happy Eyeballs (RFC 8305): address ordering by family preference, and connection racing.
 *
 * @module
 */

import type { FamilyPreference } from "./options.ts";
import { type IpAddress, sameIp } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";

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
  /**
   * Addresses that become known while attempts run (a late DNS answer, RFC 8305 §3), in
   * batches. Each batch is sorted into the not-yet-tried addresses by `prefer` (§4); addresses
   * already listed are ignored. The race does not fail for want of addresses until this ends;
   * a source that throws simply ends. @default no more addresses
   */
  readonly more?: AsyncIterable<readonly IpAddress[]>;
  /** How addresses from `more` are sorted into the untried ones. @default "happy-eyeballs" */
  readonly prefer?: FamilyPreference;
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
      : `all ${addresses.length} attempts failed (last: ${errorText(lastError)})`;
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
 * handed to `close`. Pass addresses already ordered by {@linkcode orderAddresses}; addresses
 * learnt later come through `options.more` and join the untried part of the list.
 *
 * @throws {AllAttemptsFailedError} when every attempt fails (or there was no address at all).
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
  const {
    attemptDelayMs = 250,
    signal,
    close,
    sequential = false,
    more,
    prefer = "happy-eyeballs",
  } = options;
  const list = [...addresses];
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (list.length === 0 && !more) {
    return Promise.reject(new AllAttemptsFailedError([], [], undefined));
  }

  return new Promise((resolve, reject) => {
    const controllers: AbortController[] = [];
    const errors: unknown[] = [];
    let started = 0;
    let failed = 0;
    let lastStartedAt = 0;
    let lastError: unknown;
    let moreDone = !more;
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

    /** Fails the race once nothing runs, nothing is left to try and nothing more can come. */
    const checkExhausted = () => {
      if (settled || !moreDone || failed < started || started < list.length) return;
      settle(undefined);
      reject(new AllAttemptsFailedError(list, errors, lastError));
    };

    const startNext = () => {
      clearTimeout(timer);
      timer = undefined;
      if (settled || started >= list.length) return;
      const index = started++;
      const address = list[index]!;
      const controller = new AbortController();
      controllers.push(controller);
      lastStartedAt = performance.now();
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
          lastError = error;
          failed++;
          if (settled) return;
          // A failure frees its slot: start the next attempt without waiting for the delay.
          if (started < list.length) startNext();
          else checkExhausted();
        },
      );
      if (!sequential && started < list.length) timer = setTimeout(startNext, attemptDelayMs);
    };

    const add = (batch: readonly IpAddress[]) => {
      const fresh = batch.filter((address) => !list.some((known) => sameIp(known, address)));
      if (fresh.length === 0) return;
      const untried = list.splice(started);
      list.push(...mergeUntried(untried, fresh, prefer, list[started - 1]));
      if (started >= list.length) return;
      if (failed === started) {
        startNext();
      } else if (!sequential && timer === undefined) {
        // Keep the stagger: the next attempt starts attemptDelayMs after the last one did.
        const wait = Math.max(0, lastStartedAt + attemptDelayMs - performance.now());
        timer = setTimeout(startNext, wait);
      }
    };

    const pump = async (source: AsyncIterable<readonly IpAddress[]>) => {
      try {
        for await (const batch of source) {
          if (settled) return;
          add(batch);
        }
      } catch {
        // A source that fails has no more addresses; the attempts decide the outcome.
      } finally {
        moreDone = true;
        checkExhausted();
      }
    };

    signal?.addEventListener("abort", onAbort, { once: true });
    startNext();
    if (more) void pump(more);
  });
}

/**
 * Sorts late addresses into the untried ones (RFC 8305 §4): the families `prefer` allows, in
 * its order; for `happy-eyeballs`, interleaved starting with the family not tried last.
 */
function mergeUntried(
  untried: readonly IpAddress[],
  fresh: readonly IpAddress[],
  prefer: FamilyPreference,
  lastTried: IpAddress | undefined,
): IpAddress[] {
  const all = [...untried, ...fresh];
  const v4 = all.filter((address) => address.family === 4);
  const v6 = all.filter((address) => address.family === 6);
  if (prefer === "happy-eyeballs" && lastTried?.family === 6) {
    // orderAddresses interleaves starting with its `v6` list; hand it the IPv4 one.
    return orderAddresses({ v4: v6, v6: v4 }, prefer);
  }
  return orderAddresses({ v4, v6 }, prefer);
}
