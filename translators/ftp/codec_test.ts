import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import {
  endsReply,
  format227,
  format228,
  format229,
  format522,
  formatEprt,
  formatHostPort,
  formatLongHostPort,
  parse227,
  parse228,
  parse229,
  parse522,
  parseCommand,
  parseEprt,
  parseLprt,
  parsePort,
  parseReplyLine,
  passivePort,
  sanitizeReplyLine,
} from "./codec.ts";

const v4 = (text: string, port: number) => ({ address: parseIp(text)!, port });

Deno.test("parseCommand() splits the verb, strips Telnet bytes and a lone CR", () => {
  assert.deepEqual(parseCommand("epsv all"), {
    ok: true,
    command: { verb: "EPSV", argument: "all", text: "EPSV all" },
  });
  assert.deepEqual(parseCommand("\xff\xf4\xff\xf2ABOR"), {
    ok: true,
    command: { verb: "ABOR", argument: "", text: "ABOR" },
  });
  assert.deepEqual(parseCommand("ABOR\r"), {
    ok: true,
    command: { verb: "ABOR", argument: "", text: "ABOR" },
  });
  assert.deepEqual(parseCommand("XSHA256 a b"), {
    ok: true,
    command: { verb: "XSHA256", argument: "a b", text: "XSHA256 a b" },
  });
});

Deno.test("parseCommand() refuses lines that a server could read as a hidden command", () => {
  const refused = (line: string) => {
    const parsed = parseCommand(line);
    assert.equal(parsed.ok, false, JSON.stringify(line));
    return parsed.ok ? "" : parsed.reason;
  };
  assert.equal(refused(""), "Empty command");
  assert.equal(refused(" PORT 1,2,3,4,0,21"), "Syntax error, command unrecognized");
  assert.equal(refused("\tEPRT |1|1.2.3.4|21|"), "Control character in command");
  assert.equal(refused("PORT\t1,2,3,4,0,21"), "Control character in command");
  assert.equal(refused("NOOP\rPORT 1,2,3,4,0,21"), "Control character in command");
  assert.equal(refused("NOOP x\rPORT 1,2,3,4,0,21"), "Control character in command");
  assert.equal(refused("RETR a\0PORT 1,2,3,4,0,21"), "Control character in command");
  // Telnet-aware servers drop IAC NOP inside a line: "PO\xff\xf1RT" would be PORT to them.
  assert.equal(refused("PO\xff\xf1RT 1,2,3,4,0,21"), "Syntax error, command unrecognized");
  assert.equal(refused("PORT,1,2,3,4,0,21"), "Syntax error, command unrecognized");
  assert.equal(refused("NO"), "Syntax error, command unrecognized");
  assert.equal(refused("VERYLONGVERB x"), "Syntax error, command unrecognized");
});

Deno.test("sanitizeReplyLine() turns control bytes inside a server line into spaces", () => {
  assert.equal(
    sanitizeReplyLine("200 ok\r227 Entering Passive Mode (1,2,3,4,0,22)"),
    "200 ok 227 Entering Passive Mode (1,2,3,4,0,22)",
  );
  assert.equal(sanitizeReplyLine("200 a\0b\tc\x7f"), "200 a b\tc ");
  assert.equal(sanitizeReplyLine("226 Transfer complete"), "226 Transfer complete");
});

Deno.test("parseReplyLine() and endsReply() read reply framing", () => {
  assert.deepEqual(parseReplyLine("211-Features:"), {
    code: 211,
    continues: true,
    text: "Features:",
  });
  assert.deepEqual(parseReplyLine("226 done"), { code: 226, continues: false, text: "done" });
  assert.deepEqual(parseReplyLine("226"), { code: 226, continues: false, text: "" });
  assert.equal(parseReplyLine("x"), null);
  assert.equal(parseReplyLine(" AUTH TLS"), null);
  assert.equal(parseReplyLine("2261 no"), null);
  assert.ok(endsReply("211 End", 211));
  assert.ok(endsReply("211", 211));
  assert.ok(!endsReply("211-more", 211));
  assert.ok(!endsReply("220 other", 211));
});

Deno.test("parsePort() and formatHostPort() handle h1..h4,p1,p2", () => {
  const endpoint = parsePort(" 192,0,2,1,195,80 ");
  assert.equal(formatIp(endpoint!.address), "192.0.2.1");
  assert.equal(endpoint!.port, 50000);
  assert.equal(formatHostPort(endpoint!), "192,0,2,1,195,80");
  for (const bad of ["192,0,2,1,195", "192,0,2,1,195,256", "a,b,c,d,e,f", "1,2,3,4,5,6,7", ""]) {
    assert.equal(parsePort(bad), null, bad);
  }
  assert.throws(() => formatHostPort(v4("2001:db8::1", 1)), TypeError);
});

Deno.test("parseEprt() and formatEprt() handle both families, any delimiter, bad input", () => {
  const a = parseEprt("|1|132.235.1.2|6275|");
  assert.equal(a?.kind, "endpoint");
  const b = parseEprt("!2!1080::8:800:200C:417A!5282!");
  assert.ok(b?.kind === "endpoint");
  assert.equal(formatIp(b.endpoint.address), "1080::8:800:200c:417a");
  assert.deepEqual(parseEprt("|9|x|1|"), { kind: "unsupported-family", family: 9 });
  for (
    const bad of [
      "|1|1.2.3.4|0|",
      "|1|1.2.3.4|70000|",
      "|1|::1|21|",
      "|2|1.2.3.4|21|",
      "|1|1.2.3.4|21",
      " 1 1.2.3.4 21 ",
      "|1|1.2.3.4|21|x|",
    ]
  ) {
    assert.equal(parseEprt(bad), null, bad);
  }
  assert.equal(formatEprt(v4("192.0.2.1", 50000)), "|1|192.0.2.1|50000|");
  assert.equal(formatEprt(v4("2001:db8::1", 50000)), "|2|2001:db8::1|50000|");
});

