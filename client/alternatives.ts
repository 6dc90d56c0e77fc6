/**
 * Trying alternatives in turn — the one implementation behind the gateway's hop alternatives
 * (`gateway/upstream/hop.ts`), the Socks Lib's gateway list over Deno sockets (`connect.ts`) and
 * over `node:net` sockets (`node_patches.ts`):
 *
 * - the alternatives are tried in the selector's order, each within its own bound;
 * - a SOCKS reply error is the alternative's answer about the destination: the alternative is
 *   marked up and the error is thrown at once (REP kept end to end), no further alternative;
 * - any other failure (refused, unreachable, timeout, silence past the negotiation bound,
 *   malformed answer, refused login) marks the alternative and moves on to the next;
 * - when every alternative failed, {@linkcode AlternativesFailedError} aggregates the failures.
 *
 * A live SOCKS server answers the greeting at once, so {@linkcode NEGOTIATION_TIMEOUT_MS} bounds
 * the method selection and RFC 1929 exchange of every attempt: a gateway that accepts the TCP
 * connection and then stays silent costs 3 s, not the whole connect timeout.
 *
 * @module
 */

import { errorText } from "../net/error_text.ts";
import type { SocksCredentials, SocksHandshakeOptions } from "../socks5/client.ts";
import { SocksReplyError } from "../socks5/errors.ts";

/**
 * How long a gateway may take to answer the greeting and RFC 1929, in milliseconds, before the
 * next alternative is tried.
 */
export const NEGOTIATION_TIMEOUT_MS = 3000;

/**
 * The SOCKS handshake options of one attempt: the attempt's `signal`, the greeting bound
 * ({@linkcode NEGOTIATION_TIMEOUT_MS} unless given) and the alternative's RFC 1929 credentials.
 */
export function attemptHandshakeOptions(
  alternative: { readonly credentials?: SocksCredentials | undefined },
  signal: AbortSignal,
  negotiationTimeoutMs: number = NEGOTIATION_TIMEOUT_MS,
): SocksHandshakeOptions {
  return {
    signal,
    negotiationTimeoutMs,
    ...(alternative.credentials ? { credentials: alternative.credentials } : {}),
  };
}

/** One alternative of one connection attempt: it reports its outcome to the selection state. */
export interface Alternative {
  /** The alternative could not be used (transport or authentication failure). */
  failed(): void;
  /** The alternative answered. */
  succeeded(): void;
}

/** Options of {@linkcode tryAlternatives}. */
export interface TryAlternativesOptions<A extends Alternative> {
  /** Aborts the whole attempt; its reason is thrown as is. @default {undefined} */
  readonly signal?: AbortSignal;
  /**
   * Time allowed for each alternative, in milliseconds (the attempt's signal aborts after it).
   * @default {undefined} (bounded by `signal` alone)
   */
  readonly attemptTimeoutMs?: number;
  /** Prefix of a reply error's message: `Cannot connect to x:80 through 192.0.2.1`. */
  readonly describe: (alternative: A) => string;
  /**
   * Message when every alternative failed; the failures' messages follow in parentheses.
   * @default {"Cannot connect: no gateway answered"}
   */
  readonly failure?: string;
  /**
   * Errors thrown as they are, the alternative left unmarked (a lower hop whose own
   * alternatives all failed). @default {() => false}
   */
  readonly passThrough?: (error: unknown) => boolean;
  /** Called after an alternative failed and was marked. @default {undefined} */
  readonly onFailed?: (alternative: A, error: unknown) => void;
}

/**
 * Wraps a failure to reach an alternative (thrown by the attempt) so that it counts as a failure
 * even when it is a SOCKS reply error, e.g. a lower hop refusing to reach this alternative. The
 * wrapped error is what {@linkcode AlternativesFailedError} reports.
 */
export class AlternativeUnreachableError extends Error {
  /** Wraps `cause`. */
  constructor(cause: unknown) {
    super(errorText(cause), { cause });
    this.name = "AlternativeUnreachableError";
  }
}

/** Every alternative failed: `errors` in the order tried, `lastError` the last of them. */
export class AlternativesFailedError extends AggregateError {
  /** The last failure (`undefined` when there was no alternative to try). */
  readonly lastError: unknown;

  /** Creates the error from the failures, in the order tried. */
  constructor(errors: readonly unknown[], message: string) {
    super(errors, message, errors.length > 0 ? { cause: errors.at(-1) } : undefined);
    this.name = "AlternativesFailedError";
    this.lastError = errors.at(-1);
  }
}

/**
 * Runs `attempt` on each alternative in turn until one succeeds. `attempt` owns what it opens:
 * it must close its socket before it throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tryAlternatives } from "./alternatives.ts";
 *
 * const marks: string[] = [];
 * const alternative = (name: string) => ({
 *   name,
 *   failed: () => marks.push(`${name} down`),
 *   succeeded: () => marks.push(`${name} up`),
 * });
 * const result = await tryAlternatives(
 *   [alternative("a"), alternative("b")],
 *   (alt) => alt.name === "a" ? Promise.reject(new Error("refused")) : Promise.resolve(alt.name),
 *   { describe: (alt) => `Cannot connect through ${alt.name}` },
 * );
 * assert.equal(result, "b");
 * assert.deepEqual(marks, ["a down", "b up"]);
 * ```
 *
 * @throws {SocksReplyError} the answer of the alternative that replied about the destination.
 * @throws {AlternativesFailedError} when no alternative could be used.
 */
export async function tryAlternatives<A extends Alternative, T>(
  alternatives: readonly A[],
  attempt: (alternative: A, signal: AbortSignal) => Promise<T>,
  options: TryAlternativesOptions<A>,
): Promise<T> {
  const { signal } = options;
  const errors: unknown[] = [];
  for (const alternative of alternatives) {
    signal?.throwIfAborted();
    const bounds = [
      ...(signal ? [signal] : []),
      ...(options.attemptTimeoutMs !== undefined
        ? [AbortSignal.timeout(options.attemptTimeoutMs)]
        : []),
    ];
    const attemptSignal = bounds.length > 0
      ? AbortSignal.any(bounds)
      : new AbortController().signal;
    try {
      const result = await attempt(alternative, attemptSignal);
      alternative.succeeded();
      return result;
    } catch (error) {
      if (options.passThrough?.(error)) throw error;
      if (error instanceof SocksReplyError) {
        alternative.succeeded(); // it answered: the REP is about the destination
        throw new SocksReplyError(
          error.reply,
          `${options.describe(alternative)}: ${error.message}`,
          { cause: error },
        );
      }
      if (signal?.aborted) throw signal.reason;
      const failure = error instanceof AlternativeUnreachableError ? error.cause : error;
      alternative.failed();
      options.onFailed?.(alternative, failure);
      errors.push(failure);
    }
  }
  const reasons = errors.map(errorText).join("; ");
  const failure = options.failure ?? "Cannot connect: no gateway answered";
  throw new AlternativesFailedError(
    errors,
    errors.length > 0 ? `${failure} (${reasons})` : `${failure} (no gateway is configured)`,
  );
}
