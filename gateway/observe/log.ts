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
  reset,
} from "@logtape/logtape";
import type { LogConfig } from "../config/types.ts";

const encoder = new TextEncoder();

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

/**
 * Configures the sinks once per isolate: text (`key=value` properties appended) or JSON lines,
 * written to stderr so that stdout stays for command output.
 */
export async function setupLogging(
  config: LogConfig,
  options: SetupLoggingOptions = {},
): Promise<void> {
  const formatter = config.format === "json" ? getJsonLinesFormatter() : getTextFormatter({
    timestamp: "date-time-timezone",
    value: (v) => typeof v === "string" ? v : Deno.inspect(v, { compact: true, colors: false }),
  });
  const worker = options.worker;
  await configure({
    reset: true,
    sinks: {
      stderr: worker === undefined
        ? (record) => Deno.stderr.writeSync(encoder.encode(formatter(record)))
        : (record) =>
          Deno.stderr.writeSync(encoder.encode(formatter({
            ...record,
            category: [...record.category, `worker-${worker}`],
            properties: { ...record.properties, worker },
          }))),
    },
    loggers: [
      { category: [LOG_ROOT], lowestLevel: config.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Removes the sinks (tests, shutdown). */
export async function teardownLogging(): Promise<void> {
  await reset();
}
