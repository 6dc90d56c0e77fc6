/**
 * The gateway's side of protocol translators (`translators/`): which CONNECTs a translator
 * handles, the expectation table that routes a SOCKS client's data connection to the right
 * server port, and the gateway pieces lent to translators for their data channels.
 *
 * How policy applies to data channels (FTP's, for instance):
 *
 * - **Control connection**: an ordinary CONNECT: rules, route, dial, limits, one record line.
 *   Translation happens on direct routes only: behind a chain the last gateway is the one that
 *   reaches the server, so it is the one to translate; here the CONNECT is relayed untouched.
 * - **Expected CONNECT** (SOCKS-mode passive data: the client CONNECTs to the original
 *   destination and the port the translator advertised). `connect.ts` asks
 *   {@linkcode TranslationService.takeExpected} before the rules and the route: only the same
 *   client address *and user* (the control session's principal; without authentication, all
 *   clients of one source address are one principal), to a target the translator announced,
 *   within its TTL, once. Such a connection is *related* to a control session the rules allowed, so the requested port is
 *   not matched against the rules (it is one the translator picked, like conntrack's RELATED).
 *   The translator then opens the server side through {@linkcode BrokerDeps.dial} below.
 * - **Data dials** (`BrokerDeps.dial`, and `BrokerDeps.check` that translators ask before they
 *   announce a data channel): judged by the data connection's *own* address and port, never the
 *   control connection's port, so a rule that denies a port of the server holds for a passive
 *   reply naming it. Toward the server, the rules are evaluated as a CONNECT from the same
 *   client and user to the server's address and name with the data port (an address other than
 *   the server's, an IRC DCC peer's, is judged without the name); toward the client
 *   (active mode), the address must be the client's own and the rules are evaluated as a BIND
 *   (RFC 1928 names FTP as BIND's reason) for the server's address with the client's data
 *   port. A denial is REP 2 for an expected CONNECT and a 425 for the FTP client; a refusal
 *   before any dial (`BrokerDeps.refused`) is logged and leaves a `rejected` record.
 * - **Data relays** use the gateway's core relay with its idle timeout and the shutdown signal,
 *   and write one connection record each (command = the translator's label, `ftp-data`).
 *   Data relays started by a translator itself (its own listeners) are not counted in
 *   `limits.max_connections`; expected CONNECTs are, being SOCKS connections.
 *
 * Errors in a translator end that session (logged), never the gateway.
 *
 * @module
 */

import {
  formatEndpoint,
  type IpAddress,
  type IpEndpoint,
  peerEndpoint,
  sameIp,
  toHostname,
} from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { closeQuietly } from "../../net/io.ts";
import { connectFrom } from "../../net/node_tcp.ts";
import { normalizeName } from "../../resolver/mod.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply } from "../../socks5/types.ts";
import { ExpectationRegistry } from "../../translators/expectations.ts";
import { createTranslators } from "../../translators/registry.ts";
import { runTranslation } from "../../translators/run.ts";
import type {
  BrokerDeps,
  ConfiguredTranslator,
  DataRelayOptions,
  Side,
  TranslatorContext,
} from "../../translators/types.ts";
import type { Config } from "../config/types.ts";
import type { ConnectionRecord } from "../observe/connection_log.ts";
import { logger } from "../observe/log.ts";
import { relay, transferComplete } from "../relay/relay.ts";
import type { AccessRules, RuleSubject } from "../access/rules.ts";
import type { Handshaken, TranslationService } from "../session_types.ts";

/** The gateway pieces {@linkcode createTranslationService} builds data channels from. */
export interface TranslationServiceOptions {
  /** The compiled access rules, applied to data dials (see the module doc). */
  readonly rules: AccessRules;
  /** Aborted when the gateway stops draining: translated sessions and data relays close. */
  readonly shutdown: AbortSignal;
  /** Receives one record per data relay. */
  readonly record: (record: ConnectionRecord) => void;
  /** Opens data listeners (tests). @default Deno.listen */
  readonly listen?: BrokerDeps["listen"];
  /**
   * Opens data connections (tests), from `source` when given. @default Deno.connect, or
   * connectFrom (node:net) with a source
   */
  readonly connect?: (
    endpoint: IpEndpoint,
    signal: AbortSignal,
    source?: IpAddress,
  ) => Promise<Deno.Conn>;
}

const log = logger("translate");
let nextId = 0;

/**
 * Builds the translation service from the config and the gateway's rules, relay and
 * shutdown signal. Without `translators:` it is inert (nothing expected, nothing translated).
 *
 * @example
 * ```ts ignore
 * const translation = createTranslationService(config, {
 *   rules, shutdown, record,
 * });
 * // In CONNECT, before rules and dial:
 * const expected = translation.takeExpected({ address: client.address, user }, target);
 * // After the success reply:
 * if ((await translation.translate(session, dialed, route)) === null) await relay(...);
 * ```
 *
 * @throws {TypeError} for a `translators:` entry no plugin provides (the config schema
 * refuses those already).
 */
