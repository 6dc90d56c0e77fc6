import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import {
  formatDcc,
  formatDccAddress,
  isDccBody,
  joinCtcp,
  mentionsDcc,
  parseDcc,
  parseDccAddress,
  parseTextMessage,
  splitCtcp,
} from "./codec.ts";

Deno.test("DCC addresses: IPv4 as a 32-bit integer, IPv6 and dotted quads as text", () => {
  const v4 = parseDccAddress("3221225986");
  assert.equal(v4 && formatIp(v4), "192.0.2.2");
  assert.equal(formatDccAddress(parseIp("192.0.2.2")!), "3221225986");
  assert.equal(formatDccAddress(parseIp("255.255.255.255")!), "4294967295");
  assert.equal(formatDccAddress(parseIp("0.0.0.1")!), "1");
  assert.equal(formatIp(parseDccAddress("0")!), "0.0.0.0");
  assert.equal(formatIp(parseDccAddress("4294967295")!), "255.255.255.255");
  assert.equal(formatIp(parseDccAddress("2001:db8:1::2")!), "2001:db8:1::2");
  assert.equal(formatDccAddress(parseIp("2001:db8:1::2")!), "2001:db8:1::2");
  assert.equal(formatIp(parseDccAddress("198.51.100.2")!), "198.51.100.2");
  // An IPv4-mapped address is the IPv4 address, for every check.
  assert.deepEqual(parseDccAddress("::ffff:127.0.0.1"), parseIp("127.0.0.1"));
});

Deno.test("DCC addresses: overflowing, signed, hexadecimal and named forms are refused", () => {
  // 2^32 + 127.0.0.1 wraps to loopback in clients that truncate.
  for (
    const text of [
      "4294967296",
      "6442450945",
      "00000000002130706433",
      "-1",
      "+2130706433",
      "0x7f000001",
      "127.1",
      "[::1]",
      "localhost",
      "",
      "1e9",
      " 2130706433",
    ]
  ) {
    assert.equal(parseDccAddress(text), null, text);
  }
});

Deno.test("IRC text messages: tags, prefix, command in any case, trailing text", () => {
  assert.deepEqual(parseTextMessage("PRIVMSG bob :\x01DCC CHAT chat 1 2\x01"), {
    head: "PRIVMSG bob :",
    command: "PRIVMSG",
    text: "\x01DCC CHAT chat 1 2\x01",
  });
  assert.deepEqual(parseTextMessage("@time=x;a=b :alice!a@h privmsg bob :hi there"), {
    head: "@time=x;a=b :alice!a@h privmsg bob :",
    command: "PRIVMSG",
    text: "hi there",
  });
  assert.equal(parseTextMessage(":alice NOTICE bob :x")?.command, "NOTICE");
  assert.equal(parseTextMessage("TOPIC #c :\x01DCC SEND a 1 2\x01"), null);
  assert.equal(parseTextMessage("PRIVMSG bob \x01DCC"), null, "no trailing parameter");
  assert.equal(parseTextMessage("PRIVMSG  bob :x"), null, "two spaces");
  assert.equal(parseTextMessage(":alice"), null);
});

Deno.test("CTCP segments split and join back byte for byte, unclosed ones too", () => {
  for (
    const text of [
      "plain",
      "\x01ACTION waves\x01",
      "a\x01DCC SEND f 1 2 3\x01b\x01VERSION\x01",
      "\x01DCC CHAT chat 1 2",
      "",
    ]
  ) {
    assert.equal(joinCtcp(splitCtcp(text)), text);
  }
  assert.deepEqual(splitCtcp("x\x01DCC CHAT chat 1 2"), [
    { kind: "text", text: "x" },
    { kind: "ctcp", segment: { body: "DCC CHAT chat 1 2", closed: false } },
  ]);
});

Deno.test("mentionsDcc and isDccBody catch DCC in any case, after blanks", () => {
  assert.ok(mentionsDcc("PRIVMSG b :\x01DCC SEND f 1 2\x01"));
  assert.ok(mentionsDcc("PRIVMSG b :\x01 dcc send f 1 2\x01"));
  assert.ok(mentionsDcc("PRIVMSG b :hi \x01\tDcC CHAT"));
  assert.ok(!mentionsDcc("PRIVMSG b :DCC SEND without CTCP"));
  assert.ok(isDccBody(" dcc SEND x"));
  assert.ok(isDccBody("DCC"));
  assert.ok(!isDccBody("DCCX SEND"));
  assert.ok(!isDccBody("ACTION DCC"));
});

Deno.test("DCC SEND: plain and quoted file names, size and passive token", () => {
  assert.deepEqual(parseDcc("DCC SEND file.bin 3221225986 5000 1048576"), {
    ok: true,
    request: {
      type: "SEND",
      argument: "file.bin",
      address: parseIp("192.0.2.2"),
      port: 5000,
      rest: ["1048576"],
    },
  });
  const quoted = parseDcc('dcc send "my file.txt" 2001:db8:1::2 5001 12');
  assert.ok(quoted.ok);
  assert.equal(quoted.request.argument, '"my file.txt"');
  assert.equal(
    formatDcc(quoted.request),
    'DCC SEND "my file.txt" 2001:db8:1::2 5001 12',
  );
  const passive = parseDcc("DCC SEND f.bin 3221225986 0 99 42");
  assert.ok(passive.ok && passive.request.type === "SEND");
  assert.equal(passive.request.port, 0);
  assert.deepEqual(passive.request.rest, ["99", "42"]);
  assert.equal(formatDcc(passive.request), "DCC SEND f.bin 3221225986 0 99 42");
  assert.ok(parseDcc("DCC SEND f 1 5000").ok, "size is optional");
});

Deno.test("DCC CHAT, RESUME and ACCEPT parse and format", () => {
  const chat = parseDcc("DCC CHAT chat 2130706433 6000");
  assert.ok(chat.ok);
  assert.equal(formatDcc(chat.request), "DCC CHAT chat 2130706433 6000");
  const resume = parseDcc('DCC RESUME "a b" 5000 1024');
  assert.deepEqual(resume, {
    ok: true,
    request: { type: "RESUME", argument: '"a b"', port: 5000, rest: ["1024"] },
  });
  const accept = parseDcc("DCC ACCEPT file 0 1024 7");
  assert.ok(accept.ok);
  assert.equal(formatDcc(accept.request), "DCC ACCEPT file 0 1024 7");
});

Deno.test("DCC requests the translator cannot re-form exactly are refused", () => {
  for (
    const body of [
      "DCC",
      "DCC SEND",
      "DCC SEND f",
      "DCC SEND f 3221225986",
      "DCC SEND f 3221225986 70000 1",
      "DCC SEND f 0x7f000001 5000 1",
      "DCC SEND f 4294967296 5000 1",
      "DCC SEND f 3221225986 5000 1 2 3",
      "DCC SEND f 3221225986 5000 big",
      "DCC SEND f 3221225986 0 1",
      'DCC SEND "unclosed 3221225986 5000 1',
      'DCC SEND "a"b 3221225986 5000 1',
      "DCC SEND f\t3221225986 5000 1",
      "DCC SEND f 3221225986 5000\r1",
      "DCC XMIT f 3221225986 5000",
      "DCC TSEND f 3221225986 5000 1",
      "DCC RESUME f 5000",
      "DCC RESUME f x 5000",
    ]
  ) {
    assert.equal(parseDcc(body).ok, false, JSON.stringify(body));
  }
});
