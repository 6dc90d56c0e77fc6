/**
 * The schema's `.default()`s are the one source of the config defaults; everything that
 * documents a default is checked against them here: `DEFAULT_CONFIG_YAML` (what `serve` runs
 * without `--config`), the README's config tables (`[default]` markers) and its prose
 * (`key` ... (default N)), and the top-level keys listed in `mod.ts`'s doc.
 */
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import { parseIp } from "../../net/address.ts";
import { isTrustedProxy } from "../listen/proxy_trust.ts";
import { DEFAULT_CONFIG_YAML, normalizeConfig, parseConfig } from "./load.ts";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
const MOD_TS = await Deno.readTextFile(new URL("./mod.ts", import.meta.url));

/** The defaults in YAML form: what the schema fills in for an empty document. */
const DEFAULTS = normalizeConfig(parseConfig(""));

/**
 * The defaults, with those of the optional parts too (`routes[].chain[].strategy`,
 * `admin.listen`): one route with one `{ any }` hop given only its URL, one FTP translator given
 * only its type, an `admin:` with only a token digest (for `admin.auth.users`).
 */
const SAMPLE = normalizeConfig(parseConfig(`
rules: [{ action: allow }]
routes: [{ chain: [{ any: ["socks5://192.0.2.1:1080"] }] }]
translators: [{ type: ftp }]
admin: { auth: { token_sha256: "${"0".repeat(64)}" } }
`));

/** The value at a README key (`resolver.timeout`, `routes[].chain[].strategy`). */
function valueAt(key: string): unknown {
  let value: unknown = SAMPLE;
  for (const part of key.split(".")) {
    const list = part.endsWith("[]");
    const name = list ? part.slice(0, -2) : part;
    if (value === null || typeof value !== "object" || !(name in value)) {
      assert.fail(`README documents a default for "${key}", which the config does not have`);
    }
    value = (value as Record<string, unknown>)[name];
    if (list) {
      assert.ok(Array.isArray(value) && value.length > 0, `${key}: ${name} is not a list`);
      value = value[0];
    }
  }
  return value;
}

/** A documented value as text or a number, compared with the YAML form's value. */
function assertDocumented(key: string, documented: unknown, where: string): void {
  const actual = valueAt(key);
  const same = isDeepStrictEqual(actual, documented) ||
    (typeof documented === "string" && actual !== null && typeof actual !== "object" &&
      String(actual) === documented) ||
    (typeof documented === "string" && isRange(actual) &&
      `${actual.from}-${actual.to}` === documented);
  assert.ok(
    same,
    `${where}: ${key} is documented as ${JSON.stringify(documented)}, the schema's default is ` +
      JSON.stringify(actual),
  );
}

function isRange(value: unknown): value is { from: number; to: number } {
  return value !== null && typeof value === "object" && "from" in value && "to" in value;
}

/** Prose markers, and the YAML-form value each stands for. */
const PROSE: Record<string, unknown> = {
  "none": {},
  "system configuration": [],
};

interface TableDefault {
  readonly key: string;
  readonly marker: string;
  readonly value: unknown;
}

