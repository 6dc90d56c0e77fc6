import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { escapeLogText, lineFormatter } from "./log.ts";

const HOSTILE = "x\nINFO forged line\x1b[2J\r\t\x00\x7f\x85\x9b\u2028\u2029\u202e\u2066\\";
// No C0, DEL, C1, line/paragraph separator or bidi control may reach a line raw.
const RAW_CONTROL =
  // deno-lint-ignore no-control-regex
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function record(value: unknown): LogRecord {
  return {
    category: ["dualgate", "conn"],
    level: "warning",
    message: ["rejected ", value, " (", value, ")"],
    rawMessage: "rejected {dest} ({reason})",
    properties: { dest: value, reason: value },
    timestamp: 0,
  };
}

Deno.test("escapeLogText() writes control characters, separators and bidi controls as escapes", () => {
  assert.equal(
    escapeLogText(HOSTILE),
    "x\\nINFO forged line\\x1b[2J\\r\\t\\x00\\x7f\\x85\\x9b\\u2028\\u2029\\u202e\\u2066\\\\",
  );
  assert.equal(escapeLogText("v6.dualgate.example:443 ünïcödé"), "v6.dualgate.example:443 ünïcödé");
  // A literal backslash sequence stays distinguishable from an escaped control character.
  assert.notEqual(escapeLogText("a\\nb"), escapeLogText("a\nb"));
});

Deno.test('lineFormatter("text") writes one line with every value escaped', () => {
  const format = lineFormatter("text");
  for (const value of [HOSTILE, new Error(HOSTILE), { name: HOSTILE }]) {
    const line = format(record(value));
    assert.ok(line.endsWith("\n"));
    const body = line.slice(0, -1);
    assert.ok(!body.includes("\n"), JSON.stringify(line));
    assert.ok(!RAW_CONTROL.test(body), JSON.stringify(line));
    assert.match(body, /\[WRN\] dualgate·conn: rejected /);
  }
  assert.match(format(record(HOSTILE)), /rejected x\\nINFO forged line\\x1b\[2J/);
});

Deno.test('lineFormatter("json") writes one line, no raw separator or bidi control, same data', () => {
  const format = lineFormatter("json");
  const line = format(record(HOSTILE));
  assert.ok(line.endsWith("\n"));
  const body = line.slice(0, -1);
  assert.ok(!body.includes("\n"));
  assert.ok(!RAW_CONTROL.test(body), JSON.stringify(line));
  assert.equal(JSON.parse(body).properties.dest, HOSTILE);
});
