// deno-lint-ignore-file no-console -- a command-line check: its report is its output
/**
 * Checks the import graph of the production files against the layers (README "Layout"):
 *
 * `net/` < `socks5/` < `resolver/` < `client/` < `translators/` < `gateway/` < `main.ts` (the
 * repository root)
 *
 * - no import goes up that order (type-only imports and re-exports count as imports);
 * - no import cycle, between any production files, whichever layers they are in;
 * - production files import no test, benchmark or script file;
 * - the dialers (`gateway/upstream/`) do not load the session layer, even indirectly.
 *
 * Production files are the `.ts` files outside `tests/` and `bench/`, except `*_test.ts`.
 * `scripts/` sits above everything: it may import anything (and is still checked for cycles).
 * The graph is Deno's own (`deno info --json`), so every import form counts: `import`,
 * `import type`, `export ... from`, and dynamic imports of string literals.
 *
 * Run: `deno task layers` (exits 1 and lists the violations when there are any); `deno run -A
 * scripts/check_layers.ts DIR` checks another checkout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkGraph } from "./check_layers.ts";
 *
 * const graph = new Map([
 *   ["net/address.ts", []],
 *   ["resolver/resolver.ts", ["net/address.ts", "gateway/config/types.ts"]],
 *   ["gateway/config/types.ts", ["net/address.ts"]],
 * ]);
 * assert.deepEqual(checkGraph(graph), [
 *   "resolver/resolver.ts imports gateway/config/types.ts: resolver/ may not import from gateway/",
 * ]);
 * ```
 *
 * @module
 */

/** The layers, lowest first; a file may import from its own layer and the ones below. */
export const LAYERS: readonly string[] = [
  "net",
  "socks5",
  "resolver",
  "client",
  "translators",
  "gateway",
  "main.ts",
];

/** A file that `reaches` may not load, directly or through other files. */
export interface ForbiddenReach {
  /** Files whose path starts with this (a folder ends with `/`). */
  readonly from: string;
  /** Files (paths, or folders ending with `/`) none of `from` may reach. */
  readonly to: readonly string[];
  /** Why, for the message. */
  readonly because: string;
}

/** Reaches the layer order alone does not express. */
export const FORBIDDEN_REACHES: readonly ForbiddenReach[] = [
  {
    from: "gateway/upstream/",
    to: [
      "gateway/session.ts",
      "gateway/session_types.ts",
      "gateway/commands/_request_context.ts",
      "gateway/replies.ts",
      "gateway/commands/connect.ts",
      "gateway/commands/bind.ts",
      "gateway/commands/udp_associate.ts",
      "gateway/commands/resolve.ts",
      "gateway/commands/translate.ts",
    ],
    because: "the dialers sit below the session layer",
  },
];

/** Production files (repository-relative paths) and what each imports of the repository. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

const TOP = "scripts";

/** True for a production file: `.ts`, not a test, not under `tests/` or `bench/`. */
export function isProductionFile(path: string): boolean {
  return path.endsWith(".ts") && !path.endsWith("_test.ts") &&
    !path.startsWith("tests/") && !path.startsWith("bench/");
}

function isTestOrBenchmark(path: string): boolean {
  return path.endsWith("_test.ts") || path.startsWith("tests/") || path.startsWith("bench/");
}

/**
 * The layer index of `path` (`LAYERS.length` for `scripts/`), or `null` when it is in no
 * layer. Files at the repository root (`main.ts`, `deno.json`) are the `main.ts` layer.
 */
export function layerOf(path: string): number | null {
  const slash = path.indexOf("/");
  if (slash < 0) return LAYERS.indexOf("main.ts");
  const top = path.slice(0, slash);
  if (top === TOP) return LAYERS.length;
  const index = LAYERS.indexOf(top);
  return index < 0 || top === "main.ts" ? null : index;
}

function layerName(index: number): string {
  return index === LAYERS.length
    ? `${TOP}/`
    : LAYERS[index] === "main.ts"
    ? "main.ts"
    : `${LAYERS[index]}/`;
}

function matches(path: string, pattern: string): boolean {
  return pattern.endsWith("/") ? path.startsWith(pattern) : path === pattern;
}

/**
 * The violations in `graph`, one message each (empty when the graph keeps the layers): upward
 * imports, imports of non-production files, files in no layer, cycles and forbidden reaches.
 */
