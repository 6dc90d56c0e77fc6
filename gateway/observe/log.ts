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

/**
 * Configures the sinks once per process: text (`key=value` properties appended) or JSON lines,
 * written to stderr so that stdout stays for command output.
 */
export async function setupLogging(config: LogConfig): Promise<void> {
  const formatter = config.format === "json" ? getJsonLinesFormatter() : getTextFormatter({
    timestamp: "date-time-timezone",
    value: (v) => typeof v === "string" ? v : Deno.inspect(v, { compact: true, colors: false }),
  });
  await configure({
    reset: true,
    sinks: {
      stderr: (record) => {
        Deno.stderr.writeSync(encoder.encode(formatter(record)));
      },
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
