/**
 * A raw HTTP/1.1 origin server on loopback for the HTTP front's tests: keep-alive, every request
 * answered with a JSON description of what arrived (method, target, fields, body digest), so
 * that tests see exactly what the proxy forwarded. It counts the request heads it read.
 *
 * @module
 */

import { copyBody } from "../../gateway/http/body.ts";
import { readRequestHead, requestFraming } from "../../gateway/http/message.ts";
import { HttpReader } from "../../gateway/http/reader.ts";
import { writeAll } from "../helpers/streams.ts";
import { startServer, type TestServer } from "./_fixtures.ts";

/** What the origin saw of one request. */
export interface SeenRequest {
  /** Method. */
  readonly method: string;
  /** Target as received. */
  readonly target: string;
  /** Fields as received. */
  readonly fields: [string, string][];
  /** Body length. */
  readonly bodyLength: number;
  /** SHA-256 of the body, hex. */
  readonly bodySha256: string;
  /** Which origin answered (its label). */
  readonly origin: string;
}

/** A running origin. */
export interface HttpOrigin extends TestServer {
  /** Every request head read so far. */
  readonly seen: SeenRequest[];
}

class HashSink {
  readonly parts: Uint8Array[] = [];
  write(bytes: Uint8Array): Promise<number> {
    this.parts.push(bytes.slice());
    return Promise.resolve(bytes.length);
  }
}

/** Starts an origin on `hostname`; `label` names it in its answers. */
export function startHttpOrigin(hostname: string, label: string): HttpOrigin {
  const seen: SeenRequest[] = [];
  const server = startServer(hostname, async (conn) => {
    const reader = new HttpReader(conn);
    while (true) {
      const head = await readRequestHead(reader);
      if (head === null) return;
      const sink = new HashSink();
      const bodyLength = await copyBody({ framing: requestFraming(head), from: reader }, sink, {
        dechunk: true,
      });
      const body = new Uint8Array(bodyLength);
      let offset = 0;
      for (const part of sink.parts) {
        body.set(part, offset);
        offset += part.length;
      }
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
      const request: SeenRequest = {
        method: head.method,
        target: head.target,
        fields: head.fields.map(([n, v]) => [n, v]),
        bodyLength,
        bodySha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
        origin: label,
      };
      seen.push(request);
      const answer = new TextEncoder().encode(JSON.stringify(request));
      const close = head.fields.some(([n, v]) =>
        n.toLowerCase() === "connection" && /close/i.test(v)
      );
      const chunked = head.target.includes("chunked");
      const fields = chunked
        ? `Transfer-Encoding: chunked\r\n`
        : `Content-Length: ${answer.length}\r\n`;
      await writeAll(
        conn,
        new TextEncoder().encode(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: ${
            close ? "close" : "keep-alive, X-Hop"
          }\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n${fields}\r\n`,
        ),
      );
      if (chunked) {
        const half = Math.floor(answer.length / 2);
        for (const piece of [answer.subarray(0, half), answer.subarray(half)]) {
          await writeAll(conn, new TextEncoder().encode(`${piece.length.toString(16)}\r\n`));
          await writeAll(conn, piece);
          await writeAll(conn, new TextEncoder().encode("\r\n"));
        }
        await writeAll(conn, new TextEncoder().encode("0\r\n\r\n"));
      } else {
        await writeAll(conn, answer);
      }
      if (close) return;
    }
  });
  return Object.assign(server, { seen });
}
