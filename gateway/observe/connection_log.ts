/**
 * One log line per finished connection: who, as whom, to what (as requested and as used), the
 * family pair, bytes each way, duration and reply code.
 *
 * @module
 */

import { formatEndpoint, type IpEndpoint } from "../../net/address.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { logger } from "./log.ts";

/** What a finished connection leaves behind. */
export interface ConnectionRecord {
  /** The client. */
  readonly client: IpEndpoint;
  /**
   * RFC 1929 user, if any: the authenticated one, or the configured user a failed login tried
   * (an unknown name is not kept: it may be a password typed in the user field).
   */
  readonly user?: string;
  /** The command name (`connect`, `bind`, `udp`, `resolve`). */
  readonly command?: string;
  /** Destination as requested. */
  readonly target?: SocksTarget;
  /** The peer actually connected. */
  readonly used?: IpEndpoint;
  /** `relayed` after a success reply; `resolved` for a RESOLVE answered; `rejected` else. */
  readonly outcome: "relayed" | "resolved" | "rejected";
  /** REP sent, if any. */
  readonly reply?: number;
  /**
   * The client closed the connection between messages, before its request (a port check, a
   * client that gave up): normal behaviour, logged at info rather than as a warning.
   */
  readonly clientClosed?: boolean;
  /** Why it was rejected or how the relay ended. */
  readonly reason?: string;
  /** Bytes client → destination. */
  readonly bytesUp?: number;
  /** Bytes destination → client. */
  readonly bytesDown?: number;
  /** `performance.now()` at accept. */
  readonly startedAt: number;
  /** Accept to complete request, in ms, when the handshake succeeded. */
  readonly handshakeMs?: number;
  /** Outbound dial time in ms (CONNECT), whether it succeeded or not. */
  readonly connectMs?: number;
  /** The type of the protocol translator that handled the session (`ftp`), if one did. */
  readonly translator?: string;
  /** The per-user limit that refused the session (REP 2), if one did. */
  readonly refusal?: "max_connections" | "quota";
  /** The route of a CONNECT: `direct`, or the matching route's label. */
  readonly route?: string;
  /** The hops of a chained route, first to last (alternatives joined by `|`). */
  readonly hops?: readonly string[];
}

/** Formats a SOCKS target as requested (`name:port`, `addr:port`, `[v6]:port`). */
export function formatTarget(target: SocksTarget): string {
  const a = target.address;
  if (a.family === "name") return `${a.name}:${target.port}`;
  return formatEndpoint({ address: a, port: target.port });
}

/** The `v4→v6` style family pair of a relayed connection. */
export function familyPair(client: IpEndpoint, used: IpEndpoint | undefined): string {
  const to = used ? `v${used.address.family}` : "?";
  return `v${client.address.family}→${to}`;
}

const connLogger = logger("conn");

/** Writes the record as one structured log line. */
export function logConnection(record: ConnectionRecord): void {
  const fields: Record<string, unknown> = {
    client: formatEndpoint(record.client),
    user: record.user ?? "-",
    command: record.command ?? "-",
    dest: record.target ? formatTarget(record.target) : "-",
    used: record.used ? formatEndpoint(record.used) : "-",
    families: familyPair(record.client, record.used),
    up: record.bytesUp ?? 0,
    down: record.bytesDown ?? 0,
    durationMs: Math.round(performance.now() - record.startedAt),
    rep: record.reply ?? "-",
    outcome: record.outcome,
  };
  if (record.reason) fields.reason = record.reason;
  if (record.translator) fields.translator = record.translator;
  const message = "{outcome} {client} user={user} {command} {dest} via {used} {families} " +
    "up={up} down={down} {durationMs}ms rep={rep}" +
    (record.translator ? " translator={translator}" : "") +
    (record.reason ? " ({reason})" : "");
  if (connectionLogLevel(record) === "info") connLogger.info(message, fields);
  else connLogger.warn(message, fields);
}

/**
 * The level of a record's line: info for relays, answered RESOLVEs and clients that simply
 * left, else warning.
 */
export function connectionLogLevel(record: ConnectionRecord): "info" | "warning" {
  return record.outcome !== "rejected" || record.clientClosed === true ? "info" : "warning";
}
