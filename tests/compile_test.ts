/**
 * `deno task compile` builds a self-contained executable that runs `version`. It needs the
 * `denort` runtime: Deno downloads it from its release site, unreachable on this project's
 * machines, or takes `DENORT_BIN`. Without a runtime the test is skipped and says why.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const denort = Deno.env.get("DENORT_BIN");
const haveRuntime = denort !== undefined && (() => {
  try {
    return Deno.statSync(denort).isFile;
  } catch {
    return false;
  }
})();

if (!haveRuntime) {
  const why = denort === undefined
    ? "DENORT_BIN is not set and deno compile's runtime download site is unreachable here"
    : `DENORT_BIN=${denort} is not a file`;
  // deno-lint-ignore no-console
  console.error(`SKIPPED (${why}): deno task compile builds a runnable executable`);
}

Deno.test({
  name: "`deno task compile` builds a runnable executable (needs DENORT_BIN)",
  ignore: !haveRuntime,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "dualgate-compile-" });
    try {
      const output = `${dir}/dualgate`;
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", `${ROOT}scripts/compile.ts`, output],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(build.success, new TextDecoder().decode(build.stderr));
      const run = await new Deno.Command(output, { args: ["version"], stdout: "piped" }).output();
      assert.ok(run.success);
      assert.match(new TextDecoder().decode(run.stdout), /^dualgate \d+\.\d+\.\d+/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
