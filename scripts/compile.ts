/**
 * `deno task compile`: builds the self-contained `dist/dualgate` executable with
 * `deno compile`.
 *
 * `deno compile` needs the `denort` runtime. Deno downloads it from its release site unless
 * `DENORT_BIN` names a local copy; this script passes `DENORT_BIN` through and says which one
 * is used. Where neither works (an offline build host), it fails with that reason.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { GATEWAY_V8_FLAGS_ARG } from "../gateway/runtime_flags.ts";

/** Permissions the compiled gateway runs with. */
export const COMPILE_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
  "--allow-run",
  "--allow-write=/tmp",
];

const root = fileURLToPath(new URL("../", import.meta.url));
const output = Deno.args[0] ?? `${root}dist/dualgate`;
const denort = Deno.env.get("DENORT_BIN");
const encoder = new TextEncoder();
Deno.stderr.writeSync(
  encoder.encode(
    `compile: ${output} (runtime: ${denort ? `DENORT_BIN=${denort}` : "downloaded by deno"})\n`,
  ),
);
const result = await new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "--unstable-net",
    ...COMPILE_PERMISSIONS,
    GATEWAY_V8_FLAGS_ARG,
    // The workers' entry module is loaded by URL at run time, not imported statically.
    "--include",
    `${root}gateway/listen/_worker.ts`,
    "--output",
    output,
    `${root}main.ts`,
  ],
  cwd: root,
  stdin: "null",
}).output();
Deno.exit(result.code);
