import assert from "node:assert/strict";
import { type IpEndpoint, parseIp } from "../../net/address.ts";
import { ftpTranslatorFactory } from "../ftp/mod.ts";
import { createTranslators, registerTranslator, translatorConfigSchema } from "../registry.ts";
import { lineOf, recordingBroker, recordingIo, testContext } from "../testing.ts";
import {
  formatIrcDccOptions,
  IRC_MAX_LINE_BYTES,
  ircDccOptionsSchema,
  ircDccTranslatorFactory,
} from "./mod.ts";

const ip = (text: string) => parseIp(text)!;

/** An IPv4 client reaching an IPv6 IRC server. */
const ctx = testContext({
  id: "d",
  client: { address: ip("192.0.2.2"), port: 40000 },
  clientSideLocal: { address: ip("192.0.2.1"), port: 1080 },
  server: { address: ip("2001:db8:2::2"), port: 6667 },
  serverSideLocal: { address: ip("2001:db8:2::1"), port: 50001 },
  target: { address: { family: "name", name: "irc.example" }, port: 6667 },
});

function start(overrides: Record<string, unknown> = {}) {
  const translator = ircDccTranslatorFactory.create({
    ...ircDccOptionsSchema.parse(overrides),
    ports: [6667],
    maxLineBytes: IRC_MAX_LINE_BYTES,
  });
  // Listeners at the gateway's address of their side, ports from 50000, that never see a peer.
  let nextPort = 50000;
  const recording = recordingBroker(() => true, {
    listenAt: ({ side }) => ({
      address: (side === "client" ? ctx.clientSideLocal : ctx.serverSideLocal).address,
      port: nextPort++,
    }),
  });
  const session = translator.startSession(ctx, recording.broker);
  const { io, toServer, toClient } = recordingIo();
  return {
    translator,
    listens: recording.listens,
    expects: recording.expected,
    refusals: recording.calls.filter((call) => call.startsWith("refuse ")),
    toServer,
    toClient,
    client: (text: string) => session.onClientLine!(lineOf(text), io),
    server: (text: string) => session.onServerLine!(lineOf(text), io),
    close: () => session.close!(),
  };
}

Deno.test("irc-dcc claims cross-family sessions; the framework applies its ports", () => {
  const { translator, close } = start();
  assert.equal(translator.match(ctx), "claim");
  const same = { ...ctx, server: { address: ip("198.51.100.2"), port: 6667 } };
  assert.equal(translator.match(same), "decline");
  assert.equal(start({ same_family: "translate" }).translator.match(same), "claim");
  return close();
});

Deno.test("an irc-dcc entry gets port 6667 and a line cap that fits IRCv3 message tags", () => {
  const schema = translatorConfigSchema([
    registerTranslator(ircDccTranslatorFactory),
    registerTranslator(ftpTranslatorFactory),
  ]);
  const [irc, ftp, small] = createTranslators(
    schema.array().parse([{ type: "irc-dcc" }, { type: "ftp" }, {
      type: "irc-dcc",
      max_line_bytes: 1024,
    }]),
    [registerTranslator(ircDccTranslatorFactory), registerTranslator(ftpTranslatorFactory)],
  );
  assert.deepEqual([...irc!.ports], [6667]);
  // 8191 bytes of tags and a 512-byte message; other plugins keep the framework's 4096.
  assert.equal(irc!.maxLineBytes, 8703);
  assert.equal(ftp!.maxLineBytes, 4096);
  assert.equal(small!.maxLineBytes, 1024);
});

Deno.test("a client's DCC SEND names the gateway's listener facing the server", async () => {
  const s = start();
  assert.equal(await s.client("PRIVMSG bob :hello"), "forward");
  assert.equal(
    await s.client('PRIVMSG bob :\x01DCC SEND "a b.bin" 3221225986 5000 1048576\x01'),
    "consumed",
  );
  assert.deepEqual(s.toServer, [
    'PRIVMSG bob :\x01DCC SEND "a b.bin" 2001:db8:2::1 50000 1048576\x01',
  ]);
  assert.equal(s.listens[0]?.side, "server");
  // The unspecified address means the client's own; CHAT too; an unclosed CTCP gets closed.
  await s.client("PRIVMSG bob :\x01dcc chat chat 0 5001");
  assert.equal(s.toServer[1], "PRIVMSG bob :\x01DCC CHAT chat 2001:db8:2::1 50001\x01");
  assert.deepEqual(s.refusals, []);
  await s.close();
});

