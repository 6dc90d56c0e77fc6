/**
 * A list of gateways with a selection strategy, shared by every connection of a process:
 * `failover` (in order), `round-robin` or `random`, with failed gateways skipped for a while.
 * The same selector the gateway uses for a chained hop's alternatives; connections try the
 * gateways with {@linkcode tryAlternatives} (`alternatives.ts`).
 *
 * @module
 */

import type { Alternative } from "./alternatives.ts";
import { HopSelector, type HopStrategy } from "./selector.ts";
import type { GatewayEndpoint } from "./gateway_url.ts";

/** Options of {@linkcode GatewayList}. */
export interface GatewayListOptions {
  /** How a connection picks its first gateway. @default "failover" */
  readonly strategy?: HopStrategy;
  /** Failures in a row that mark a gateway down. @default 1 */
  readonly maxFails?: number;
  /** How long a marked gateway is tried last, in milliseconds. @default 30000 */
  readonly failTimeoutMs?: number;
}

/** One try of one gateway within a connection attempt. */
export interface GatewayAttempt extends Alternative {
  /** The gateway to try. */
  readonly gateway: GatewayEndpoint;
}

/** Gateways and the state of their selection. */
export class GatewayList {
  /** The gateways, as configured. */
  readonly endpoints: readonly GatewayEndpoint[];
  readonly #selector: HopSelector;

  /**
   * Creates the list.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GatewayList } from "./gateway_list.ts";
   * import { parseGatewayUrl } from "./gateway_url.ts";
   *
   * const list = new GatewayList(
   *   ["socks5://192.0.2.1:1080", "socks5://192.0.2.2:1080"].map(parseGatewayUrl),
   *   { strategy: "round-robin" },
   * );
   * const first = list.attempts()[0]!.gateway.hostname;
   * const second = list.attempts()[0]!.gateway.hostname;
   * assert.notEqual(first, second);
   * ```
   *
   * @throws {RangeError} when `endpoints` is empty.
   */
  constructor(endpoints: readonly GatewayEndpoint[], options: GatewayListOptions = {}) {
    this.endpoints = endpoints;
    this.#selector = new HopSelector(endpoints.length, {
      ...(options.strategy !== undefined ? { strategy: options.strategy } : {}),
      ...(options.maxFails !== undefined ? { maxFails: options.maxFails } : {}),
      ...(options.failTimeoutMs !== undefined ? { failTimeoutMs: options.failTimeoutMs } : {}),
    });
  }

  /** The gateways one connection attempt tries, in order. */
  attempts(): GatewayAttempt[] {
    return this.#selector.attempts().map((attempt) => ({
      gateway: this.endpoints[attempt.index]!,
      failed: attempt.failed,
      succeeded: attempt.succeeded,
    }));
  }
}

/** A plain list (tried in order, failures forgotten) or a shared {@linkcode GatewayList}. */
export type Gateways = readonly GatewayEndpoint[] | GatewayList;

/** The attempts for `gateways`, whichever form it has. */
export function gatewayAttempts(gateways: Gateways): GatewayAttempt[] {
  if (gateways instanceof GatewayList) return gateways.attempts();
  return gateways.map((gateway) => ({ gateway, failed() {}, succeeded() {} }));
}
