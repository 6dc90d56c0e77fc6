/**
 * A config-load check: the first hop of a route must not be this gateway's own listener (a
 * chain through itself would take the request again and loop). Only IP literals can be judged
 * here; a hop given by name, or by another address of the host, is refused when dialed.
 *
 * @module
 */

import { isUnspecified, parseIp, sameIp, unmapIpv4 } from "../../net/address.ts";
import { isHostLocal } from "../../net/cidr.ts";
import type { ListenConfig, RouteConfig } from "./types.ts";

/** A problem found, with the path of the offending hop. */
export interface SelfHopIssue {
  /** `["routes", i, "chain", 0]`. */
  readonly path: (string | number)[];
  /** What is wrong. */
  readonly message: string;
}

/**
 * Lists every route whose first hop has an alternative that is one of `listen`: the same port,
 * and the same address, or a wildcard listener and a loopback / "this host" hop address, or an
 * unspecified hop address.
 */
export function selfHopIssues(
  listen: readonly ListenConfig[],
  routes: readonly RouteConfig[],
): SelfHopIssue[] {
  const issues: SelfHopIssue[] = [];
  routes.forEach((route, index) => {
    // Later hops are dialed by the hop before them: their loopback is not ours. (A route in
    // error reaches here untransformed: an egress-only one has no chain yet.)
    for (const alternative of route.chain?.[0]?.alternatives ?? []) {
      const parsed = parseIp(alternative.host);
      if (!parsed) continue;
      const address = unmapIpv4(parsed);
      const at = listen.findIndex(({ endpoint }) => {
        const own = unmapIpv4(endpoint.address);
        return endpoint.port === alternative.port &&
          (sameIp(own, address) || isUnspecified(address) ||
            (isUnspecified(own) && isHostLocal(address)));
      });
      if (at < 0) continue;
      issues.push({
        path: ["routes", index, "chain", 0],
        message: `${alternative.label} is this gateway's own listener (listen[${at}]): ` +
          "a chain through itself would loop",
      });
    }
  });
  return issues;
}
