/**
 * The V8 flags the gateway runs with (`deno task start`, the compiled executable, the tests and
 * the bench): `--max-semi-space-size=8` caps V8's young generation at 8 MiB per semi-space.
 *
 * Without it V8 grows the young generation under a connection-rate load (to 54 MiB of new space
 * measured after 15,000 round trips) and keeps it: memory after a load run was 2.7× a fresh
 * process, and a held relayed connection cost 34 KiB. With it: about 2× and 21–22 KiB, for CPU per
 * round trip within the measurement noise (bench/RESULTS.md, "Issue 15").
 *
 * @module
 */

/** The V8 options, as `--v8-flags` takes them. */
export const GATEWAY_V8_OPTIONS: readonly string[] = ["--max-semi-space-size=8"];

/** The `deno run` / `deno compile` argument that sets {@linkcode GATEWAY_V8_OPTIONS}. */
export const GATEWAY_V8_FLAGS_ARG: string = `--v8-flags=${GATEWAY_V8_OPTIONS.join(",")}`;
