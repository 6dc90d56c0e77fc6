/**
 * The one call the gateway makes for a CONNECT that may need a translator.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { errorText } from "../net/error_text.ts";
import { createDataChannelBroker } from "./broker.ts";
import { runLineSession } from "./line_session.ts";
import type { BrokerDeps, ConfiguredTranslator, TranslatorContext } from "./types.ts";

const logger = getLogger(["dualgate", "translators"]);

/** Options for {@linkcode runTranslation}. */
export interface RunTranslationOptions {
  /** The gateway's dial, relay, listen and expectation table. */
  readonly deps: BrokerDeps;
  /** Aborting ends the session (gateway stop or drain deadline). */
  readonly signal: AbortSignal;
  /** Most greeting bytes offered to `sniff`. @default 512 */
  readonly sniffBytes?: number;
  /** How long to wait for a server greeting when a translator asks to sniff. @default 3000 */
  readonly sniffTimeoutMs?: number;
}

/**
 * Runs the first translator that claims the session (config order), or returns `false` at
 * once, having read nothing, when none is interested: the gateway then relays as usual. When
 * it returns `true` the session is over and both connections are closed. Never rejects.
 *
 * @example
 * ```ts ignore
 * // In the gateway, after a successful CONNECT and its SOCKS reply:
 * const handled = await runTranslation(translators, ctx, clientConn, serverConn, {
 *   deps: { dial, relay, expectations },
 *   signal,
 * });
 * if (!handled) await relay(clientConn, serverConn, { label: "connect", signal });
 * ```
 */
export async function runTranslation(
  configured: readonly ConfiguredTranslator[],
  ctx: TranslatorContext,
  client: Deno.Conn,
  server: Deno.Conn,
  options: RunTranslationOptions,
): Promise<boolean> {
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
  if (firstInterested < 0) return false;

  let pending: { buffer: Uint8Array; read: Promise<number | null> } | undefined;
  let greeting: Uint8Array | null = null;
  let chosen: ConfiguredTranslator | undefined;
  for (let i = firstInterested; i < translators.length && !chosen; i++) {
    const translator = translators[i]!;
    if (matches[i] === "claim") chosen = applicable[i];
    if (matches[i] !== "sniff" || !translator.sniff) continue;
    if (!pending) {
      const buffer = new Uint8Array(options.sniffBytes ?? 512);
      const read = server.read(buffer);
      read.catch(() => {}); // observed later by the line loop
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
    if (!pending) return false;
    // Bytes were read while sniffing: relay the rest here, byte for byte.
    await runLineSession({}, client, server, { signal: options.signal, serverPending: pending });
    return true;
  }
  let session;
  try {
    session = chosen.translator.startSession(ctx, createDataChannelBroker(ctx, options.deps));
  } catch (error) {
    logger.warn("Cannot start translator session: {error}", {
      id: ctx.id,
      type: chosen.translator.type,
      error: errorText(error),
    });
    client.close();
    server.close();
    return true;
  }
  const result = await runLineSession(session, client, server, {
    signal: options.signal,
    id: ctx.id,
    maxLineBytes: chosen.maxLineBytes,
    ...(pending ? { serverPending: pending } : {}),
  });
  logger.debug("Translator session ended: {end}", {
    id: ctx.id,
    type: chosen.translator.type,
    end: result.end,
  });
  return true;
}

async function waitForGreeting(
  pending: { buffer: Uint8Array; read: Promise<number | null> },
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
