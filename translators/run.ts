/**
 * The one call the gateway makes for a CONNECT that may need a translator.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { errorText } from "../net/error_text.ts";
import { createDataChannelBroker } from "./broker.ts";
import { runLineSession } from "./line_session.ts";
import { HandBackStream, type PendingRead } from "./hand_back.ts";
import type {
  BrokerDeps,
  ConfiguredTranslator,
  DataChannelBroker,
  RelayCounts,
  SessionRelay,
  TranslatorContext,
} from "./types.ts";

const logger = getLogger(["dualgate", "translators"]);

/** Options for {@linkcode runTranslation}. */
export interface RunTranslationOptions {
  /** The gateway's dial, relay, listen and expectation table. */
  readonly deps: BrokerDeps;
  /**
   * The gateway's core relay, for the rest of a session handed back (`io.detach()`, a
   * `"passthrough"` verdict) or sniffed and claimed by no translator.
   */
  readonly relay: SessionRelay;
  /** The relay idle timeout, applied to the translated part of the session too. */
  readonly idleMs: number;
  /** Aborting ends the session (gateway stop or drain deadline). */
  readonly signal: AbortSignal;
  /** Most greeting bytes offered to `sniff`. @default 512 */
  readonly sniffBytes?: number;
  /** How long to wait for a server greeting when a translator asks to sniff. @default 3000 */
  readonly sniffTimeoutMs?: number;
}

/** How a session that {@linkcode runTranslation} took ended; both connections are closed. */
export interface TranslationResult {
  /**
   * The type of the translator that ran the session (`"ftp"`), or `null` when translators
   * sniffed the server's greeting and none claimed it (then relayed as it is).
   */
  readonly translator: string | null;
  /** Bytes from the client, translated and relayed. */
  readonly bytesUp: number;
  /** Bytes from the server, translated and relayed. */
  readonly bytesDown: number;
  /** True when the translator handed the rest of the session back to the core relay. */
  readonly handedBack: boolean;
  /**
   * How it ended: the line loop's end (`"eof"`, `"closed"`, `"idle"`, `"aborted"`,
   * `"line-too-long"`, `"error"`), or after a hand-back the core relay's.
   */
  readonly end: string;
  /** The error, when `end` is `"error"`. */
  readonly error?: unknown;
}

/**
 * Runs the first translator that claims the session (config order; only translators whose
 * `ports` include the destination port are asked), or resolves `null` at once, having read
 * nothing, when none is interested: the gateway then relays as usual. Otherwise the session
 * is over when it resolves, both connections closed. Never rejects.
 *
 * @example
 * ```ts ignore
 * // In the gateway, after a successful CONNECT and its SOCKS reply:
 * const result = await runTranslation(translators, ctx, clientConn, serverConn, {
 *   deps: { dial, check, refused, relay, expectations },
 *   relay: (client, server, { signal }) => relay(client, server, { idleMs, signal }),
 *   idleMs,
 *   signal,
 * });
 * if (!result) await relay(clientConn, serverConn, { idleMs, signal });
 * ```
 */
