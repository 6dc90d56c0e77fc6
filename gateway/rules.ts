/**
 * Access rules, compiled once at load; first match wins, no match denies.
 *
 * Without configured rules the safe defaults apply: everything is allowed except that a client
 * that is not on the gateway host itself cannot reach the gateway host's loopback (or
 * unspecified) addresses.
 *
 * @module
 */

import type { IpAddress } from "../net/address.ts";
import { cidrContains, HOST_LOCAL_CIDRS } from "../net/cidr.ts";
import type { RuleCommand, RuleConfig } from "./config/types.ts";
import { compileDestinationPattern } from "./destination_pattern.ts";

/** What a rule is evaluated against. */
export interface RuleSubject {
  /** The client's address (IPv4-mapped already unwrapped). */
  readonly client: IpAddress;
  /** True when the client connected from the gateway host itself. */
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

function compileRule(rule: RuleConfig): Matcher {
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
  if (rule.to) {
    const to = rule.to.map(compileDestinationPattern);
    checks.push((s) => to.some((m) => m(s)));
  }
  return (s) => checks.every((check) => check(s));
}

/** Compiled access rules. */
export class AccessRules {
  readonly #rules: readonly { allow: boolean; matches: Matcher }[] | null;

  /** Compiles `rules`; `null` selects the safe defaults. */
  constructor(rules: readonly RuleConfig[] | null) {
    this.#rules = rules?.map((rule) => ({
      allow: rule.action === "allow",
      matches: compileRule(rule),
    })) ?? null;
  }

  /** Evaluates one subject: first match wins; no match denies. */
  evaluate(subject: RuleSubject): RuleVerdict {
    if (this.#rules === null) {
      const toHost = subject.address !== undefined &&
        HOST_LOCAL_CIDRS.some((cidr) => cidrContains(cidr, subject.address!));
      return { allow: !toHost || subject.clientIsLocal, rule: -1 };
    }
    for (let i = 0; i < this.#rules.length; i++) {
      const rule = this.#rules[i]!;
      if (rule.matches(subject)) return { allow: rule.allow, rule: i };
    }
    return { allow: false, rule: -1 };
  }
}
