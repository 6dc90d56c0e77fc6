/**
 * Opens the outbound connection of an HTTP proxy request through the same core as a SOCKS
 * CONNECT: the route (direct or a chain), the rules on every address tried (the host-local
 * protections included), name resolution with Happy Eyeballs in the dialer, the connect timeout.
 * Failures become their HTTP status: 403 (a rule), 504 (the timeout), 502 (anything else).
 *
 * @module
 */

import type { IpEndpoint } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { Command, Reply, type SocksTarget } from "../../socks5/types.ts";
import type { RuleSubject } from "../access/rules.ts";
import { egressKeyOf, egressPoolFor } from "../upstream/egress.ts";
import { denialText, rulePermit, ruleSubjectsOf } from "../commands/_request_context.ts";
import { replyForError } from "../reply_codes.ts";
import type { SessionServices } from "../session_types.ts";
import type { Dialed } from "../upstream/types.ts";

/** Who asks: the client as rules and hops see it. */
export interface HttpPrincipal {
  /** The client's address and port. */
  readonly client: IpEndpoint;
  /** The gateway address the client reached. */
  readonly local: IpEndpoint;
  /** True when the client is on the gateway host. */
  readonly clientIsLocal: boolean;
  /** The authenticated user, if any. */
  readonly user?: string;
}

/** The outcome of {@linkcode dialTarget}. */
export type HttpDial =
  | {
    readonly ok: true;
    readonly dialed: Dialed;
    readonly connectMs: number;
    /** The rule subject the connection was allowed under. */
    readonly subject: RuleSubject;
  }
  | {
    readonly ok: false;
    readonly status: 403 | 502 | 504;
    readonly reason: string;
    readonly connectMs: number;
  };

/** What {@linkcode dialTarget} opens: a destination on behalf of a principal. */
export interface HttpDialRequest extends HttpPrincipal {
  /** The destination (a name, or an address). */
  readonly target: SocksTarget;
}

/** Dials `request.target` for the client it names; never throws. */
export async function dialTarget(
  services: SessionServices,
  request: HttpDialRequest,
): Promise<HttpDial> {
  const { target, ...who } = request;
  const subject = ruleSubjectsOf(
    { ...who, request: { command: Command.Connect, target } },
    "connect",
    target,
  );
  // The last denial and the subject the dial was allowed under.
  const judged = rulePermit(services, subject);
  const timeout = AbortSignal.timeout(services.config.timeouts.connectMs);
  const route = services.route(target);
  // The same egress choice as a SOCKS CONNECT (per user, else the route's pool).
  const egress = egressPoolFor(route.egress, { name: who.user, pools: services.userEgress })
    ?.selection(egressKeyOf(target, { user: who.user, client: who.client.address }));
  const startedAt = performance.now();
  try {
    const dialed = await route.dialer.dial({
      target,
      signal: AbortSignal.any([timeout, services.shutdown]),
      client: { source: who.client, destination: who.local, isLocal: who.clientIsLocal },
      ...(egress && { egress }),
      permit: judged.permit,
    });
    return {
      ok: true,
      dialed,
      connectMs: performance.now() - startedAt,
      subject: judged.allowed ?? subject(),
    };
  } catch (error) {
    const connectMs = performance.now() - startedAt;
    if (replyForError(error) === Reply.NotAllowedByRuleset && judged.denial !== undefined) {
      return {
        ok: false,
        status: 403,
        reason: `Cannot connect: ${denialText(judged.denial, services.config.rules !== null)}`,
        connectMs,
      };
    }
    if (timeout.aborted) {
      return {
        ok: false,
        status: 504,
        reason: `Cannot connect: no connection within ${services.config.timeouts.connectMs} ms`,
        connectMs,
      };
    }
    return { ok: false, status: 502, reason: errorText(error), connectMs };
  }
}
