/**
 * Logging: the one place that writes to the console. Structured fields, text or JSON lines.
 *
 * @module
 */

import {
  configure,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
  reset,
} from "@logtape/logtape";
import type { LogConfig } from "../config/types.ts";
import { LineBatch, writeAllStderr } from "./line_batch.ts";

/** This isolate's stderr lines, written in batches (see {@linkcode LineBatch}). */
const stderrLines = new LineBatch(writeAllStderr);
// Whatever way the isolate ends (Deno.exit after SIGTERM, the end of main, an uncaught error),
// queued lines go out first. (Only SIGKILL loses them: at most a millisecond of lines.)
for (const event of ["unload", "error", "unhandledrejection"]) {
  globalThis.addEventListener(event, () => stderrLines.flush());
}

/** Writes every queued log line now (before exit, or before reading the log in a test). */
export function flushLogs(): void {
  stderrLines.flush();
}

/** Root category of every dualgate logger. */
export const LOG_ROOT = "dualgate";

/** Returns the logger for a sub-category, e.g. `logger("conn")`. */
export function logger(...category: string[]): Logger {
  return getLogger([LOG_ROOT, ...category]);
}

/** Options of {@linkcode setupLogging}. */
export interface SetupLoggingOptions {
  /**
   * The worker isolate this is (`workers` above 1): every line's category ends with
   * `worker-N` and JSON lines carry a `worker` property. @default none
   */
  worker?: number;
}

// C0 controls, DEL, C1 controls, the backslash (so that an escape in the text reads unlike one
// we wrote), U+2028/U+2029 (line and paragraph separators) and the bidi controls (ALM, LRM, RLM,
// LRE..RLO, LRI..PDI), which reorder what a terminal shows.
const UNSAFE_TEXT =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f-\x9f\\\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// What JSON.stringify and logtape leave raw that still breaks lines or reorders a terminal.
const UNSAFE_IN_JSON = /[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\\": "\\\\",
};

function escapeChar(char: string): string {
  const short = SHORT_ESCAPES[char];
  if (short !== undefined) return short;
  const code = char.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * Makes text safe for one log line: control characters (C0, DEL, C1), U+2028/U+2029, bidi
 * controls and the backslash become visible escapes (`\n`, `\x1b`, `\u2028`, `\\`), so that
 * client-controlled text (a DOMAINNAME, a user name, an error quoting either) can neither start
 * a forged line nor drive the terminal.
 *
 * @example
 * ```ts
 * import { escapeLogText } from "./log.ts";
 *
 * if (escapeLogText("x\nINFO forged\x1b[2J") !== "x\\nINFO forged\\x1b[2J") throw new Error();
 * ```
 */
export function escapeLogText(text: string): string {
  UNSAFE_TEXT.lastIndex = 0;
  return UNSAFE_TEXT.test(text) ? text.replace(UNSAFE_TEXT, escapeChar) : text;
}

/** Renders an interpolated value of a text line: strings as they are, the rest inspected. */
function renderValue(value: unknown): string {
  // Numbers are most of a connection line's values (bytes, duration, reply code): they need
  // neither inspecting nor escaping.
  if (typeof value === "number") return String(value);
  return escapeLogText(
    typeof value === "string" ? value : Deno.inspect(value, { compact: true, colors: false }),
  );
}

/**
 * The line formatter of `format`. Text lines escape every interpolated value
 * ({@linkcode escapeLogText}), the one place where client-controlled text enters a line; JSON
 * lines are escaped by JSON itself, and U+2028/U+2029 and bidi controls, which JSON allows raw,
 * are written as `\uXXXX` as well.
 */
export function lineFormatter(format: LogConfig["format"]): (record: LogRecord) => string {
  if (format === "json") {
    const json = getJsonLinesFormatter();
    return (record) => json(record).replace(UNSAFE_IN_JSON, escapeChar);
  }
  return getTextFormatter({ timestamp: "date-time-timezone", value: renderValue });
}

/**
 * Configures the sinks once per isolate: text (values interpolated into the message) or JSON
 * lines, written to stderr so that stdout stays for command output; info and debug lines in
 * batches (one write per burst of lines, at most 1 ms late), warnings and errors at once.
 */
export async function setupLogging(
  config: LogConfig,
  options: SetupLoggingOptions = {},
): Promise<void> {
  const formatter = lineFormatter(config.format);
  const worker = options.worker;
  // Debug and info lines are batched; a warning or an error is written at once, after them.
  const urgent = (record: LogRecord) => record.level !== "debug" && record.level !== "info";
  await configure({
    reset: true,
    sinks: {
      stderr: worker === undefined
        ? (record) => stderrLines.push(formatter(record), urgent(record))
        : (record) =>
          stderrLines.push(
            formatter({
              ...record,
              category: [...record.category, `worker-${worker}`],
              properties: { ...record.properties, worker },
            }),
            urgent(record),
          ),
    },
    loggers: [
      { category: [LOG_ROOT], lowestLevel: config.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Writes what is queued and removes the sinks (tests, shutdown). */
export async function teardownLogging(): Promise<void> {
  stderrLines.flush();
  await reset();
}