Deno.test("parseLprt() and formatLongHostPort() handle af 4 and 6, and refuse wrong lengths", () => {
  const six = "6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,230,21";
  const parsed = parseLprt(six);
  assert.ok(parsed?.kind === "endpoint");
  assert.equal(formatIp(parsed.endpoint.address), "::1");
  assert.equal(parsed.endpoint.port, 230 * 256 + 21);
  assert.equal(formatLongHostPort(parsed.endpoint), six);
  assert.equal(formatLongHostPort(v4("127.0.0.1", 35765)), "4,4,127,0,0,1,2,139,181");
  assert.deepEqual(parseLprt("5,4,1,2,3,4,2,0,21"), { kind: "unsupported-family", family: 5 });
  for (const bad of ["4,16,1,2,3,4,2,0,21", "4,4,1,2,3,4,3,0,0,21", "4,4,1,2,3,4,2,0", "4"]) {
    assert.equal(parseLprt(bad), null, bad);
  }
});

Deno.test("parse227() scans for six numbers and refuses the malformed IPv6 forms", () => {
  assert.equal(parse227("Entering Passive Mode (127,0,0,1,156,83).")?.port, 156 * 256 + 83);
  assert.equal(parse227("Data transfer will passively listen to 127,0,0,1,4,51")?.port, 1075);
  assert.equal(parse227("Entering passive mode. 0,0,0,0,156,120")?.port, 156 * 256 + 120);
  assert.equal(parse227("Entering Passive Mode (1,157,242)."), null);
  assert.equal(parse227("Entering passive mode (::1,158,242)."), null);
  assert.equal(parse227("(1,2,3,4,5,256)"), null);
  assert.equal(format227(v4("192.0.2.1", 50000)), "227 Entering Passive Mode (192,0,2,1,195,80).");
});

Deno.test("parse228() and format228() handle long passive replies", () => {
  const ep = parse228("Entering Long Passive Mode (4,4,127,0,0,1,2,139,181)");
  assert.equal(ep?.port, 35765);
  assert.equal(
    parse228("Entering Long Passive Mode (6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,176,131)")?.port,
    176 * 256 + 131,
  );
  assert.equal(parse228("Entering Long Passive Mode (4,4,1,2)"), null);
  assert.equal(
    format228(v4("127.0.0.1", 35765)),
    "228 Entering Long Passive Mode (4,4,127,0,0,1,2,139,181)",
  );
});

Deno.test("parse229() accepts any delimiter and refuses mismatched ones", () => {
  assert.equal(parse229("Entering Extended Passive Mode (|||6446|)"), 6446);
  assert.equal(parse229("Extended Passive mode OK (|||40241|)"), 40241);
  assert.equal(parse229("Entering extended passive mode (!!!1234!)."), 1234);
  assert.equal(parse229("(|||0|)"), null);
  assert.equal(parse229("(||!1234|)"), null);
  assert.equal(parse229("EPSV ALL ok."), null);
  assert.equal(format229(6446), "229 Entering Extended Passive Mode (|||6446|)");
});

Deno.test("passivePort() takes the port of 227, 228 or 229 after any passive command", () => {
  assert.equal(passivePort(229, "x (|||2000|)"), 2000);
  assert.equal(passivePort(228, "x (6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,7,208)"), null);
  assert.equal(passivePort(228, "x (6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,7,208)"), 2000);
  assert.equal(passivePort(227, "x (0,0,0,0,7,208)."), 2000);
  assert.equal(passivePort(200, "EPSV ALL ok."), null);
  assert.equal(passivePort(227, "(1,2,3,4,0,0)"), null);
});

Deno.test("parse522() and format522() read and write the protocol list", () => {
  assert.deepEqual(parse522("Network protocol not supported, use (1,2)"), [1, 2]);
  assert.deepEqual(parse522("Network protocol not supported (use 2)."), [2]);
  assert.equal(parse522("Bad network protocol."), null);
  assert.equal(format522([1]), "522 Network protocol not supported, use (1)");
});

Deno.test("parseEprt(), parseLprt() and parse228() return IPv4-mapped addresses as IPv4", () => {
  const eprt = parseEprt("|2|::ffff:127.0.0.1|50000|");
  assert.ok(eprt?.kind === "endpoint");
  assert.deepEqual(eprt.endpoint, v4("127.0.0.1", 50000));
  const lprt = parseLprt("6,16,0,0,0,0,0,0,0,0,0,0,255,255,10,1,2,3,2,195,80");
  assert.ok(lprt?.kind === "endpoint");
  assert.deepEqual(lprt.endpoint, v4("10.1.2.3", 50000));
  assert.deepEqual(
    parse228("228 Entering Long Passive Mode (6,16,0,0,0,0,0,0,0,0,0,0,255,255,0,0,0,0,2,195,80)"),
    v4("0.0.0.0", 50000),
  );
});
