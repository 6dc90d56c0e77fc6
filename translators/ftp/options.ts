/**
 * The FTP translator's options, validated at config load.
 *
 * @module
 */

import { z } from "zod";

const portRange = z.strictObject({
  from: z.number().int().min(0).max(65535),
  to: z.number().int().min(0).max(65535),
}).refine((range) => range.from <= range.to, { message: "from must not exceed to" })
  .refine(
    (range) => (range.from === 0) === (range.to === 0) && (range.from === 0 || range.from >= 1024),
    {
      message: "ports must be 1024..65535, or {from: 0, to: 0} for the kernel's choice",
    },
  );

/** The zod schema of the FTP translator's own options (besides `type`, `ports`, `maxLineBytes`). */
export const ftpOptionsSchema = z.strictObject({
  /** `pass` leaves IPv4→IPv4 and IPv6→IPv6 sessions untouched; `translate` handles them too. */
  sameFamily: z.enum(["pass", "translate"]).default("pass"),
  /** Ports for listeners facing the client (passive mode). */
  passivePorts: portRange.default({ from: 49152, to: 65535 }),
  /** Ports for listeners facing the server (active mode). */
  activePorts: portRange.default({ from: 49152, to: 65535 }),
  /** How long a data listener or SOCKS expectation waits for its peer. */
  dataTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
  /** How long the gateway waits for the server's reply to a command it sent itself. */
  replyTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  /** Answer AUTH with 534 and hide TLS features in FEAT (TLS cannot be translated). */
  refuseTls: z.boolean().default(true),
});

/** The FTP translator's validated options. */
export type FtpOptions = z.output<typeof ftpOptionsSchema>;