/** Every `[default]` marker in the README's config tables (rows whose first cell is a key). */
function tableDefaults(): TableDefault[] {
  const found: TableDefault[] = [];
  for (const line of README.split("\n")) {
    const row = line.match(/^\| `([a-z0-9_.\[\]]+)` +\| (.*) \|$/);
    if (!row) continue;
    const [, key, cell] = row as unknown as [string, string, string];
    let rest = cell;
    const take = (pattern: RegExp, value: (m: RegExpExecArray) => unknown) => {
      for (const m of [...rest.matchAll(pattern)]) {
        found.push({ key, marker: m[0], value: value(m) });
      }
      rest = rest.replace(pattern, " ");
    };
    take(/`([^`]+)` \[default\]/g, (m) => m[1]);
    take(/\[(`[^`]+`(?:, `[^`]+`)*)\]/g, (m) => {
      const items = [...m[1]!.matchAll(/`([^`]+)`/g)].map((item) => item[1]!);
      return items.length === 1 ? items[0] : items;
    });
    rest = rest.replace(/`[^`]*`/g, " ");
    take(/\[(\d+(?:\.\d+)?)\]/g, (m) => Number(m[1]));
    take(/\[([a-z][a-z ]*)\]/g, (m) => m[1]!);
    assert.doesNotMatch(rest, /[\[\]]/, `README row ${key}: a marker this test cannot read`);
  }
  return found;
}

Deno.test("DEFAULT_CONFIG_YAML spells out exactly the schema's defaults", () => {
  // The YAML form of the parsed defaults, key for key: no default missing, none different.
  // `resolver.stand_ins` depends on `workers` (never with more than one, where cross-family is
  // refused), so the default YAML names it in a comment: spelled out, it would refuse --workers.
  const { stand_ins: standIns, ...resolver } = DEFAULTS.resolver as Record<string, unknown>;
  assert.equal(standIns, "cross-family");
  assert.match(DEFAULT_CONFIG_YAML, /^ {2}# stand_ins: cross-family .*never.*workers > 1/m);
  assert.deepEqual(YAML.parse(DEFAULT_CONFIG_YAML), { ...DEFAULTS, resolver });
});

Deno.test("the README's config tables document the schema's defaults", () => {
  const found = tableDefaults();
  assert.ok(found.length >= 28, `only ${found.length} markers found`);
  for (const { key, marker, value } of found) {
    if (key === "listen[].trusted_proxies") {
      // Not a value of the config: an absent list means "loopback only" (gateway/listen/proxy_trust.ts).
      assert.equal(value, "loopback only");
      assert.ok(isTrustedProxy(parseIp("127.0.0.1")!) && isTrustedProxy(parseIp("::1")!));
      assert.ok(!isTrustedProxy(parseIp("192.0.2.1")!) && !isTrustedProxy(parseIp("2001:db8::1")!));
      continue;
    }
    const documented = typeof value === "string" && value in PROSE ? PROSE[value] : value;
    assertDocumented(key, documented, `README table marker ${marker}`);
  }
  // Every default of the default config is in a table (the exceptions are empty collections
  // whose rows say what an entry is rather than give a default).
  const documented = new Set(found.map(({ key }) => key));
  const undocumented = leaves(DEFAULTS).filter((key) =>
    !documented.has(key) && !["auth.users", "resolver.hosts"].includes(key)
  );
  assert.deepEqual(undocumented, [], "defaults without a README table row and [marker]");
});

Deno.test("the README's prose documents the schema's defaults", () => {
  const text = README.replace(/\s+/g, " ");
  // `udp.idle` seconds (default 120), `limits.auth_failures_per_minute` (N, default 10).
  const prose = [
    ...text.matchAll(/`([a-z_]+(?:\.[a-z_]+)+)`[^`()]{0,30}\((?:[^()]*?, )?default (\d+)/g),
  ];
  assert.ok(prose.length >= 5, `only ${prose.length} prose defaults found`);
  for (const m of prose) assertDocumented(m[1]!, Number(m[2]), `README prose "${m[0]}"`);
  // The FTP example's comments: `key: value # ... (default X)`.
  const ftp = README.match(/```yaml\ntranslators:\n {2}- type: ftp\n([\s\S]*?)```/)?.[1];
  assert.ok(ftp, "the FTP example is in the README");
  const comments = [...ftp.matchAll(/^ {4}([a-z_]+): .*\(default ([^)]+)\)$/gm)];
  assert.ok(comments.length >= 4, ftp);
  for (const m of comments) {
    const documented = m[2]!.startsWith("[") ? YAML.parse(m[2]!) : m[2]!;
    assertDocumented(`translators[].${m[1]}`, documented, `README FTP example "${m[0].trim()}"`);
  }
  // "max_line_bytes (512..65536, default 4096"
  const lineBytes = text.match(/`max_line_bytes` \([^()]*default (\d+)/);
  assert.ok(lineBytes);
  assertDocumented("translators[].max_line_bytes", Number(lineBytes[1]), "README translators");
});

Deno.test("mod.ts's doc lists exactly the config's top-level keys", () => {
  const sentence = MOD_TS.match(/Top-level keys[^:]*:([^.]*)\./)?.[1];
  assert.ok(sentence, "mod.ts names the top-level keys");
  const listed = [...sentence.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
  assert.deepEqual([...listed].sort(), Object.keys(SAMPLE).sort());
});

/** Dotted paths of the non-object values (and empty objects) of a YAML-form config. */
function leaves(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [prefix];
  const entries = Object.entries(value);
  if (entries.length === 0) return [prefix];
  return entries.flatMap(([key, inner]) => leaves(inner, prefix === "" ? key : `${prefix}.${key}`));
}
