/**
 * RFC 1928 and RFC 1929 on the wire: the message codec, exact-length reads, the client
 * handshake, and the errors that carry reply codes. Pure: no policy and no sockets of its own.
 * Shared by the gateway (server side and chained hops) and the Socks Lib.
 *
 * @module
 */

export * from "./types.ts";
export * from "./codec.ts";
export * from "./errors.ts";
export * from "./exact_reader.ts";
export * from "./client.ts";
export * from "./server.ts";
