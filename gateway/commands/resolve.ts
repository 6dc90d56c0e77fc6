/**
 * Tor's RESOLVE and RESOLVE_PTR (`socks-extensions.txt`), which torsocks sends to resolve names
 * through the proxy: one request, one reply, then the connection closes.
 *
 * - RESOLVE (0xF0): DST.ADDR is a name (or a literal); the reply carries in BND.ADDR the address
 *   CONNECT would try first: the resolver's answer ordered by `resolver.prefer`, the first one
 *   the rules allow. DST.PORT is ignored (torsocks sends whatever its buffer held). With
 *   `resolver.stand_ins: cross-family` (the default) the answer is of the family the client
 *   speaks: the first allowed address of that family, or, when the name has allowed addresses
 *   of the other family only, a stand-in address of the client's family that CONNECT maps back
 *   to the name (gateway/commands/stand_ins.ts). torsocks parses IPv4 answers only.
 * - RESOLVE_PTR (0xF1): DST.ADDR is an address; the reply carries its name as ATYP 3 (static
 *   hosts, the hosts file, then DNS PTR); REP 4 when none is known. A stand-in's name is the
 *   name it stands for, for the client it was given to; any other address of the stand-in
 *   ranges is REP 4.
 *
 * Both are the rule command `resolve`, checked like CONNECT's: each address (and the name) is
 * evaluated, and an answer the rules would not let CONNECT use is refused with REP 2, so a
 * RESOLVE never reveals what the rules hide (the host-local protection included). A name on a
 * chained route is refused with REP 7, as BIND and UDP are: only the chain's last gateway may
 * resolve it.
 *
 * @module
 */

import { type IpAddress, unmapIpv4 } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { candidateAddresses, literalAddress } from "../../resolver/mod.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Command, Reply, type SocksTarget } from "../../socks5/types.ts";
import {
  recordBaseOf,
  rejectForError,
  replySucceeded,
  ruleSubjectsOf,
  targetName,
} from "./_request_context.ts";
import { lingerAndClose } from "../replies.ts";
import { clientFamily } from "./stand_ins.ts";
import type { Handshaken, SessionServices } from "../session_types.ts";

/** Handles a RESOLVE or RESOLVE_PTR request after the handshake; never throws. */
export async function handleResolve(
  session: Handshaken,
  services: SessionServices,
): Promise<void> {
  const base = recordBaseOf(session, "resolve");
  const signal = AbortSignal.any([
    AbortSignal.timeout(services.config.timeouts.connectMs),
    services.shutdown,
  ]);
  let answer: Answer;
  try {
    answer = session.request.command === Command.ResolvePtr
      ? await resolvePtr(session, services, signal)
      : await resolveName(session, services, signal);
  } catch (error) {
    await rejectForError(session, services, base, error);
    return;
  }
  if (!await replySucceeded(session, services, answer, { record: base, before: "the answer" })) {
    return;
  }
  // torsocks may have sent bytes beyond the request; a plain close would reset the reply.
  await lingerAndClose(session.conn);
  services.record({
    ...base,
    ...(answer.address.family !== "name" ? { used: { address: answer.address, port: 0 } } : {}),
    outcome: "resolved",
    reply: Reply.Succeeded,
    reason: answer.address.family === "name"
      ? `name ${answer.address.name}`
      : answer.standIn
      ? `stand-in: no usable IPv${answer.address.family} address`
      : "resolved",
  });
}

/** An answer, and whether its address is a stand-in. */
interface Answer extends SocksTarget {
  readonly standIn?: true;
}

function denied(what: string): SocksReplyError {
  return new SocksReplyError(Reply.NotAllowedByRuleset, `Cannot resolve ${what}: denied by rules`);
}

/**
 * RESOLVE: the first address, in `prefer` order, that the rules let CONNECT use; with stand-ins,
 * the first of the client's family, else a stand-in of the client's family.
 */
async function resolveName(
  session: Handshaken,
  services: SessionServices,
  signal: AbortSignal,
): Promise<Answer> {
  const target = session.request.target;
  const isName = target.address.family === "name" && literalAddress(target.address.name) === null;
  if (isName && services.route(target).chained) {
    throw new SocksReplyError(
      Reply.CommandNotSupported,
      "Cannot resolve: the name is on a chained route (only its last gateway resolves it)",
    );
  }
  const subject = ruleSubjectsOf(session, "resolve");
  const { addresses } = await candidateAddresses(target, {
    resolver: services.resolver,
    prefer: services.config.resolver.prefer,
    signal,
  });
  const allowed = addresses.filter((address) => services.rules.evaluate(subject(address)).allow);
  if (allowed.length === 0) {
    throw denied(target.address.family === "name" ? `"${target.address.name}"` : "the address");
  }
  const name = isName ? targetName(target) : undefined;
  if (services.standIns === null || name === undefined) return { address: allowed[0]!, port: 0 };
  const family = clientFamily(session.client.address);
  const own = allowed.find((address) => unmapIpv4(address).family === family);
  if (own !== undefined) return { address: own, port: 0 };
  let standIn: IpAddress;
  try {
    standIn = services.standIns.assign(name, family, session.client.address, session.user);
  } catch (error) {
    throw new SocksReplyError(
      Reply.GeneralFailure,
      `Cannot assign a stand-in: ${errorText(error)}`,
    );
  }
  return { address: standIn, port: 0, standIn: true };
}

/** RESOLVE_PTR: the name of an address the rules let CONNECT use, if the name is allowed too. */
async function resolvePtr(
  session: Handshaken,
  services: SessionServices,
  signal: AbortSignal,
): Promise<SocksTarget> {
  const target = session.request.target;
  let address: IpAddress | null = target.address.family === "name"
    ? literalAddress(target.address.name)
    : target.address;
  if (address === null) {
    throw new SocksReplyError(
      Reply.AddressTypeNotSupported,
      "Cannot resolve a name to a name: RESOLVE_PTR takes an address",
    );
  }
  address = unmapIpv4(address);
  if (services.standIns?.covers(address)) return standInName(session, services, address);
  const ptrSubject = ruleSubjectsOf(session, "resolve", { address, port: target.port });
  if (!services.rules.evaluate(ptrSubject(address)).allow) throw denied("the address");
  const { name } = await services.resolver.reverse(address, { signal });
  // The name must not reveal what a name rule hides.
  const named = ruleSubjectsOf(session, "resolve", {
    address: { family: "name", name },
    port: target.port,
  });
  if (!services.rules.evaluate(named(address)).allow) throw denied("the address");
  return { address: { family: "name", name }, port: 0 };
}

/** RESOLVE_PTR of a stand-in: its name, for the client it was given to; never DNS. */
function standInName(
  session: Handshaken,
  services: SessionServices,
  address: IpAddress,
): SocksTarget {
  const name = services.standIns!.nameOf(address, session.client.address, session.user);
  if (name === undefined) {
    throw new SocksReplyError(
      Reply.HostUnreachable,
      "Cannot resolve the address: it is in the stand-in ranges but not a stand-in of this client",
    );
  }
  const target = { address: { family: "name" as const, name }, port: session.request.target.port };
  if (!services.rules.evaluate(ruleSubjectsOf(session, "resolve", target)()).allow) {
    throw denied("the address");
  }
  return { address: target.address, port: 0 };
}
