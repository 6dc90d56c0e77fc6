/**
 * Routes: which destinations go through a chain of gateways instead of directly.
 * First match wins; no match dials directly.
 *
 * @module
 */

import type { RouteConfig } from "../config/types.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import type { Dialer } from "./types.ts";

/** The dialer chosen for one destination. */
export interface RouteChoice {
  /** The dialer to use. */
  readonly dialer: Dialer;
  /** True when the destination goes through at least one upstream gateway. */
  readonly chained: boolean;
  /** `direct`, or the matching route's index and first hop, for logs. */
  readonly label: string;
}

/** Picks the dialer for a destination. */
export type Router = (target: SocksTarget) => RouteChoice;

/** Compiles `routes` over the direct dialer. */
export function createRouter(routes: readonly RouteConfig[], direct: Dialer): Router {
  if (routes.length > 0) {
    throw new RangeError("Cannot route: chained routes are not built yet");
  }
  const choice: RouteChoice = { dialer: direct, chained: false, label: "direct" };
  return () => choice;
}
