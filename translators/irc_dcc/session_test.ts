import assert from "node:assert/strict";
import { formatEndpoint, type IpEndpoint, parseIp } from "../../net/address.ts";
import type {
  DataChannelBroker,
  DataListenOptions,
  ExpectOptions,
  Line,
  LineIo,
  TranslatorContext,
} from "../types.ts";
import { formatIrcDccOptions, ircDccOptionsSchema, ircDccTranslatorFactory } from "./mod.ts";

const ip = (text: string) => parseIp(text)!;

/** An IPv4 client reaching an IPv6 IRC server. */
const ctx: TranslatorContext = {
  id: "d",
  client: { address: ip("192.0.2.2"), port: 40000 },
  clientSideLocal: { address: ip("192.0.2.1"), port: 1080 },
  server: { address: ip("2001:db8:2::2"), port: 6667 },
  serverSideLocal: { address: ip("2001:db8:2::1"), port: 50001 },
  target: { address: { family: "name", name: "irc.example" }, port: 6667 },
  user: null,
};

/** A broker double: listeners that never see a peer, rules that deny one port. */
function fakeBroker(deniedPort = 2222) {
  const listens: DataListenOptions[] = [];
  const refusals: string[] = [];
  const expects: ExpectOptions[] = [];
  let nextPort = 50000;
  const broker: DataChannelBroker = {
    listen(options) {
      listens.push(options);
      const local = options.side === "client" ? ctx.clientSideLocal : ctx.serverSideLocal;
      return Promise.resolve({
        endpoint: { address: local.address, port: nextPort++ },
        accept: () =>
          new Promise<Deno.Conn>((_, reject) => {
            const fail = () => reject(new Error("closed"));
            if (options.signal.aborted) fail();
            options.signal.addEventListener("abort", fail, { once: true });
          }),
        [Symbol.dispose]() {},
      });
    },
    connect: () => Promise.reject(new Error("no dial in this test")),
    permits(endpoint: IpEndpoint, options) {
      if (endpoint.port !== deniedPort) return true;
      refusals.push(`${options.side} ${formatEndpoint(endpoint)} rules`);
      return false;
    },
    refuse(endpoint, options) {
      refusals.push(`${options.side} ${formatEndpoint(endpoint)} ${options.reason}`);
    },
    relay: () => Promise.resolve(),
    expect(options) {
      expects.push(options);
      return { [Symbol.dispose]() {} };
    },
  };
  return { broker, listens, refusals, expects };
}

function line(text: string): Line {
  return { text, raw: new TextEncoder().encode(text + "\r\n") };
}

function start(overrides: Record<string, unknown> = {}) {
  const translator = ircDccTranslatorFactory.create({
    ...ircDccOptionsSchema.parse(overrides),
    ports: [6667],
    maxLineBytes: 4096,
  });
  const fake = fakeBroker();
  const session = translator.startSession(ctx, fake.broker);
  const toServer: string[] = [];
  const toClient: string[] = [];
  const io: LineIo = {
    sendToServer: (text) => (toServer.push(text), Promise.resolve()),
    sendToClient: (text) => (toClient.push(text), Promise.resolve()),
    close: () => {},
    detach: () => {},
    signal: new AbortController().signal,
  };
  return {
    ...fake,
    translator,
    toServer,
    toClient,
    client: (text: string) => session.onClientLine!(line(text), io),
    server: (text: string) => session.onServerLine!(line(text), io),
    close: () => session.close!(),
  };
}

Deno.test("irc-dcc claims cross-family sessions on its ports only", () => {
  const { translator, close } = start();
  assert.equal(translator.match(ctx), "claim");
  assert.equal(translator.match({ ...ctx, target: { ...ctx.target, port: 6697 } }), "decline");
  const same = { ...ctx, server: { address: ip("198.51.100.2"), port: 6667 } };
  assert.equal(translator.match(same), "decline");
  assert.equal(start({ same_family: "translate" }).translator.match(same), "claim");
  return close();
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
