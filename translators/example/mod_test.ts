import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { lineOf, recordingBroker, recordingIo, testContext } from "../testing.ts";
import { echoAddrOptionsSchema, echoAddrTranslatorFactory } from "./mod.ts";

const ctx = testContext({
  server: { address: parseIp("2001:db8::20")!, port: 7007 },
  target: { address: { family: "name", name: "echo.example" }, port: 7007 },
});

Deno.test("echo-addr answers its command locally and forwards other lines", async () => {
  const translator = echoAddrTranslatorFactory.create({
    ...echoAddrOptionsSchema.parse({ command: "whoami" }),
    ports: [7007],
    maxLineBytes: 4096,
  });
  assert.equal(translator.match(ctx), "claim");
  const { io, toClient, toServer } = recordingIo();
  const session = translator.startSession(ctx, recordingBroker().broker);
  assert.equal(await session.onClientLine!(lineOf("hello"), io), "forward");
  assert.equal(await session.onClientLine!(lineOf("WHOAMI"), io), "consumed");
  assert.deepEqual(toClient, ["client=192.0.2.1:40000 server=[2001:db8::20]:7007"]);
  assert.deepEqual(toServer, []);
});

Deno.test("echo-addr options refuse an invalid command name", () => {
  assert.ok(!echoAddrOptionsSchema.safeParse({ command: "two words" }).success);
});
