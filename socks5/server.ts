/**
 * The server side of a SOCKS5 handshake for small servers with one fixed login (the Socks Lib's
 * loopback front, test servers): greeting, method selection, RFC 1929 check, request. The
 * gateway's own sessions do more (login limits, per-user rules) and keep their own.
 *
 * @module
 */

import { type ByteSink, writeAll } from "../net/io.ts";
import type { SocksCredentials } from "./client.ts";
import {
  encodeMethodSelection,
  encodePasswordAuthReply,
  readGreeting,
  readPasswordAuthRequest,
  readRequest,
} from "./codec.ts";
import type { ExactReader } from "./exact_reader.ts";
import { AuthMethod, type SocksRequest } from "./types.ts";

/** Options of {@linkcode acceptRequest}. */
export interface AcceptRequestOptions {
  /**
   * Require RFC 1929 with these credentials.
   * @default {undefined} (no authentication)
   */
  readonly credentials?: SocksCredentials | undefined;
}

/**
 * Reads the greeting from `reader`, selects no authentication (or RFC 1929 when `credentials`
 * are given) on `conn`, checks the login and reads the request. Resolves `null` when the client
 * offered no acceptable method or failed the login: the answer is sent, the caller closes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeGreeting, encodeRequest } from "./codec.ts";
 * import { ExactReader } from "./exact_reader.ts";
 * import { acceptRequest } from "./server.ts";
 *
 * const bytes = new Uint8Array([
 *   ...encodeGreeting({ methods: [0] }),
 *   ...encodeRequest({
 *     command: 1,
 *     target: { address: { family: "name", name: "example.org" }, port: 80 },
 *   }),
 * ]);
 * let offset = 0;
 * const source = {
 *   read: (into: Uint8Array) => {
 *     if (offset === bytes.length) return Promise.resolve(null);
 *     const n = Math.min(into.length, bytes.length - offset);
 *     into.set(bytes.subarray(offset, offset + n));
 *     offset += n;
 *     return Promise.resolve(n);
 *   },
 * };
 * const sent: number[] = [];
 * const sink = { write: (data: Uint8Array) => (sent.push(...data), Promise.resolve(data.length)) };
 * const request = await acceptRequest(sink, new ExactReader(source));
 * assert.deepEqual(sent, [5, 0]);
 * assert.equal(request?.target.port, 80);
 * ```
 */
export async function acceptRequest(
  conn: ByteSink,
  reader: ExactReader,
  options: AcceptRequestOptions = {},
): Promise<SocksRequest | null> {
  const { credentials } = options;
  const greeting = await readGreeting(reader);
  const method = credentials ? AuthMethod.UsernamePassword : AuthMethod.NoAuthentication;
  if (!greeting.methods.includes(method)) {
    await writeAll(conn, encodeMethodSelection(AuthMethod.NoAcceptableMethods));
    return null;
  }
  await writeAll(conn, encodeMethodSelection(method));
  if (credentials) {
    const auth = await readPasswordAuthRequest(reader);
    const ok = auth.username === credentials.username && auth.password === credentials.password;
    await writeAll(conn, encodePasswordAuthReply(ok ? 0 : 1));
    if (!ok) return null;
  }
  return await readRequest(reader);
}
