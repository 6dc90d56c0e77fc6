/**
 * The audit log (`log.audit.file`): one JSON line per finished connection, appended to a file
 * beside the log lines on stderr. Lines are formatted when the connection ends and written in
 * batches by a timer, off the relay's path; `reopen()` (on SIGUSR1, after logrotate renamed the
 * file) and `close()` (on stop) write every pending line first, so nothing is lost on SIGTERM.
 *
 * @module
 */

import { formatEndpoint } from "../../net/address.ts";
import { writeAll } from "../../net/io.ts";
import { type ConnectionRecord, formatTarget } from "./connection_log.ts";
import { logger } from "./log.ts";
import { familiesLabel } from "./metrics.ts";

/** Options of {@linkcode AuditLog}. */
export interface AuditLogOptions {
  /** How long a line may wait for its batch, in ms. @default 200 */
  flushMs?: number;
  /** Pending bytes that write a batch at once. @default 65536 */
  batchBytes?: number;
  /** Pending bytes kept while the file cannot be written; older lines beyond are dropped. @default 16 MiB */
  maxPendingBytes?: number;
}

const log = logger("audit");
const encoder = new TextEncoder();
// JSON leaves these raw; a line reader or a terminal may break or reorder on them.
const UNSAFE_IN_JSON = /[\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The audit line of a record: the JSON object, without the newline. */
export function auditLine(record: ConnectionRecord, endedAt: Date = new Date()): string {
  const fields = {
    time: endedAt.toISOString(),
    user: record.user ?? null,
    client: formatEndpoint(record.client),
    command: record.command ?? null,
    requested: record.target ? formatTarget(record.target) : null,
    connected: record.used ? formatEndpoint(record.used) : null,
    families: familiesLabel(record),
    route: record.route ?? null,
    hops: record.hops ?? [],
    up: record.bytesUp ?? 0,
    down: record.bytesDown ?? 0,
    durationMs: Math.round(performance.now() - record.startedAt),
    reply: record.reply ?? null,
    outcome: record.outcome,
    reason: record.reason ?? null,
  };
  return JSON.stringify(fields).replace(
    UNSAFE_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** An append-only JSON-lines file of connection records; see the module doc. */
export class AuditLog implements AsyncDisposable {
  readonly path: string;
  readonly #flushMs: number;
  readonly #batchBytes: number;
  readonly #maxPending: number;
  #file: Deno.FsFile | null;
  #pending: string[] = [];
  #pendingBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #dropped = 0;
  #closed = false;

  /**
   * Opens (creating, appending) the file at `path`.
   *
   * @throws {Deno.errors.NotFound} and other open errors, synchronously: a gateway that cannot
   *   write its audit log does not start.
   */
  constructor(path: string, options: AuditLogOptions = {}) {
    this.path = path;
    this.#flushMs = options.flushMs ?? 200;
    this.#batchBytes = options.batchBytes ?? 65536;
    this.#maxPending = options.maxPendingBytes ?? 16 * 1024 * 1024;
    this.#file = AuditLog.#open(path);
  }

  static #open(path: string): Deno.FsFile {
    return Deno.openSync(path, { append: true, create: true, mode: 0o640 });
  }

  /** Queues the record's line; the batch is written within `flushMs`. */
  write(record: ConnectionRecord): void {
    if (this.#closed) return;
    const line = auditLine(record) + "\n";
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (this.#pendingBytes >= this.#batchBytes) this.#flushSoon(0);
    else this.#flushSoon(this.#flushMs);
  }

  #flushSoon(ms: number): void {
    if (this.#timer !== undefined) {
      if (ms > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, ms);
  }

  /** Writes every pending line; resolves when they are in the file (or kept for a retry). */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#writing = this.#writing.then(() => this.#writePending());
    return this.#writing;
  }

  async #writePending(): Promise<void> {
    if (this.#pending.length === 0) return;
    try {
      this.#file ??= AuditLog.#open(this.path);
    } catch (error) {
      this.#keepBounded();
      log.error("cannot open audit log {path}: {error}", { path: this.path, error });
      return;
    }
    const lines = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      await writeAll(this.#file, encoder.encode(lines.join("")));
    } catch (error) {
      // Partly written, maybe: a retry may repeat a line, never lose one.
      this.#pending = [...lines, ...this.#pending];
      this.#pendingBytes = this.#pending.reduce((sum, line) => sum + line.length, 0);
      this.#keepBounded();
      log.error("cannot write audit log {path}: {error}", { path: this.path, error });
    }
  }

  #keepBounded(): void {
    while (this.#pendingBytes > this.#maxPending && this.#pending.length > 0) {
      this.#pendingBytes -= this.#pending.shift()!.length;
      this.#dropped++;
    }
    if (this.#dropped > 0) {
      log.error("audit log {path}: {dropped} lines dropped, the file cannot be written", {
        path: this.path,
        dropped: this.#dropped,
      });
    }
  }

  /**
   * Writes the pending lines to the file open now, closes it and opens `path` anew (logrotate
   * renamed it: the new lines go to a new file).
   */
  async reopen(): Promise<void> {
    await this.flush();
    this.#writing = this.#writing.then(() => {
      try {
        this.#file?.close();
      } catch { /* closed */ }
      this.#file = null;
      try {
        this.#file = AuditLog.#open(this.path);
      } catch (error) {
        log.error("cannot reopen audit log {path}: {error}", { path: this.path, error });
      }
    });
    await this.#writing;
  }

  /** Writes every pending line and closes the file; later records are ignored. */
  async close(): Promise<void> {
    if (this.#closed) return await this.#writing;
    await this.flush();
    this.#closed = true;
    await this.#writing;
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = null;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
