/**
 * CONNECT: rules -> dial (resolving names here, RFC 3089 §3) -> success reply -> core relay.
 *
 * A CONNECT to one of the client's stand-in addresses (gateway/commands/stand_ins.ts, given by RESOLVE)
 * is a CONNECT to the name it stands for: rules, route and dial see the name, and the success
 * reply's BND is of the client's family. Any other address of the stand-in ranges is REP 4,
 * never dialed.
 *
 * @module
 */

import { endpointFromNetAddr, formatIp } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { Reply } from "../../socks5/types.ts";
import { relay, transferComplete } from "../relay/relay.ts";
import { replyForError } from "../reply_codes.ts";
import {
  denialText,
  recordBaseOf,
  rejectForError,
  rejectRequest,
  relayCounted,
  replySucceeded,
  rulePermit,
  ruleSubjectsOf,
} from "./_request_context.ts";
import { standInBound, type StandInLookup } from "./stand_ins.ts";
import type { Handshaken, SessionServices } from "../session_types.ts";
import type { ExpectedConnection } from "../../translators/types.ts";
import type { ConnectionRecord } from "../observe/connection_log.ts";
import type { Dialed } from "../upstream/types.ts";
import { egressKeyOf, egressPoolFor } from "../upstream/egress.ts";

/** Handles a CONNECT request after the handshake; never throws. */
export async function handleConnect(
  session: Handshaken,
  services: SessionServices,
): Promise<void> {
  const { conn, request, client } = session;
  const standIn: StandInLookup =
    services.standIns?.lookup(request.target, client.address, session.user) ?? { kind: "none" };
  if (standIn.kind === "unknown") {
    await rejectRequest(
      session,
      services,
      recordBaseOf(session, "connect"),
      Reply.HostUnreachable,
      `Cannot connect to ${
        formatIp(standIn.address)
      }: it is in the stand-in ranges but not a stand-in of this client`,
    );
    return;
  }
  // Through a stand-in, the request is for the name: every check below sees the name.
  const target = standIn.kind === "name" ? standIn.target : request.target;
  const subject = ruleSubjectsOf(session, "connect", target);
  const base = { ...recordBaseOf(session, "connect"), target };
  const via = standIn.kind === "name" ? `stand-in ${formatIp(standIn.standIn)}, ` : "";

  // A data connection a translator announced to this client (FTP passive through SOCKS):
  // opened by the translator instead of rules + route + dial (see gateway/commands/translate.ts).
  const expected = services.translation.takeExpected(
    { address: client.address, user: session.user ?? null },
    target,
  );
  if (expected) {
    await connectExpected(session, services, expected, base);
    return;
  }

  const route = services.route(target);
  const egress = egressPoolFor(route.egress, { name: session.user, pools: services.userEgress })
    ?.selection(egressKeyOf(target, { user: session.user, client: client.address }));
  let dialed: Dialed;
  // The last denial (for the REP 2 record) and the subject the dial was allowed under.
  const judged = rulePermit(services, subject);
  const dialStartedAt = performance.now();
  try {
    dialed = await route.dialer.dial({
      target,
      signal: AbortSignal.any([
        AbortSignal.timeout(services.config.timeouts.connectMs),
        services.shutdown,
      ]),
      // After a PROXY header naming no client, `client` is the balancer: hops get no client.
      ...(session.clientUnknown ? {} : {
        client: { source: client, destination: session.local, isLocal: session.clientIsLocal },
      }),
      ...(egress && { egress }),
      permit: judged.permit,
    });
  } catch (error) {
    const connectMs = performance.now() - dialStartedAt;
    const reply = replyForError(error);
    await rejectRequest(
      session,
      services,
      { ...base, connectMs },
      reply,
      via +
        (reply === Reply.NotAllowedByRuleset && judged.denial !== undefined
          ? `Cannot connect: ${denialText(judged.denial, services.config.rules !== null)}`
          : errorText(error)),
    );
    return;
  }
  const connected = {
    ...base,
    connectMs: performance.now() - dialStartedAt,
    route: route.label,
    ...(route.hops && { hops: route.hops }),
  };

  const answered = await replySucceeded(
    session,
    services,
    standIn.kind === "name"
      ? standInBound(session.local.address, client.address, dialed.local.port)
      : { address: dialed.local.address, port: dialed.local.port },
    { record: { ...connected, used: dialed.remote }, release: () => dialed.conn.close() },
  );
  if (!answered) return;
  services.noteSession?.(conn, { subject: judged.allowed ?? subject() });

  const translated = await services.translation.translate(session, dialed, route);
  if (translated) {
    services.record({
      ...connected,
      used: dialed.remote,
      outcome: "relayed",
      reply: Reply.Succeeded,
      bytesUp: translated.bytesUp,
      bytesDown: translated.bytesDown,
      reason: via +
        (translated.end === "error" ? `error: ${errorText(translated.error)}` : translated.end),
      ...(translated.translator !== null && { translator: translated.translator }),
    });
    return;
  }
  const result = await relayCounted(session, services, {
    command: "connect",
    client: conn,
    server: dialed.conn,
    peer: dialed.remote,
  });
  services.record({
    ...connected,
    used: dialed.remote,
    outcome: "relayed",
    reply: Reply.Succeeded,
    bytesUp: result.clientToServer,
    bytesDown: result.serverToClient,
    reason: via + (result.end === "error" ? `error: ${errorText(result.error)}` : result.end),
  });
}

/**
 * Serves a CONNECT that a translator expected: its `open()` replaces the dial (it dials under
 * the rules itself, for the control session's port), then the core relay, until the client,
 * the server, the translator (`expected.signal`: ABOR, end of the control session) or the
 * shutdown ends it. One record, like any CONNECT.
 */
async function connectExpected(
  session: Handshaken,
  services: SessionServices,
  expected: ExpectedConnection,
  base: Omit<ConnectionRecord, "outcome">,
): Promise<void> {
  const { conn } = session;
  const why = "expected by translator";
  let opened: Deno.Conn;
  try {
    opened = await expected.open(
      AbortSignal.any([
        AbortSignal.timeout(services.config.timeouts.connectMs),
        services.shutdown,
        expected.signal,
      ]),
    );
  } catch (error) {
    expected.ended();
    await rejectForError(session, services, base, error, `${why}: `);
    return;
  }
  const local = endpointFromNetAddr(opened.localAddr);
  const used = endpointFromNetAddr(opened.remoteAddr);
  const answered = await replySucceeded(session, services, local, {
    record: { ...base, used },
    context: `${why}: `,
    release: () => opened.close(),
  });
  if (!answered) {
    expected.ended();
    return;
  }
  const result = await relay(conn, opened, {
    idleMs: services.config.timeouts.idleMs,
    signal: AbortSignal.any([services.shutdown, expected.signal]),
    clientPrelude: session.reader.takeBuffered(),
  }).finally(() => expected.ended());
  services.record({
    ...base,
    used,
    outcome: "relayed",
    reply: Reply.Succeeded,
    bytesUp: result.clientToServer,
    bytesDown: result.serverToClient,
    // A complete transfer torn down afterwards (QUIT, the control session's end) is no abort.
    reason: `${why}, ${
      transferComplete(result)
        ? "closed"
        : result.end === "error"
        ? `error: ${errorText(result.error)}`
        : result.end
    }`,
  });
}
