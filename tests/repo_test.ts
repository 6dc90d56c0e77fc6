/**
 * The repository's own habits: the README's check-and-test command is what CI runs, `task ok`
 * runs every check, `no-console` is on, the preload bundles have a task and are marked
 * generated, and no file points outside the repository.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "./helpers/dualgate.ts";
import { PRELOAD_BUNDLES } from "../client/_build_node_preload.ts";
import { GATEWAY_V8_FLAGS_ARG } from "../gateway/runtime_flags.ts";

const read = (path: string) => Deno.readTextFile(`${REPO_ROOT}/${path}`);

interface DenoJson {
  tasks: Record<string, string>;
  lint?: { rules?: { include?: string[]; exclude?: string[] } };
}

const denoJson = JSON.parse(await read("deno.json")) as DenoJson;

Deno.test("the README's check command is the one .ci/run runs, and `task ok` runs every check", async () => {
  const readme = await read("README.md");
  const ci = await read(".ci/run");
  const command = readme.match(/^(npx --yes deno@[\d.]+ task ok)\b/m)?.[1];
  assert.ok(command, "the README gives `npx --yes deno@VERSION task ok`");
  const runs = ci.split("\n").filter((line) => /^\s*npx --yes deno@\S+ task /.test(line));
  assert.deepEqual(runs.map((line) => line.trim().split(" 2>&1")[0]), [command]);
  // The closing line comes from Deno's test summary, which `task ok` ends with.
  assert.match(ci, /grep -E '\^\(ok\|FAILED\) \\\| \[0-9\]\+ passed'/);
  const steps = denoJson.tasks.ok?.split("&&").map((step) => step.trim());
  assert.deepEqual(steps, [
    "deno fmt --check",
    "deno lint",
    "deno task check",
    "deno task layers",
    "deno task test",
  ]);
  for (const task of ["check", "test"]) assert.ok(denoJson.tasks[task], `task ${task}`);
});

Deno.test("lint forbids console outside the files that are programs by nature", async () => {
  assert.ok(denoJson.lint?.rules?.include?.includes("no-console"));
  assert.ok(!denoJson.lint?.rules?.exclude?.includes("no-console"));
  // Library code never opts out: only the CLI, logging, scripts, benchmarks, tests and the
  // generated bundles may.
  const allowed =
    /^(main\.ts|gateway\/observe\/log\.ts|scripts\/|bench\/|tests\/|client\/\w+_preload\.mjs$)/;
  for (const path of await trackedFiles()) {
    if (!/\.(ts|mjs|js)$/.test(path)) continue;
    const text = await read(path);
    if (/deno-lint-ignore(-file)?[^\n]*\bno-console\b/.test(text)) {
      assert.match(path, allowed, `${path} opts out of no-console`);
    }
  }
});

Deno.test("the preload bundles have a task and are marked generated", async () => {
  assert.match(denoJson.tasks.bundle ?? "", /\bclient\/_build_node_preload\.ts\b/);
  const attributes = (await read(".gitattributes")).split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.trim().split(/\s+/));
  for (const bundle of PRELOAD_BUNDLES) {
    const entry = attributes.find(([pattern]) => pattern === `client/${bundle.output}`);
    assert.ok(entry, `client/${bundle.output} in .gitattributes`);
    assert.ok(entry.includes("linguist-generated=true"), entry.join(" "));
  }
});

Deno.test("no tracked file points at a path outside the repository", async () => {
  const outside = /\/work\/(?:shared|wt|main)\b|\.\.\/shared\//;
  const found: string[] = [];
  for (const path of await trackedFiles()) {
    if (path === "tests/repo_test.ts") continue;
    let text: string;
    try {
      text = await read(path);
    } catch {
      continue;
    }
    if (outside.test(text)) found.push(path);
  }
  assert.deepEqual(found, []);
});

async function trackedFiles(): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "-z"],
    cwd: REPO_ROOT,
    stdout: "piped",
  }).output();
  assert.ok(out.success, "git ls-files");
  return new TextDecoder().decode(out.stdout).split("\0").filter((path) => path !== "");
}

Deno.test("the gateway runs with its V8 flags wherever this repository starts it", async () => {
  // deno task start, deno task compile, the tests' and the bench's gateways.
  assert.match(denoJson.tasks.start ?? "", new RegExp(`^deno run ${GATEWAY_V8_FLAGS_ARG} `));
  for (const path of ["scripts/compile.ts", "tests/helpers/dualgate.ts", "bench/_peers.ts"]) {
    assert.match(await read(path), /GATEWAY_V8_FLAGS_ARG,/, path);
  }
});
