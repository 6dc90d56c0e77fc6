/**
 * Routes: which destinations go through a chain of gateways instead of directly.
 * First match wins; no match dials directly.
 *
 * Patterns match the destination as requested: name patterns (`host.example`, `*.example`)
 * match names, CIDRs match literal addresses (also a literal sent as a name), and `*` matches
 * every destination (a catch-all route; also a name that is not a valid host name, which the
 * chain's first hop then refuses with REP 4 before rules see it). A name is never resolved to
 * pick a route: in a chain, only the last gateway resolves it.
 *
 * @module
 */

import type { IpAddress } from "../../net/address.ts";
import { literalAddress, normalizeName } from "../../resolver/mod.ts";
import type { RouteConfig } from "../config/types.ts";
import {
  compileDestinationPattern,
  formatDestinationPattern,
} from "../access/destination_pattern.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { type AlternativeState, foldChainHops, type SocksHopDialerOptions } from "./hop.ts";
import type { Dialer } from "./types.ts";
import { EgressPool } from "./egress.ts";

/** The dialer chosen for one destination. */
export interface RouteChoice {
  /** The dialer to use. */
  readonly dialer: Dialer;
  /** True when the destination goes through at least one upstream gateway. */
  readonly chained: boolean;
  /** `direct`, or the matching route's index and first hop, for logs. */
  readonly label: string;
  /** The hops of a chained route, first to last, alternatives joined by `|` (audit log). */
  readonly hops?: readonly string[];
  /** The route's source addresses (of its first hop's connection, for a chain). */
  readonly egress?: EgressPool;
}

/** Picks the dialer for a destination. */
export type Router = (target: SocksTarget) => RouteChoice;

/** One hop of one route, with its alternatives' states (what the status page lists). */
export interface HopStatus {
  /** The route's index in `routes`. */
  readonly route: number;
  /** The hop's index in the route's chain. */
  readonly hop: number;
  /** Its alternatives, in config order. */
  readonly alternatives: readonly AlternativeState[];
}

/** A {@linkcode Router} that also reports its hops' alternative states. */
export type StatusRouter = Router & {
  /** Every hop of every route, route by route, first hop first. */
  readonly hopStates: () => HopStatus[];
};

/** The hop states of a router from {@linkcode createRouter} (none for another router). */
export function hopStatesOf(router: Router): HopStatus[] {
  return "hopStates" in router ? (router as StatusRouter).hopStates() : [];
}

/** Options of {@linkcode createRouter}. */
export interface CreateRouterOptions extends SocksHopDialerOptions {
  /**
   * The dialer beneath the first hop of every chain (it dials the hop gateways themselves).
   * @default the direct dialer
   */
  hopBase?: Dialer;
}

/** The destination as patterns see it: a normalised name, or an address. */
type Subject =
  | { readonly name: string; readonly address?: undefined }
  | { readonly name?: undefined; readonly address: IpAddress };

function subjectOf(target: SocksTarget): Subject | undefined {
  const a = target.address;
  if (a.family !== "name") return { address: a };
  const literal = literalAddress(a.name);
  if (literal) return { address: literal };
  const name = normalizeName(a.name);
  return name === null ? undefined : { name };
}

/**
 * Compiles `routes` over the direct dialer, once: each route's chain becomes one dialer (a fold
 * of its hops), whose alternative marks are shared by every connection on the route.
 */
export function createRouter(
  routes: readonly RouteConfig[],
  direct: Dialer,
  options: CreateRouterOptions = {},
): StatusRouter {
  const directChoice: RouteChoice = { dialer: direct, chained: false, label: "direct" };
  const compiled = routes.map((route, index) => {
    const to = route.to.map(compileDestinationPattern);
    const ports = route.ports;
    const first = route.chain[0]?.alternatives.map((a) => a.label).join("|") ?? "direct";
    const egress = route.egress ? { egress: new EgressPool(route.egress) } : {};
    const chained = route.chain.length > 0;
    const folded = chained
      ? foldChainHops(route.chain, options.hopBase ?? direct, options)
      : { dialer: direct, hops: [] };
    const choice: RouteChoice = {
      dialer: folded.dialer,
      chained,
      label: `routes[${index}] (${route.to.map(formatDestinationPattern).join(", ")}) ` +
        (chained ? `via ${first}` : "direct") +
        (route.chain.length > 1 ? ` +${route.chain.length - 1}` : ""),
      ...(chained && {
        hops: route.chain.map((hop) => hop.alternatives.map((a) => a.label).join("|")),
      }),
      ...egress,
    };
    return {
      matches: (s: Subject | Record<never, never>, port: number) =>
        (ports === undefined || ports.some((r) => port >= r.from && port <= r.to)) &&
        to.some((m) => m(s)),
      choice,
      hops: folded.hops,
    };
  });
  const hopStates = () =>
    compiled.flatMap(({ hops }, route) =>
      hops.map((dialer, hop) => ({ route, hop, alternatives: dialer.alternativeStates() }))
    );
  if (compiled.length === 0) return Object.assign(() => directChoice, { hopStates });
  const router: Router = (target) => {
    // An invalid name has nothing for a name or CIDR pattern to match; only `*` takes it.
    const subject = subjectOf(target) ?? {};
    for (const route of compiled) {
      if (route.matches(subject, target.port)) return route.choice;
    }
    return directChoice;
  };
  return Object.assign(router, { hopStates });
}
