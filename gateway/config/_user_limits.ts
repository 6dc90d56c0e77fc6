/**
 * The schema of per-user limits (`limits.per_user`, `auth.users[].limits`): byte sizes and
 * rates with units, `unlimited`, and how a user's own limits fall back on the defaults.
 *
 * @module
 */

import { z } from "zod";
import type { QuotaConfig, QuotaPeriod, UserLimitsConfig } from "./types.ts";

/** Periods a quota can have. */
export const QUOTA_PERIODS = [
  "hour",
  "day",
  "week",
  "month",
] as const satisfies readonly QuotaPeriod[];

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Parses a byte count: a non-negative integer, or a string like `512KiB`, `1.5 MB`, `10GiB`
 * (decimal and binary units); with `rate`, an optional `/s` suffix. `null` when it is neither.
 */
export function parseBytes(value: unknown, options: { rate?: boolean } = {}): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value !== "string") return null;
  const suffix = options.rate ? "(?:\\s*/\\s*s)?" : "";
  const m = value.trim().match(new RegExp(`^(\\d+(?:\\.\\d+)?)\\s*([a-z]*)${suffix}$`, "i"));
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return null;
  const bytes = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** `unlimited` (as `null`), or a value of `schema`, whose issues keep their paths. */
function orUnlimited<T>(schema: z.ZodType<T>) {
  return z.unknown().transform((value, ctx): T | null => {
    if (value === "unlimited") return null;
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) {
      ctx.addIssue({
        code: "custom",
        message: issue.code === "unrecognized_keys" ? "unknown key" : issue.message,
        path: issue.code === "unrecognized_keys" ? [...issue.path, ...issue.keys] : issue.path,
      });
    }
    return z.NEVER;
  });
}

/** A positive byte count or rate. */
function bytes(what: string, rate: boolean) {
  return z.unknown().transform((value, ctx): number => {
    const parsed = parseBytes(value, { rate });
    if (parsed === null || parsed < 1) {
      ctx.addIssue({
        code: "custom",
        message: `must be ${what} above 0: a number of bytes or a size such as "512KiB" or ` +
          `"10MB"${rate ? ' (per second; "/s" may follow)' : ""}, or "unlimited"`,
      });
      return z.NEVER;
    }
    return parsed;
  });
}

const limitValue = {
  max_connections: orUnlimited(
    z.unknown().refine(
      (n) => typeof n === "number" && Number.isSafeInteger(n) && n >= 1,
      'must be a positive integer or "unlimited"',
    ).transform((n) => n as number),
  ),
  up: orUnlimited(bytes("a rate", true)),
  down: orUnlimited(bytes("a rate", true)),
  quota: orUnlimited(
    z.strictObject({ bytes: bytes("a size", false), period: z.enum(QUOTA_PERIODS) })
      .transform((value): QuotaConfig => value),
  ),
};

/** Limits as written: each key optional (absent: the default, or unlimited). */
export type WrittenUserLimits = {
  max_connections?: number | null | undefined;
  bandwidth?: { up?: number | null | undefined; down?: number | null | undefined } | undefined;
  quota?: QuotaConfig | null | undefined;
};

/** `{ max_connections, bandwidth: { up, down }, quota: { bytes, period } }`, each optional. */
export const userLimitsSchema: z.ZodType<WrittenUserLimits> = z.preprocess(
  (value) => value ?? {},
  z.strictObject({
    max_connections: limitValue.max_connections.optional(),
    bandwidth: z.preprocess(
      (value) => value ?? {},
      z.strictObject({ up: limitValue.up.optional(), down: limitValue.down.optional() }),
    ).optional(),
    quota: limitValue.quota.optional(),
  }),
);

/** No limit at all. */
export const UNLIMITED: UserLimitsConfig = {
  maxConnections: null,
  up: null,
  down: null,
  quota: null,
};

/** `written` over `base`, key by key. */
export function mergeUserLimits(
  written: WrittenUserLimits,
  base: UserLimitsConfig = UNLIMITED,
): UserLimitsConfig {
  return {
    maxConnections: written.max_connections !== undefined
      ? written.max_connections
      : base.maxConnections,
    up: written.bandwidth?.up !== undefined ? written.bandwidth.up : base.up,
    down: written.bandwidth?.down !== undefined ? written.bandwidth.down : base.down,
    quota: written.quota !== undefined ? written.quota : base.quota,
  };
}

/** True when `limits` limit nothing. */
export function isUnlimited(limits: UserLimitsConfig): boolean {
  return limits.maxConnections === null && limits.up === null && limits.down === null &&
    limits.quota === null;
}

/** The YAML form of `limits` (what `check` prints). */
export function formatUserLimits(limits: UserLimitsConfig): Record<string, unknown> {
  const or = <T>(value: T | null) => value ?? "unlimited";
  return {
    max_connections: or(limits.maxConnections),
    bandwidth: { up: or(limits.up), down: or(limits.down) },
    quota: limits.quota ? { bytes: limits.quota.bytes, period: limits.quota.period } : "unlimited",
  };
}
