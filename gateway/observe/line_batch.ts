/**
 * Log lines written in batches: one `write` for many lines instead of one per line, which is a
 * tenth of a connection's cost at `info` level when every connection logs a line (issue 15).
 *
 * Lines are formatted by the caller when they are logged (so a value changed later never shows
 * in an earlier line) and queued; the queue is written when it holds
 * {@linkcode LineBatchOptions.maxBytes}, after {@linkcode LineBatchOptions.delayMs} at the
 * latest (1 ms by default: the lines of one burst of events share a write, and a quiet gateway's
 * line is still written at once, for whoever tails the log), at once for an urgent line (a warning or an error, with everything queued before it, in
 * order), and by {@linkcode LineBatch.flush} (shutdown, `unload`): nothing queued is lost when the
 * process exits through `Deno.exit` or returns from its main module.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Options of {@linkcode LineBatch}. */
export interface LineBatchOptions {
  /** Queued UTF-16 code units that trigger a write. @default 65536 */
  readonly maxBytes?: number;
  /** The longest a line waits (ms). @default 1 */
  readonly delayMs?: number;
}

/** A queue of text lines written by `write` in batches. */
export class LineBatch {
  readonly #write: (bytes: Uint8Array) => void;
  readonly #maxBytes: number;
  readonly #delayMs: number;
  #queued: string[] = [];
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Lines go to `write` (which must write all it is given, synchronously). */
  constructor(write: (bytes: Uint8Array) => void, options: LineBatchOptions = {}) {
    this.#write = write;
    this.#maxBytes = options.maxBytes ?? 65536;
    this.#delayMs = options.delayMs ?? 1;
  }

  /** Queues `line` (with its newline); `urgent` writes it, and all before it, now. */
  push(line: string, urgent = false): void {
    this.#queued.push(line);
    this.#size += line.length;
    if (urgent || this.#size >= this.#maxBytes) {
      this.flush();
    } else if (this.#timer === undefined) {
      const timer = setTimeout(() => this.flush(), this.#delayMs);
      // The timer never keeps the process alive: exit flushes what it would have written.
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Writes everything queued, in order. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queued.length === 0) return;
    const text = this.#queued.length === 1 ? this.#queued[0]! : this.#queued.join("");
    this.#queued = [];
    this.#size = 0;
    this.#write(encoder.encode(text));
  }
}

/** Writes all of `bytes` to stderr (a write may take fewer bytes than given). */
export function writeAllStderr(bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
}
