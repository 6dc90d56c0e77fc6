import assert from "node:assert/strict";
import { checkGraph, loadGraph } from "../scripts/check_layers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("the production files keep the layers: no cycle, no upward import", async () => {
  const graph = await loadGraph(ROOT);
  assert.deepEqual(checkGraph(graph), []);
});

Deno.test("the import graph holds every production file and their type-only imports", async () => {
  const graph = await loadGraph(ROOT);
  for (const file of ["main.ts", "net/address.ts", "gateway/session.ts", "scripts/compile.ts"]) {
    assert.ok(graph.has(file), file);
  }
  assert.ok(
    ![...graph.keys()].some((file) => file.endsWith("_test.ts") || file.startsWith("tests/")),
  );
  // `import type { ... } from "./session_types.ts"` is an edge like any import.
  assert.ok(graph.get("gateway/commands/connect.ts")?.includes("gateway/session_types.ts"));
  assert.ok(graph.get("main.ts")?.includes("deno.json"));
});

Deno.test("gateway/session_types.ts imports and exports nothing but types", async () => {
  const text = await Deno.readTextFile(`${ROOT}gateway/session_types.ts`);
  const statements = text.match(/^(?:import|export)\b[^;]*?\bfrom\s+"[^"]+";/gms) ?? [];
  assert.ok(statements.length > 0);
  for (const statement of statements) assert.match(statement, /^(?:import|export) type\b/);
  const graph = await loadGraph(ROOT);
  assert.ok((graph.get("gateway/session_types.ts")?.length ?? 0) > 0);
});