export function createTranslationService(
  config: Config,
  options: TranslationServiceOptions,
): TranslationService {
  const translators: readonly ConfiguredTranslator[] = createTranslators(config.translators);
  if (translators.length === 0) {
    return { takeExpected: () => undefined, translate: () => Promise.resolve(null) };
  }
  const expectations = new ExpectationRegistry();
  const connect = options.connect ??
    ((endpoint: IpEndpoint, signal: AbortSignal, source?: IpAddress): Promise<Deno.Conn> =>
      source
        ? connectFrom(source, endpoint, { signal })
        : Deno.connect({ hostname: toHostname(endpoint.address), port: endpoint.port, signal }));

  /**
   * `egress`: the source the control connection left from (an egress pool's choice); the
   * server's data connections leave from it too, as FTP servers expect one client address.
   */
  function depsFor(
    session: Handshaken,
    ctx: TranslatorContext,
    egress: IpAddress | undefined,
  ): BrokerDeps {
    const target = session.request.target;
    const name = target.address.family === "name"
      ? normalizeName(target.address.name) ?? undefined
      : undefined;
    // A data connection is judged by its own address and port, never the control port: a
    // rule that denies a port of the server must hold for a 227 that names it. The requested
    // name belongs to the server's address only: an IRC DCC peer elsewhere is judged by its
    // address, or a rule allowing the server's name would open every address.
    const subject = (command: "connect" | "bind", address: IpAddress, port: number) => ({
      client: session.client.address,
      clientIsLocal: session.clientIsLocal,
      command,
      port,
      address,
      ...(session.user !== undefined ? { user: session.user } : {}),
      ...(name !== undefined && sameIp(address, ctx.server.address) ? { name } : {}),
    } satisfies RuleSubject);
    const check = (endpoint: IpEndpoint, { side }: { readonly side: Side }): string | null => {
      if (side === "client" && !sameIp(endpoint.address, ctx.client.address)) {
        return "Cannot connect data channel: not the client's own address";
      }
      const verdict = side === "server"
        ? options.rules.evaluate(subject("connect", endpoint.address, endpoint.port))
        : options.rules.evaluate(subject("bind", ctx.server.address, endpoint.port));
      return verdict.allow ? null : "Cannot connect data channel: denied by rules";
    };
    const refused = (
      endpoint: IpEndpoint,
      { side, reason, label }: { readonly side: Side; readonly reason: string; label: string },
    ): void => {
      log.warn("refused {side} data channel to {endpoint}: {reason}", {
        side,
        endpoint: formatEndpoint(endpoint),
        reason,
      });
      options.record({
        client: ctx.client,
        command: label,
        target: { address: endpoint.address, port: endpoint.port },
        ...(session.user !== undefined ? { user: session.user } : {}),
        outcome: "rejected",
        reply: Reply.NotAllowedByRuleset,
        reason,
        startedAt: performance.now(),
      });
    };
    const dial = (
      endpoint: IpEndpoint,
      { side, signal }: { readonly side: Side; readonly signal: AbortSignal },
    ): Promise<Deno.Conn> => {
      const refusal = check(endpoint, { side });
      if (refusal !== null) {
        return Promise.reject(new SocksReplyError(Reply.NotAllowedByRuleset, refusal));
      }
      const source = side === "server" && egress?.family === endpoint.address.family
        ? egress
        : undefined;
      return connect(endpoint, signal, source);
    };
    const relayData = async (
      a: Deno.Conn,
      b: Deno.Conn,
      relayOptions: DataRelayOptions,
    ): Promise<void> => {
      const startedAt = performance.now();
      const aRemote = peerEndpoint(a);
      // The FTP session relays (accepted, dialed): which one is the client's depends on mode.
      const aIsClient = aRemote !== null && sameIp(aRemote.address, ctx.client.address);
      const [clientConn, serverConn] = aIsClient ? [a, b] : [b, a];
      const clientEnd = peerEndpoint(clientConn) ?? ctx.client;
      const serverEnd = peerEndpoint(serverConn);
      const result = await relay(clientConn, serverConn, {
        idleMs: config.timeouts.idleMs,
        signal: AbortSignal.any([relayOptions.signal, options.shutdown]),
      });
      options.record({
        client: clientEnd,
        command: relayOptions.label,
        ...(serverEnd ? { target: serverEnd, used: serverEnd } : {}),
        ...(session.user !== undefined ? { user: session.user } : {}),
        outcome: "relayed",
        bytesUp: result.clientToServer,
        bytesDown: result.serverToClient,
        // A complete transfer torn down afterwards (QUIT, the control session's end) is no abort.
        reason: transferComplete(result)
          ? "closed"
          : result.end === "error"
          ? `error: ${errorText(result.error)}`
          : result.end,
        startedAt,
      });
    };
    return {
      dial,
      check,
      refused,
      relay: relayData,
      expectations,
      ...(options.listen && { listen: options.listen }),
    };
  }

  return {
    takeExpected(principal, target) {
      return expectations.take(principal, target);
    },
    async translate(session, dialed, route) {
      const target = session.request.target;
      try {
        if (route.chained) return null;
        // Bytes the client pipelined after its request (before any server greeting) belong
        // to the plain relay, which delivers them first; line protocols never do this.
        if (session.reader.buffered > 0) return null;
        const ctx: TranslatorContext = {
          id: (nextId++ % 0x100000).toString(36),
          client: session.client,
          clientSideLocal: session.local,
          server: dialed.remote,
          serverSideLocal: dialed.local,
          target,
          user: session.user ?? null,
        };
        const idleMs = config.timeouts.idleMs;
        return await runTranslation(translators, ctx, session.conn, dialed.conn, {
          deps: depsFor(session, ctx, dialed.egress),
          // The rest of a session handed back: the core relay, like any CONNECT's.
          relay: (client, server, { signal }) => relay(client, server, { idleMs, signal }),
          idleMs,
          signal: options.shutdown,
        });
      } catch (error) {
        // runTranslation never rejects; this guards the gateway against a broken plugin.
        log.error("translator failed: {error}", { error: errorText(error) });
        closeQuietly(session.conn);
        closeQuietly(dialed.conn);
        return {
          translator: null,
          bytesUp: 0,
          bytesDown: 0,
          handedBack: false,
          end: "error",
          error,
        };
      }
    },
  };
}
