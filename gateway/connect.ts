/**
 * CONNECT: rules -> dial (resolving names here, RFC 3089 §3) -> success reply -> core relay.
 *
 * @module
 */

import { endpointFromNetAddr } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";
import { Reply } from "../socks5/types.ts";
import { relay, transferComplete } from "./relay.ts";
import { replyForError } from "./reply_codes.ts";
import {
  denialText,
  recordBaseOf,
  rejectRequest,
  replySucceeded,
  ruleSubjectsOf,
} from "./_request_context.ts";
import type { RuleVerdict } from "./rules.ts";
import type { ExpectedOpen, Handshaken, SessionServices } from "./session_types.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import type { Dialed } from "./upstream/types.ts";

/** Handles a CONNECT request after the handshake; never throws. */
export async function handleConnect(
  session: Handshaken,
  services: SessionServices,
): Promise<void> {
  const { conn, request, client } = session;
  const target = request.target;
  const subject = ruleSubjectsOf(session, "connect");
  const base = recordBaseOf(session, "connect");

  // A data connection a translator announced to this client (FTP passive through SOCKS):
  // opened by the translator instead of rules + route + dial (see gateway/translate.ts).
  const expected = services.translation.takeExpected(client.address, target);
  if (expected) {
    await connectExpected(session, services, expected, base);
    return;
  }

  const route = services.route(target);
  let dialed: Dialed;
  // The last denying verdict, so that a REP 2 record says which rule (or default) refused.
  let denial: RuleVerdict | undefined;
  const dialStartedAt = performance.now();
  try {
    dialed = await route.dialer.dial({
      target,
      signal: AbortSignal.any([
        AbortSignal.timeout(services.config.timeouts.connectMs),
        services.shutdown,
      ]),
      permit: (address) => {
        const verdict = services.rules.evaluate(subject(address));
        if (!verdict.allow) denial = verdict;
        return verdict.allow;
      },
    });
  } catch (error) {
    const connectMs = performance.now() - dialStartedAt;
    const reply = replyForError(error);
    await rejectRequest(
      session,
      services,
      { ...base, connectMs },
      reply,
      reply === Reply.NotAllowedByRuleset && denial !== undefined
        ? `Cannot connect: ${denialText(denial, services.config.rules !== null)}`
        : errorText(error),
    );
    return;
  }
  const connected = { ...base, connectMs: performance.now() - dialStartedAt };

  const answered = await replySucceeded(
    session,
    services,
    { address: dialed.local.address, port: dialed.local.port },
    { record: { ...connected, used: dialed.remote }, release: () => dialed.conn.close() },
  );
  if (!answered) return;

  if (await services.translation.translate(session, dialed)) {
    services.record({
      ...connected,
      used: dialed.remote,
      outcome: "relayed",
      reply: Reply.Succeeded,
      reason: "translated",
    });
    return;
  }
  services.metrics?.activeRelays.inc(["connect"]);
  const result = await relay(conn, dialed.conn, {
    idleMs: services.config.timeouts.idleMs,
    signal: services.shutdown,
    clientPrelude: session.reader.takeBuffered(),
  }).finally(() => services.metrics?.activeRelays.dec(["connect"]));
  services.record({
    ...connected,
    used: dialed.remote,
    outcome: "relayed",
    reply: Reply.Succeeded,
    bytesUp: result.clientToServer,
    bytesDown: result.serverToClient,
    reason: result.end === "error" ? `error: ${errorText(result.error)}` : result.end,
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
  expected: ExpectedOpen,
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
    await rejectRequest(
      session,
      services,
      base,
      replyForError(error),
      `${why}: ${errorText(error)}`,
    );
    return;
  }
  const local = endpointFromNetAddr(opened.localAddr);
  const used = endpointFromNetAddr(opened.remoteAddr);
  const answered = await replySucceeded(session, services, local, {
    record: { ...base, used },
    context: `${why}: `,
    release: () => opened.close(),
  });
  if (!answered) return;
  const result = await relay(conn, opened, {
    idleMs: services.config.timeouts.idleMs,
    signal: AbortSignal.any([services.shutdown, expected.signal]),
    clientPrelude: session.reader.takeBuffered(),
  });
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
