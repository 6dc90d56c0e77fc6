/**
 * IRC DCC across IP families end to end: dualgate (`main.ts serve` with `translators: [{ type:
 * irc-dcc }]`) on the dual-stack gateway, a real IRC server (ngircd) on the IPv6-only server6,
 * and two real IRC clients (python3-irc, `_irc_dcc_client.py`) on the IPv4-only client4 and
 * the IPv6-only client6. Both reach ngircd through the gateway's SOCKS5 (the server's name is
 * known to the gateway only); DCC connections go straight to the address in the offer, as IRC
 * clients with a SOCKS proxy for the server do.
 *
 * client4's session crosses families and is translated; client6's (IPv6 to IPv6) is relayed
 * untouched. So an offer from client4 reaches client6 naming the gateway's IPv6 address (the
 * one facing the server, which client6 reaches through its default route), and an offer from
 * client6 reaches client4 naming the gateway's IPv4 address as a 32-bit integer. The last steps
 * go through ngircd on the IPv4-only server4 instead, where client6's session is the translated
 * one. Files are checked by SHA-256 digest.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startDualgate } from "../helpers/dualgate.ts";
import { createRandomFile, sha256File } from "../helpers/http_server.ts";
import { IRC_PORT, startNgircd } from "../helpers/ngircd.ts";
import {
  createTopology,
  e2eTest,
  type HostName,
  NAMES,
  type SpawnedProcess,
  type Topology,
} from "../helpers/netns.ts";

const CLIENT_SCRIPT = fileURLToPath(new URL("./_irc_dcc_client.py", import.meta.url));
const PYTHON = "/usr/bin/python3";
/** 192.0.2.1, the gateway's address facing client4, as DCC writes it. */
const GATEWAY_V4_INTEGER = "3221225985";

interface Event {
  event: string;
  [key: string]: unknown;
}

function events(process: { stdout: string }): Event[] {
  return process.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line) as Event
  );
}

/** SOCKS CONNECTs from client4 to the gateway's advertised endpoint, taken by an offer. */
function expectedConnects(gateway: { stderr: string }): number {
  return gateway.stderr.match(
    /192\.0\.2\.2:\d+ \S+ connect 192\.0\.2\.1:\d+ .*expected by translator/g,
  )?.length ?? 0;
}

function gatewayOf(topo: Topology, client: HostName): string {
  return client === "client4" ? topo.addresses.gateway.v4 : topo.addresses.gateway.v6;
}

