/**
 * CONNECT: rules -> dial (resolving names here, RFC 3089 §3) -> success reply -> core relay.
 *
 * @module
 */

import type { IpAddress } from "../net/address.ts";
import { normalizeName } from "../resolver/mod.ts";
import { encodeReply } from "../socks5/codec.ts";
import { Reply } from "../socks5/types.ts";
import { relay } from "./relay.ts";
import { replyForError } from "./reply_codes.ts";
import type { RuleSubject } from "./rules.ts";
import { failAndClose, type Handshaken, type SessionServices, writeAll } from "./session.ts";
import type { Dialed } from "./upstream/types.ts";

/** Handles a CONNECT request after the handshake; never throws. */
export async function handleConnect(
  session: Handshaken,
  services: SessionServices,
): Promise<void> {
  const { conn, request, client } = session;
  const target = request.target;
  const name = target.address.family === "name"
    ? normalizeName(target.address.name) ?? undefined
    : undefined;
  const subject = (address?: IpAddress): RuleSubject => ({
    client: client.address,
    clientIsLocal: session.clientIsLocal,
    command: "connect",
    port: target.port,
    ...(session.user !== undefined ? { user: session.user } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(address !== undefined ? { address } : {}),
  });
  const base = {
    client,
    command: "connect",
    target,
    startedAt: session.startedAt,
    ...(session.user !== undefined ? { user: session.user } : {}),
  };

  const route = services.route(target);
  let dialed: Dialed;
  try {
    dialed = await route.dialer.dial({
      target,
      signal: AbortSignal.any([
        AbortSignal.timeout(services.config.timeouts.connectMs),
        services.shutdown,
      ]),
      permit: (address) => services.rules.evaluate(subject(address)).allow,
    });
  } catch (error) {
    const reply = replyForError(error);
    await failAndClose(conn, reply);
    services.record({
      ...base,
      outcome: "rejected",
      reply,
      reason: error instanceof Error ? error.message : String(error),
    });
    return;
  }

  try {
    await writeAll(
      conn,
      encodeReply({
        reply: Reply.Succeeded,
        bound: { address: dialed.local.address, port: dialed.local.port },
      }),
    );
  } catch (error) {
    dialed.conn.close();
    try {
      conn.close();
    } catch { /* gone */ }
    services.record({
      ...base,
      used: dialed.remote,
      outcome: "rejected",
      reply: Reply.Succeeded,
      reason: `client gone before relay: ${error instanceof Error ? error.message : error}`,
    });
    return;
  }

  if (await services.translation.translate(session, dialed)) {
    services.record({
      ...base,
      used: dialed.remote,
      outcome: "relayed",
      reply: Reply.Succeeded,
      reason: "translated",
    });
    return;
  }
  const result = await relay(conn, dialed.conn, {
    idleMs: services.config.timeouts.idleMs,
    signal: services.shutdown,
    clientPrelude: session.reader.takeBuffered(),
  });
  services.record({
    ...base,
    used: dialed.remote,
    outcome: "relayed",
    reply: Reply.Succeeded,
    bytesUp: result.clientToServer,
    bytesDown: result.serverToClient,
    reason: result.end === "error"
      ? `error: ${result.error instanceof Error ? result.error.message : result.error}`
      : result.end,
  });
}
