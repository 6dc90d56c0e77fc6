import assert from "node:assert/strict";
import { checkGraph, findCycles, type ImportGraph, layerOf } from "./check_layers.ts";

function graphOf(edges: Record<string, string[]>): ImportGraph {
  return new Map(Object.entries(edges));
}

Deno.test("layerOf() orders the folders, puts root files in main.ts's layer and scripts above", () => {
  assert.deepEqual(
    [
      "net/address.ts",
      "socks5/codec.ts",
      "resolver/resolver.ts",
      "client/mod.ts",
      "translators/run.ts",
      "gateway/config/types.ts",
      "main.ts",
      "deno.json",
      "scripts/compile.ts",
    ].map(layerOf),
    [0, 1, 2, 3, 4, 5, 6, 6, 7],
  );
  assert.equal(layerOf("examples/x.ts"), null);
});

Deno.test("checkGraph() accepts imports down the layers and within one", () => {
  const graph = graphOf({
    "net/address.ts": [],
    "socks5/codec.ts": ["net/address.ts"],
    "gateway/session.ts": ["socks5/codec.ts", "gateway/replies.ts", "net/address.ts"],
    "gateway/replies.ts": ["socks5/codec.ts"],
    "main.ts": ["gateway/session.ts", "deno.json"],
    "scripts/tool.ts": ["main.ts", "tests/helpers/x.ts", "bench/run.ts"],
  });
  assert.deepEqual(checkGraph(graph), []);
});

Deno.test("checkGraph() reports an upward import, type-only ones included", () => {
  const graph = graphOf({
    "resolver/resolver.ts": ["gateway/config/types.ts"],
    "gateway/config/types.ts": [],
    "net/address.ts": ["main.ts"],
    "main.ts": [],
    "client/mod.ts": ["scripts/compile.ts"],
    "scripts/compile.ts": [],
  });
  assert.deepEqual(checkGraph(graph), [
    "resolver/resolver.ts imports gateway/config/types.ts: resolver/ may not import from gateway/",
    "net/address.ts imports main.ts: net/ may not import from main.ts",
    "client/mod.ts imports scripts/compile.ts: client/ may not import from scripts/",
  ]);
});

Deno.test("checkGraph() reports production code importing tests or benchmarks, and stray files", () => {
  const graph = graphOf({
    "gateway/a.ts": ["tests/helpers/netns.ts", "gateway/a_test.ts", "bench/_wire.ts"],
    "examples/tool.ts": [],
  });
  assert.deepEqual(checkGraph(graph), [
    "gateway/a.ts imports tests/helpers/netns.ts: production code may not import tests or benchmarks",
    "gateway/a.ts imports gateway/a_test.ts: production code may not import tests or benchmarks",
    "gateway/a.ts imports bench/_wire.ts: production code may not import tests or benchmarks",
    "examples/tool.ts is in no layer: move it under one of net, socks5, resolver, client, " +
    "translators, gateway, main.ts",
  ]);
});

Deno.test("checkGraph() reports a cycle within one layer, as the files along it", () => {
  const graph = graphOf({
    "gateway/session.ts": ["gateway/commands/connect.ts", "gateway/replies.ts"],
    "gateway/commands/connect.ts": ["gateway/commands/_request_context.ts"],
    "gateway/commands/_request_context.ts": ["gateway/session.ts"],
    "gateway/replies.ts": [],
  });
  assert.deepEqual(checkGraph(graph), [
    "import cycle: gateway/commands/_request_context.ts -> gateway/session.ts -> gateway/commands/connect.ts -> " +
    "gateway/commands/_request_context.ts",
  ]);
});

Deno.test("findCycles() finds every cycle component once, and a file importing itself", () => {
  const graph = graphOf({
    "net/a.ts": ["net/b.ts"],
    "net/b.ts": ["net/a.ts", "net/c.ts"],
    "net/c.ts": [],
    "socks5/d.ts": ["socks5/d.ts"],
    "client/e.ts": ["client/f.ts"],
    "client/f.ts": ["client/g.ts"],
    "client/g.ts": ["client/e.ts", "client/f.ts"],
  });
  assert.deepEqual(findCycles(graph).sort(), [
    ["client/e.ts", "client/f.ts", "client/g.ts"],
    ["net/a.ts", "net/b.ts"],
    ["socks5/d.ts"],
  ]);
});

Deno.test("checkGraph() reports a dialer that reaches the session layer through other files", () => {
  const graph = graphOf({
    "gateway/upstream/direct.ts": ["gateway/reply_codes.ts"],
    "gateway/reply_codes.ts": ["gateway/commands/_request_context.ts"],
    "gateway/commands/_request_context.ts": [],
    "gateway/upstream/hop.ts": ["gateway/reply_codes.ts"],
  });
  assert.deepEqual(checkGraph(graph), [
    "gateway/upstream/direct.ts -> gateway/reply_codes.ts -> gateway/commands/_request_context.ts: " +
    "the dialers sit below the session layer",
    "gateway/upstream/hop.ts -> gateway/reply_codes.ts -> gateway/commands/_request_context.ts: " +
    "the dialers sit below the session layer",
  ]);
});