/** Waits (bounded) until the spawned client reports `event`. */
async function waitFor(process: SpawnedProcess, event: string, show: () => string): Promise<Event> {
  for (let i = 0; i < 600; i++) {
    const found = events(process).find((e) => e.event === event);
    if (found) return found;
    if (process.exited) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${event} event from ${process.host}\n${show()}`);
}

e2eTest(
  "`main.ts serve` with the irc-dcc translator carries DCC SEND and CHAT across IP families",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-dcc-" });
    await Deno.chmod(dir, 0o755);
    try {
      const server6 = topo.addresses.server6.v6;
      await using _ircd6 = await startNgircd(topo, "server6", server6, `${dir}/ngircd6`);
      await using _ircd4 = await startNgircd(
        topo,
        "server4",
        topo.addresses.server4.v4,
        `${dir}/ngircd4`,
      );
      /** The IRC server the next exchange uses (by the name only the gateway resolves). */
      let ircName: string = NAMES.v6;
      await using gateway = await startDualgate(
        topo,
        `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]
translators:
  - { type: irc-dcc, ports: [${IRC_PORT}], offer_timeout: 30 }
`,
        { dir },
      );
      let nicks = 0;
      const client = (host: HostName, nick: string, role: string, ...args: string[]) =>
        [host, PYTHON, [
          CLIENT_SCRIPT,
          gatewayOf(topo, host),
          "1080",
          ircName,
          String(IRC_PORT),
          nick,
          role,
          ...args,
        ]] as const;
      /** Starts the receiver, waits until it is on IRC, runs the offerer to its end. */
      const exchange = async (
        receiverHost: HostName,
        offererHost: HostName,
        role: string,
        ...args: string[]
      ) => {
        const n = nicks++;
        const receiverNick = `rcv${n}`;
        const receiverRole = role === "send-to-socks" ? "receive-socks" : "receive";
        if (role === "send-to-socks") role = "send";
        const [rHost, rCmd, rArgs] = client(receiverHost, receiverNick, receiverRole);
        await using receiver = topo.spawn(rHost, rCmd, rArgs);
        const show = () =>
          `--- receiver stdout:\n${receiver.stdout}\n--- receiver stderr:\n${
            receiver.stderr.slice(-3000)
          }\n--- gateway:\n${gateway.stderr.slice(-5000)}`;
        await waitFor(receiver, "ready", show);
        const [oHost, oCmd, oArgs] = client(offererHost, `off${n}`, role, receiverNick, ...args);
        const offerer = await topo.run(oHost, oCmd, oArgs, { timeoutMs: 90_000 });
        const all = () => `--- offerer:\n${offerer.stdout}\n${offerer.stderr}\n${show()}`;
        assert.equal(offerer.code, 0, all());
        const received = await waitFor(receiver, "done", all);
        const sent = events(offerer).find((e) => e.event === "done");
        return { received, sent: sent ?? { event: "none" }, show: all };
      };

      const file = await createRandomFile(dir, { name: "payload.bin", size: 3 * 1024 * 1024 + 5 });

      await t.step("client4 sends a file to client6 (DCC SEND, IPv4 offer)", async () => {
        const { received, sent, show } = await exchange("client6", "client4", "send", file.path);
        assert.equal(sent.sent, file.size, show());
        assert.equal(received.sha256, file.sha256, show());
        // client6 saw the gateway's IPv6 address facing the server, not client4's integer.
        assert.match(String(received.offer), /^SEND payload\.bin 2001:db8:2::1 \d+ \d+$/, show());
      });

      await t.step("client6 sends a file to client4 (DCC SEND, IPv6 offer)", async () => {
        const { received, sent, show } = await exchange("client4", "client6", "send", file.path);
        assert.equal(sent.sent, file.size, show());
        assert.equal(received.sha256, file.sha256, show());
        assert.match(
          String(received.offer),
          new RegExp(`^SEND payload\\.bin ${GATEWAY_V4_INTEGER} \\d+ \\d+$`),
          show(),
        );
      });

      await t.step("client4 sends to client6 with passive DCC (port 0 and a token)", async () => {
        const { received, sent, show } = await exchange(
          "client6",
          "client4",
          "passive-send",
          file.path,
        );
        assert.equal(received.sha256, file.sha256, show());
        assert.equal(sent.sent, file.size, show());
        // The passive offer named the gateway's IPv6 address with port 0; client6's answer (its
        // own address) reached client4 as the gateway's IPv4 address.
        assert.match(
          String(received.offer),
          /^SEND payload\.bin 2001:db8:2::1 0 \d+ 4242$/,
          show(),
        );
        assert.match(
          String(sent.answer),
          new RegExp(`^SEND payload\\.bin ${GATEWAY_V4_INTEGER} \\d+ \\d+ 4242$`),
          show(),
        );
      });

      await t.step("DCC CHAT both ways", async () => {
        const one = await exchange("client6", "client4", "chat");
        assert.equal(one.received.chat, "hello from off3", one.show());
        assert.equal(one.sent.chat, "hello from rcv3", one.show());
        const two = await exchange("client4", "client6", "chat");
        assert.equal(two.received.chat, "hello from off4", two.show());
        assert.equal(two.sent.chat, "hello from rcv4", two.show());
      });

      await t.step(
        "client6 sends to client4, whose DCC connection goes through SOCKS too (expected CONNECT)",
        async () => {
          const before = expectedConnects(gateway);
          const { received, show } = await exchange(
            "client4",
            "client6",
            "send-to-socks",
            file.path,
          );
          assert.equal(received.sha256, file.sha256, show());
          assert.equal(expectedConnects(gateway), before + 1, show());
        },
      );

      // WeeChat sends its DCC connections through the IRC server's proxy too: on client4 (the
      // translated session) its CONNECT to the advertised address is the one the gateway expects.
      await t.step(
        "client6 sends a file to WeeChat on client4 (its DCC through the SOCKS proxy)",
        async () => {
          const home = `${dir}/weechat`;
          const downloads = `${dir}/weechat-downloads`;
          await Deno.mkdir(downloads, { recursive: true });
          const commands = [
            "/set xfer.file.auto_accept_files on",
            `/set xfer.file.download_path ${downloads}`,
            "/set xfer.file.use_nick_in_filename off",
            `/proxy add gw socks5 ${topo.addresses.gateway.v4} 1080`,
            `/server add dg ${NAMES.v6}/${IRC_PORT} -proxy=gw -nicks=wee`,
            "/connect dg",
          ].join(";");
          await using weechat = topo.spawn("client4", "weechat-headless", [
            "--dir",
            home,
            "--stdout",
            "-P",
            "irc,xfer",
            "-r",
            commands,
          ]);
          const before = expectedConnects(gateway);
          const [oHost, oCmd, oArgs] = client("client6", "offwee", "send", "wee", file.path);
          const offerer = await topo.run(oHost, oCmd, oArgs, {
            timeoutMs: 90_000,
            env: { WAIT_FOR_PEER: "1" },
          });
          const show = () =>
            `--- offerer:\n${offerer.stdout}\n${offerer.stderr}\n--- weechat:\n${
              weechat.stdout.slice(-3000)
            }\n${weechat.stderr.slice(-2000)}\n--- gateway:\n${gateway.stderr.slice(-4000)}`;
          assert.equal(offerer.code, 0, show());
          assert.equal(events(offerer).find((e) => e.event === "done")?.sent, file.size, show());
          // The sender saw WeeChat's last acknowledgement: the whole file is on disk.
          assert.equal(await sha256File(`${downloads}/payload.bin`), file.sha256, show());
          // WeeChat's DCC connection was a SOCKS CONNECT the gateway expected.
          assert.equal(expectedConnects(gateway), before + 1, show());
        },
      );

      // The other way round: an IPv4-only IRC server, client6's session translated.
      await t.step("via an IPv4 IRC server: client6 sends a file to client4", async () => {
        ircName = NAMES.v4;
        const { received, sent, show } = await exchange("client4", "client6", "send", file.path);
        assert.equal(sent.sent, file.size, show());
        assert.equal(received.sha256, file.sha256, show());
        // 198.51.100.1, the gateway's address facing server4, as an integer.
        assert.match(String(received.offer), /^SEND payload\.bin 3325256705 \d+ \d+$/, show());
      });

      await t.step("via an IPv4 IRC server: client4 sends a file to client6", async () => {
        const { received, sent, show } = await exchange("client6", "client4", "send", file.path);
        assert.equal(sent.sent, file.size, show());
        assert.equal(received.sha256, file.sha256, show());
        assert.match(String(received.offer), /^SEND payload\.bin 2001:db8:1::1 \d+ \d+$/, show());
      });

      await t.step("every DCC connection left an irc-dcc record", async () => {
        // Seven exchanges with a gateway listener, one DCC connection each (the SOCKS one is a
        // `connect` record); a record is written when its relay ends.
        const count = () => gateway.stderr.match(/relayed \S+ user=- irc-dcc /g)?.length;
        for (let i = 0; i < 200 && count() !== 7; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.equal(count(), 7, gateway.stderr.slice(-5000));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["ngircd", "weechat-headless"] },
);
