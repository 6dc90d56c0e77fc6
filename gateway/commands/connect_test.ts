import assert from "node:assert/strict";
import { endpointFromNetAddr } from "../../net/address.ts";
import { closeQuietly } from "../../net/io.ts";
import type { Resolver } from "../../resolver/mod.ts";
import { readReply } from "../../socks5/codec.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import { Command, Reply } from "../../socks5/types.ts";
import { AccessRules } from "../access/rules.ts";
import { parseConfig } from "../config/load.ts";
import type { ConnectionRecord } from "../observe/connection_log.ts";
import type { SessionServices } from "../session_types.ts";
import type { RouteChoice, Router } from "../upstream/router.ts";
import type { Dialer } from "../upstream/types.ts";
import { handleConnect } from "./connect.ts";
import { createTranslationService } from "./translate.ts";

Deno.test("handleConnect() looks a CONNECT's route up once, translators configured", async () => {
  // The destination: accepts one connection and closes it, so that the relay ends.
  using target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => closeQuietly(await target.accept()))();
  const dialer: Dialer = {
    dial: async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: target.addr.port });
      return {
        conn,
        remote: endpointFromNetAddr(conn.remoteAddr),
        local: endpointFromNetAddr(conn.localAddr),
      };
    },
  };
  const lookups: string[] = [];
  const route: Router = (target) => {
    lookups.push(`${target.port}`);
    return { dialer, chained: false, label: "direct" } satisfies RouteChoice;
  };
  // The FTP translator on another port: it runs its checks but never matches.
  const config = parseConfig(`
listen: ["127.0.0.1:0"]
workers: 1
translators:
  - { type: ftp, ports: [1] }
`);
  const shutdown = new AbortController();
  const records: ConnectionRecord[] = [];
  const rules = new AccessRules(null);
  const services: SessionServices = {
    config,
    rules,
    dialer,
    route,
    translation: createTranslationService(config, {
      rules,
      shutdown: shutdown.signal,
      record: (record) => records.push(record),
    }),
    resolver: {} as Resolver,
    standIns: null,
    users: new Map(),
    isLocalAddress: () => true,
    shutdown: shutdown.signal,
    record: (record) => records.push(record),
    reserveDescriptors: () => () => {},
    authenticate: () => Promise.resolve("rejected"),
  };

  using front = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: front.addr.port });
  const conn = await front.accept();
  const handled = handleConnect({
    conn,
    reader: new ExactReader(conn),
    client: endpointFromNetAddr(conn.remoteAddr),
    local: endpointFromNetAddr(conn.localAddr),
    clientIsLocal: true,
    request: {
      command: Command.Connect,
      target: {
        address: { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) },
        port: target.addr.port,
      },
    },
    startedAt: performance.now(),
  }, services);
  const reply = await readReply(new ExactReader(client));
  assert.equal(reply.reply, Reply.Succeeded);
  client.close();
  await handled;
  await served;
  shutdown.abort();

  assert.deepEqual(lookups, [`${target.addr.port}`]);
  assert.equal(records.length, 1);
  assert.equal(records[0]?.outcome, "relayed");
});
