/**
 * Destination patterns (`*`, CIDR, exact name, `*.suffix`) compiled once into matchers; shared
 * by access rules and routes.
 *
 * @module
 */

import type { IpAddress } from "../../net/address.ts";
import { cidrContains, formatCidr } from "../../net/cidr.ts";
import type { DestinationPattern } from "../config/types.ts";

/** What a destination pattern looks at: the normalised name and/or the address. */
export interface PatternSubject {
  /** The requested name, normalised (lower case, no trailing dot). */
  readonly name?: string | undefined;
  /** The address (a literal, or a resolved one). */
  readonly address?: IpAddress | undefined;
}

/**
 * Compiles a pattern: `*` matches every subject (a name, an address, or neither), CIDRs match
 * addresses, names match names exactly, and `*.suffix` matches names ending in `.suffix` (not
 * `suffix` itself).
 */
export function compileDestinationPattern(
  pattern: DestinationPattern,
): (subject: PatternSubject) => boolean {
  switch (pattern.kind) {
    case "any":
      return () => true;
    case "cidr":
      return (s) => s.address !== undefined && cidrContains(pattern.cidr, s.address);
    case "name":
      return (s) => s.name === pattern.name;
    case "suffix": {
      const tail = "." + pattern.suffix;
      return (s) => s.name !== undefined && s.name.endsWith(tail);
    }
  }
}

/** Formats a pattern as written in the config. */
export function formatDestinationPattern(pattern: DestinationPattern): string {
  switch (pattern.kind) {
    case "any":
      return "*";
    case "cidr":
      return formatCidr(pattern.cidr);
    case "name":
      return pattern.name;
    case "suffix":
      return `*.${pattern.suffix}`;
  }
}
