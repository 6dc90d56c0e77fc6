/**
 * Access rules, compiled once at load; first match wins, no match denies.
 *
 * Host-local protection holds with and without rules. A destination on the gateway host itself
 * ({@linkcode HostView}: loopback, 0.0.0.0/8, `::`, the host's own addresses) is refused to a
 * client that is not on loopback, and a CONNECT to one of the gateway's own listeners is
 * refused to every client. Only an allow rule that names such a destination explicitly opens
 * it: a `to` CIDR inside the loopback / "this host" ranges (`127.0.0.0/8`, `127.0.0.1/32`,
 * `::1/128`), a `to` CIDR that is exactly the address (`192.0.2.10/32` for an own address), or
 * the name `localhost` / `*.localhost` (RFC 6761) when the client asked for that name; for an
 * own listener the rule must also list the port in `ports`. Any other allow rule does not match
 * such a destination (evaluation goes on to the next rule): `0.0.0.0/0`, a rule without `to`,
 * or a name pattern whose DNS answer is loopback (DNS rebinding) opens nothing. Deny rules match
 * as usual.
 *
 * Multicast and limited broadcast (`224.0.0.0/4`, `255.255.255.255`, `ff00::/8`, see
 * `MULTICAST_BROADCAST_CIDRS`) are refused the same way, to every client and every command
 * (UDP ASSOCIATE would put the datagrams on the gateway's LAN): only an allow rule whose `to`
 * CIDR lies inside one of those ranges (`239.255.0.0/16`, `ff02::fb/128`,
 * `255.255.255.255/32`) opens them.
 *
 * Without configured rules the safe defaults apply: everything else is allowed.
 *
 * @module
 */

import { type IpAddress, unmapIpv4 } from "../../net/address.ts";
import {
  type Cidr,
  cidrContains,
  cidrWithin,
  HOST_LOCAL_CIDRS,
  isMulticastOrBroadcast,
  MULTICAST_BROADCAST_CIDRS,
} from "../../net/cidr.ts";
import { isLocalhostName } from "../../resolver/mod.ts";
import type { DestinationPattern, RuleCommand, RuleConfig } from "../config/types.ts";
import { compileDestinationPattern, type PatternSubject } from "./destination_pattern.ts";
import { type HostView, RANGES_ONLY_HOST } from "./host_local.ts";

/** What a rule is evaluated against. */
export interface RuleSubject {
  /** The client's address (IPv4-mapped already unwrapped). */
  readonly client: IpAddress;
  /** True when the client connected over loopback (127.0.0.0/8 or `::1`). */
  readonly clientIsLocal: boolean;
  /** RFC 1929 user, if any. */
  readonly user?: string;
  /** The command. */
  readonly command: RuleCommand;
  /** The requested name, normalised, when the request carried one. */
  readonly name?: string;
  /** The address to be used (literal or resolved). */
  readonly address?: IpAddress;
  /** The destination port. */
  readonly port: number;
}

/** The verdict, with the index of the rule that decided (`-1` for defaults). */
export interface RuleVerdict {
  /** Allowed or not. */
  readonly allow: boolean;
  /** Index in `rules`, or -1 when a default decided. */
  readonly rule: number;
}

type Matcher = (subject: RuleSubject) => boolean;

interface CompiledRule {
  readonly allow: boolean;
  readonly matches: Matcher;
  /** True when the rule names `subject`'s guarded destination (see `Guard`) explicitly. */
  readonly opensHost: (subject: RuleSubject, guard: Exclude<Guard, "none">) => boolean;
}

/**
 * Why a destination needs an allow rule that names it: the gateway host, one of its own
 * listeners, or a multicast / broadcast address.
 */
type Guard = "none" | "host" | "listener" | "multicast";

function isFullLength(cidr: Cidr): boolean {
  return cidr.prefixLength === (cidr.network.family === 4 ? 32 : 128);
}

