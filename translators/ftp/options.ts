/**
 * The FTP translator's options: the YAML form (snake_case keys, durations in seconds, like the
 * rest of the config), validated at config load into typed camelCase values, and back.
 *
 * ```yaml
 * translators:
 *   - type: ftp
 *     ports: [21]
 *     same_family: pass              # or translate
 *     passive_ports: { from: 50000, to: 50999 }
 *     active_ports: { from: 51000, to: 51999 }
 *     data_timeout: 60               # seconds
 *     reply_timeout: 30              # seconds
 *     refuse_tls: true
 * ```
 *
 * @module
 */

import { z } from "zod";
import { type PortRange, portRangeSchema } from "../data_channel.ts";
import { type SameFamily, sameFamilySchema, yamlMapping } from "../plugin_options.ts";

export type { PortRange } from "../data_channel.ts";

/** The FTP translator's validated options (typed values; the YAML keys are snake_case). */
export interface FtpOptions {
  /**
   * `pass` leaves IPv4→IPv4 and IPv6→IPv6 sessions untouched; `translate` handles them too.
   * @default "pass"
   */
  readonly sameFamily: SameFamily;
  /** Ports for listeners facing the client (passive mode). @default {from: 49152, to: 65535} */
  readonly passivePorts: PortRange;
  /** Ports for listeners facing the server (active mode). @default {from: 49152, to: 65535} */
  readonly activePorts: PortRange;
  /** How long a data listener or SOCKS expectation waits for its peer. @default 60000 */
  readonly dataTimeoutMs: number;
  /** How long the gateway waits for the reply to a command it sent itself. @default 30000 */
  readonly replyTimeoutMs: number;
  /** Answer AUTH with 534 and hide TLS features in FEAT (TLS cannot be translated). @default true */
  readonly refuseTls: boolean;
}

/** The YAML key of each option, for both directions. */
const FTP_YAML = yamlMapping<FtpOptions>({
  sameFamily: "same_family",
  passivePorts: "passive_ports",
  activePorts: "active_ports",
  dataTimeoutMs: { seconds: "data_timeout" },
  replyTimeoutMs: { seconds: "reply_timeout" },
  refuseTls: "refuse_tls",
});

const MAX_SECONDS = 600;
const seconds = z.number().refine(
  (n) => Number.isFinite(n) && n >= 0.1 && n <= MAX_SECONDS,
  `must be a number of seconds from 0.1 to ${MAX_SECONDS}`,
);

/**
 * The zod schema of the FTP translator's own YAML keys (besides `type`, `ports` and
 * `max_line_bytes`): strict, with defaults; its output is the typed {@linkcode FtpOptions}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ftpOptionsSchema } from "./options.ts";
 *
 * const options = ftpOptionsSchema.parse({ data_timeout: 5, passive_ports: { from: 50000, to: 50100 } });
 * assert.equal(options.dataTimeoutMs, 5000);
 * assert.deepEqual(options.passivePorts, { from: 50000, to: 50100 });
 * ```
 */
export const ftpOptionsSchema: z.ZodType<FtpOptions> = z.strictObject({
  same_family: sameFamilySchema,
  passive_ports: portRangeSchema.default({ from: 49152, to: 65535 }),
  active_ports: portRangeSchema.default({ from: 49152, to: 65535 }),
  data_timeout: seconds.default(60),
  reply_timeout: seconds.default(30),
  refuse_tls: z.boolean().default(true),
}).transform((yaml) => FTP_YAML.fromYaml(yaml));

/** The YAML form of validated options (for `main.ts check`): parses back to the same values. */
export function formatFtpOptions(options: FtpOptions): Record<string, unknown> {
  return FTP_YAML.toYaml(options);
}
