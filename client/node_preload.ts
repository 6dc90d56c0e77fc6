/**
 * The Node `--import` preload, source of the bundled `node_preload.mjs` (Node 20 runs no
 * TypeScript; rebuild with `deno run -A client/_build_node_preload.ts`, checked by
 * `socksify_test.ts`). It reads its configuration from
 * the `DUALGATE_SOCKSIFY` environment variable (JSON, see {@linkcode PreloadConfig}) and patches
 * `node:dns` and `node:net`. Without the variable it does nothing.
 *
 * @module
 */

import process from "node:process";
import { installNodePatches } from "./node_patches.ts";
import { CONFIG_ENV, loadPreloadConfig, type PreloadConfig } from "./preload_config.ts";

const text = process.env[CONFIG_ENV];
if (text) {
  const loaded = loadPreloadConfig(JSON.parse(text) as PreloadConfig);
  installNodePatches(loaded);
}