/** Whether a pattern that matched names a host-local destination explicitly. */
function namesHostExplicitly(pattern: DestinationPattern): boolean {
  switch (pattern.kind) {
    case "cidr":
      // Inside loopback / "this host", or one single address (which then is the destination).
      return isFullLength(pattern.cidr) ||
        HOST_LOCAL_CIDRS.some((range) => cidrWithin(pattern.cidr, range));
    case "name":
      return isLocalhostName(pattern.name);
    case "suffix":
      return isLocalhostName(pattern.suffix);
    case "any":
      // `*` names everything, so nothing explicitly.
      return false;
  }
}

/** Whether a pattern names multicast or broadcast destinations explicitly (a CIDR inside). */
function namesGroupExplicitly(pattern: DestinationPattern): boolean {
  return pattern.kind === "cidr" &&
    MULTICAST_BROADCAST_CIDRS.some((range) => cidrWithin(pattern.cidr, range));
}

function compileRule(rule: RuleConfig): CompiledRule {
  const checks: Matcher[] = [];
  if (rule.from) {
    const from = rule.from;
    checks.push((s) => from.some((cidr) => cidrContains(cidr, s.client)));
  }
  if (rule.users) {
    const users = new Set(rule.users);
    checks.push((s) => s.user !== undefined && users.has(s.user));
  }
  if (rule.commands) {
    const commands = new Set(rule.commands);
    checks.push((s) => commands.has(s.command));
  }
  if (rule.ports) {
    const ports = rule.ports;
    checks.push((s) => ports.some((r) => s.port >= r.from && s.port <= r.to));
  }
  const to = rule.to?.map((pattern) => ({
    matches: compileDestinationPattern(pattern),
    explicit: namesHostExplicitly(pattern),
    explicitGroup: namesGroupExplicitly(pattern),
  }));
  if (to) checks.push((s) => to.some((p) => p.matches(s)));
  const hasPorts = rule.ports !== undefined;
  return {
    allow: rule.action === "allow",
    matches: (s) => checks.every((check) => check(s)),
    opensHost: (s: PatternSubject, guard) =>
      to !== undefined && (guard !== "listener" || hasPorts) &&
      to.some((p) => (guard === "multicast" ? p.explicitGroup : p.explicit) && p.matches(s)),
  };
}

/** Compiled access rules. */
export class AccessRules {
  readonly #rules: readonly CompiledRule[] | null;
  readonly #host: HostView;

  /**
   * Compiles `rules`; `null` selects the safe defaults. `host` says what the gateway host is
   * (default: the loopback and "this host" ranges only).
   */
  constructor(rules: readonly RuleConfig[] | null, host: HostView = RANGES_ONLY_HOST) {
    this.#rules = rules?.map(compileRule) ?? null;
    this.#host = host;
  }

  /**
   * Evaluates one subject: host-local and multicast protection first (see the module doc), then
   * the first
   * matching rule wins; no match denies.
   */
  evaluate(subject: RuleSubject): RuleVerdict {
    const guard = this.#guard(subject);
    if (this.#rules === null) return { allow: guard === "none", rule: -1 };
    for (let i = 0; i < this.#rules.length; i++) {
      const rule = this.#rules[i]!;
      if (!rule.matches(subject)) continue;
      // An allow rule opens the gateway host only by naming it; otherwise it does not match.
      if (rule.allow && guard !== "none" && !rule.opensHost(subject, guard)) {
        continue;
      }
      return { allow: rule.allow, rule: i };
    }
    return { allow: false, rule: -1 };
  }

  #guard(subject: RuleSubject): Guard {
    if (subject.address === undefined) return "none";
    const address = unmapIpv4(subject.address);
    if (subject.command === "connect" && this.#host.isOwnListener(address, subject.port)) {
      return "listener";
    }
    if (isMulticastOrBroadcast(address)) return "multicast";
    if (!subject.clientIsLocal && this.#host.isHostLocal(address)) return "host";
    return "none";
  }
}