export async function runTranslation(
  configured: readonly ConfiguredTranslator[],
  ctx: TranslatorContext,
  client: Deno.Conn,
  server: Deno.Conn,
  options: RunTranslationOptions,
): Promise<TranslationResult | null> {
  const applicable = configured.filter((entry) => entry.ports.has(ctx.target.port));
  const translators = applicable.map((entry) => entry.translator);
  const matches = translators.map((translator) => {
    try {
      return translator.match(ctx);
    } catch (error) {
      logger.warn("Translator match failed: {error}", {
        type: translator.type,
        error: errorText(error),
      });
      return "decline" as const;
    }
  });
  const firstInterested = matches.findIndex((match) => match !== "decline");
  if (firstInterested < 0) return null;

  let pending: PendingRead | undefined;
  let greeting: Uint8Array | null = null;
  let chosen: ConfiguredTranslator | undefined;
  for (let i = firstInterested; i < translators.length && !chosen; i++) {
    const translator = translators[i]!;
    if (matches[i] === "claim") chosen = applicable[i];
    if (matches[i] !== "sniff" || !translator.sniff) continue;
    if (!pending) {
      const buffer = new Uint8Array(options.sniffBytes ?? 512);
      const read = server.read(buffer);
      read.catch(() => {}); // observed later by the line loop or the relay
      pending = { buffer, read };
      greeting = await waitForGreeting(pending, options.sniffTimeoutMs ?? 3000, options.signal);
    }
    try {
      if (greeting && greeting.length > 0 && translator.sniff(greeting)) chosen = applicable[i];
    } catch (error) {
      logger.warn("Translator sniff failed: {error}", {
        type: translator.type,
        error: errorText(error),
      });
    }
  }

  if (!chosen) {
    if (!pending) return null;
    // Bytes were read while sniffing: the core relay delivers them first.
    const relayed = await options.relay(client, new HandBackStream(server, [], pending), {
      signal: options.signal,
    });
    return { ...fromRelay(relayed, 0, 0), translator: null, handedBack: false };
  }
  const type = chosen.translator.type;
  const busy = { count: 0 };
  let session;
  try {
    session = chosen.translator.startSession(
      ctx,
      trackBusy(createDataChannelBroker(ctx, options.deps), busy),
    );
  } catch (error) {
    logger.warn("Cannot start translator session: {error}", {
      id: ctx.id,
      type,
      error: errorText(error),
    });
    client.close();
    server.close();
    return { translator: type, bytesUp: 0, bytesDown: 0, handedBack: false, end: "error", error };
  }
  const lines = await runLineSession(session, client, server, {
    signal: options.signal,
    id: ctx.id,
    maxLineBytes: chosen.maxLineBytes,
    idleMs: options.idleMs,
    busy: () => busy.count > 0,
    ...(pending ? { serverPending: pending } : {}),
  });
  logger.debug("Translator session ended: {end}", { id: ctx.id, type, end: lines.end });
  if (!lines.handBack) {
    return {
      translator: type,
      bytesUp: lines.bytesUp,
      bytesDown: lines.bytesDown,
      handedBack: false,
      end: lines.end,
      ...(lines.error === undefined ? {} : { error: lines.error }),
    };
  }
  const relayed = await options.relay(lines.handBack.client, lines.handBack.server, {
    signal: options.signal,
  });
  return {
    ...fromRelay(relayed, lines.bytesUp, lines.bytesDown),
    translator: type,
    handedBack: true,
  };
}

function fromRelay(relayed: RelayCounts, up: number, down: number) {
  return {
    bytesUp: up + relayed.clientToServer,
    bytesDown: down + relayed.serverToClient,
    end: relayed.end,
    ...(relayed.error === undefined ? {} : { error: relayed.error }),
  };
}

/**
 * The session's broker, counting its data channels in flight (relays, expected CONNECTs
 * opened and not yet ended): while any is, the control session is not idle.
 */
function trackBusy(broker: DataChannelBroker, busy: { count: number }): DataChannelBroker {
  return {
    listen: (options) => broker.listen(options),
    connect: (endpoint, options) => broker.connect(endpoint, options),
    permits: (endpoint, options) => broker.permits(endpoint, options),
    refuse: (endpoint, options) => broker.refuse(endpoint, options),
    async relay(a, b, options) {
      busy.count++;
      try {
        return await broker.relay(a, b, options);
      } finally {
        busy.count--;
      }
    },
    expect(options) {
      let opened = false;
      return broker.expect({
        ...options,
        open: (signal) => {
          if (!opened) busy.count++;
          opened = true;
          return options.open(signal);
        },
        ended: () => {
          if (opened) busy.count--;
          opened = false;
          options.ended?.();
        },
      });
    },
  };
}

async function waitForGreeting(
  pending: PendingRead,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Uint8Array | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    const n = await Promise.race([
      pending.read,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
        onAbort = () => resolve(null);
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    return n === null ? null : pending.buffer.subarray(0, n);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}