Deno.test("a peer's DCC offer names the gateway's listener facing the client", async () => {
  const s = start();
  await s.server(":bob!b@h PRIVMSG alice :\x01DCC SEND f.bin 2001:db8:1::2 6000 99\x01");
  assert.deepEqual(s.toClient, [
    ":bob!b@h PRIVMSG alice :\x01DCC SEND f.bin 3221225985 50000 99\x01",
  ]);
  assert.equal(s.listens[0]?.side, "client");
  assert.deepEqual(s.listens[0]?.peer, ctx.client.address);
  // A SOCKS client reaches the advertised endpoint through a CONNECT the gateway expects.
  assert.deepEqual(s.expects[0]?.targets, [{ address: ip("192.0.2.1"), port: 50000 }]);
  await s.close();
});

Deno.test("RESUME and ACCEPT ports are mapped between the two sides", async () => {
  const s = start();
  await s.server(":bob PRIVMSG alice :\x01DCC SEND f.bin 2001:db8:1::2 6000 99\x01");
  await s.client("PRIVMSG bob :\x01DCC RESUME f.bin 50000 10\x01");
  assert.equal(s.toServer[0], "PRIVMSG bob :\x01DCC RESUME f.bin 6000 10\x01");
  await s.server(":bob PRIVMSG alice :\x01DCC ACCEPT f.bin 6000 10\x01");
  assert.equal(s.toClient[1], ":bob PRIVMSG alice :\x01DCC ACCEPT f.bin 50000 10\x01");
  // The client's own offer, the other way round.
  await s.client("PRIVMSG bob :\x01DCC SEND g.bin 3221225986 7000 99\x01");
  await s.server(":bob PRIVMSG alice :\x01DCC RESUME g.bin 50001 20\x01");
  assert.equal(s.toClient[2], ":bob PRIVMSG alice :\x01DCC RESUME g.bin 7000 20\x01");
  await s.client("PRIVMSG bob :\x01DCC ACCEPT g.bin 7000 20\x01");
  assert.equal(s.toServer[2], "PRIVMSG bob :\x01DCC ACCEPT g.bin 50001 20\x01");
  await s.close();
});

Deno.test("passive DCC: the address is the gateway's, port 0 and the token stay, nothing opens", async () => {
  const s = start();
  await s.client("PRIVMSG bob :\x01DCC SEND f.bin 3221225986 0 99 17\x01");
  assert.equal(s.toServer[0], "PRIVMSG bob :\x01DCC SEND f.bin 2001:db8:2::1 0 99 17\x01");
  assert.equal(s.listens.length, 0);
  // The peer answers with its own listener and the token: an offer like any other.
  await s.server(":bob PRIVMSG alice :\x01DCC SEND f.bin 2001:db8:1::2 6001 99 17\x01");
  assert.equal(s.toClient[0], ":bob PRIVMSG alice :\x01DCC SEND f.bin 3221225985 50000 99 17\x01");
  await s.server(":bob PRIVMSG alice :\x01DCC CHAT chat 2001:db8:1::2 0 5\x01");
  assert.equal(s.toClient[1], ":bob PRIVMSG alice :\x01DCC CHAT chat 3221225985 0 5\x01");
  assert.equal(s.listens.length, 1);
  await s.close();
});

Deno.test("a listener facing the server takes only a peer the rules allow, never the gateway or loopback", async () => {
  const s = start();
  await s.client("PRIVMSG bob :\x01DCC SEND f.bin 3221225986 5000 1\x01");
  const accepts = s.listens[0]?.peer;
  assert.equal(typeof accepts, "function");
  const take = (text: string, port = 40000) =>
    (accepts as (peer: IpEndpoint) => boolean)({ address: ip(text), port });
  assert.equal(take("2001:db8:1::2"), true);
  for (const text of ["::1", "127.0.0.1", "::", "2001:db8:2::1", "192.0.2.1", "ff02::1"]) {
    assert.equal(take(text), false, text);
  }
  await s.close();
});

Deno.test("irc-dcc options: defaults, YAML paths of bad values, and the printed form loads back", () => {
  const defaults = ircDccOptionsSchema.parse({});
  assert.deepEqual(defaults, {
    sameFamily: "pass",
    listenPorts: { from: 49152, to: 65535 },
    offerTimeoutMs: 120_000,
    maxOffers: 8,
  });
  const options = ircDccOptionsSchema.parse({
    same_family: "translate",
    listen_ports: { from: 50000, to: 50010 },
    offer_timeout: 2.5,
    max_offers: 2,
  });
  assert.deepEqual(ircDccOptionsSchema.parse(formatIrcDccOptions(options)), options);
  const bad = ircDccOptionsSchema.safeParse({ listen_ports: { from: 80, to: 90 }, max_offers: 0 });
  assert.ok(!bad.success);
  assert.deepEqual(bad.error.issues.map((issue) => issue.path.join(".")).sort(), [
    "listen_ports.from",
    "max_offers",
  ]);
});