export function checkGraph(graph: ImportGraph): string[] {
  const problems: string[] = [];
  for (const [from, targets] of graph) {
    const fromLayer = layerOf(from);
    if (fromLayer === null) {
      problems.push(`${from} is in no layer: move it under one of ${LAYERS.join(", ")}`);
      continue;
    }
    // scripts/ may import anything.
    if (fromLayer === LAYERS.length) continue;
    for (const to of targets) {
      if (isTestOrBenchmark(to)) {
        problems.push(`${from} imports ${to}: production code may not import tests or benchmarks`);
        continue;
      }
      const toLayer = layerOf(to);
      if (toLayer === null || toLayer > fromLayer) {
        problems.push(
          `${from} imports ${to}: ${layerName(fromLayer)} may not import from ` +
            (toLayer === null ? "outside the layers" : layerName(toLayer)),
        );
      }
    }
  }
  for (const cycle of findCycles(graph)) {
    problems.push(`import cycle: ${[...cycle, cycle[0]].join(" -> ")}`);
  }
  for (const rule of FORBIDDEN_REACHES) {
    for (const from of [...graph.keys()].sort()) {
      if (!matches(from, rule.from)) continue;
      const path = pathTo(graph, from, (p) => rule.to.some((t) => matches(p, t)));
      if (path) problems.push(`${path.join(" -> ")}: ${rule.because}`);
    }
  }
  return problems;
}

/** The shortest import path from `start` to a file `found` accepts, or `null`. */
function pathTo(
  graph: ImportGraph,
  start: string,
  found: (path: string) => boolean,
): string[] | null {
  const previous = new Map<string, string | null>([[start, null]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const current = queue[i]!;
    for (const next of graph.get(current) ?? []) {
      if (previous.has(next)) continue;
      previous.set(next, current);
      if (found(next)) {
        const path = [next];
        for (let at = current as string | null; at !== null; at = previous.get(at) ?? null) {
          path.unshift(at);
        }
        return path;
      }
      queue.push(next);
    }
  }
  return null;
}

/**
 * One cycle per strongly connected component of more than one file (or a file importing
 * itself), as the files along it, starting at the component's first file in sort order.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  // Iterative Tarjan: the graph of a large repository would overflow a recursive one.
  for (const root of [...graph.keys()].sort()) {
    if (index.has(root)) continue;
    const work: { node: string; next: number }[] = [{ node: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work.at(-1)!;
      const targets = (graph.get(frame.node) ?? []).filter((t) => graph.has(t));
      if (frame.next < targets.length) {
        const to = targets[frame.next++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        const selfLoop = (graph.get(frame.node) ?? []).includes(frame.node);
        if (component.length > 1 || selfLoop) components.push(component.sort());
      }
    }
  }
  return components.map((component) => {
    const start = component[0]!;
    const inside = new Set(component);
    const sub = new Map(
      component.map((node) => [node, (graph.get(node) ?? []).filter((t) => inside.has(t))]),
    );
    // A path from the start to a file that imports the start again.
    return pathTo(sub, start, (p) => sub.get(p)!.includes(start)) ?? [start];
  });
}

/** The production files under `root`, repository-relative, sorted. */
export async function productionFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(`${root}/${dir}`)) {
      const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && isProductionFile(path)) files.push(path);
    }
  };
  await walk("");
  return files.sort();
}

/** The subset of `deno info --json` this script reads. */
interface DenoInfo {
  readonly modules: readonly {
    readonly specifier: string;
    readonly dependencies?: readonly {
      readonly code?: { readonly specifier?: string };
      readonly type?: { readonly specifier?: string };
    }[];
  }[];
}

/**
 * The import graph of the production files under `root`, from `deno info --json` over a
 * temporary module that imports them all (with `root`'s `deno.json`).
 *
 * @throws {Error} when `deno info` fails (a missing file, a syntax error).
 */
export async function loadGraph(root: string): Promise<ImportGraph> {
  const rootUrl = new URL(`file://${Deno.realPathSync(root)}/`);
  const files = await productionFiles(root);
  const dir = await Deno.makeTempDir({ prefix: "check_layers_" });
  try {
    const entry = `${dir}/all.ts`;
    await Deno.writeTextFile(
      entry,
      files.map((file) => `import ${JSON.stringify(new URL(file, rootUrl).href)};\n`).join(""),
    );
    const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", new URL("deno.json", rootUrl).pathname, entry],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!success) {
      throw new Error(`Cannot read the import graph: ${new TextDecoder().decode(stderr).trim()}`);
    }
    const info = JSON.parse(new TextDecoder().decode(stdout)) as DenoInfo;
    const relative = (specifier: string | undefined): string | null =>
      specifier?.startsWith(rootUrl.href)
        ? decodeURIComponent(specifier.slice(rootUrl.href.length))
        : null;
    const graph = new Map<string, string[]>(files.map((file) => [file, []]));
    for (const module of info.modules) {
      const from = relative(module.specifier);
      if (from === null || !graph.has(from)) continue;
      const targets = new Set<string>();
      for (const dependency of module.dependencies ?? []) {
        for (const specifier of [dependency.code?.specifier, dependency.type?.specifier]) {
          const to = relative(specifier);
          if (to !== null) targets.add(to);
        }
      }
      graph.set(from, [...targets].sort());
    }
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const root = Deno.args[0] ?? new URL("../", import.meta.url).pathname;
  const graph = await loadGraph(root);
  const problems = checkGraph(graph);
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    console.error(`Cannot keep the layers: ${problems.length} violation(s)`);
    Deno.exit(1);
  }
  console.log(`layers: ${graph.size} production files, no cycle, no upward import`);
}
