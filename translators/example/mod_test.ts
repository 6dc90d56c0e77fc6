import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import type { Line, LineIo, TranslatorContext } from "../types.ts";
import { echoAddrOptionsSchema, echoAddrTranslatorFactory } from "./mod.ts";

const ctx: TranslatorContext = {
  id: "e",
  client: { address: parseIp("192.0.2.1")!, port: 40000 },
  clientSideLocal: { address: parseIp("192.0.2.10")!, port: 1080 },
  server: { address: parseIp("2001:db8::20")!, port: 7007 },
  serverSideLocal: { address: parseIp("2001:db8::10")!, port: 50000 },
  target: { address: { family: "name", name: "echo.example" }, port: 7007 },
  user: null,
};

function line(text: string): Line {
  return { text, raw: new TextEncoder().encode(text + "\r\n") };
}

Deno.test("echo-addr answers its command locally and forwards other lines", async () => {
  const translator = echoAddrTranslatorFactory.create({
    ...echoAddrOptionsSchema.parse({ command: "whoami" }),
    ports: [7007],
    maxLineBytes: 4096,
  });
  assert.equal(translator.match(ctx), "claim");
  const sent: string[] = [];
  const io: LineIo = {
    sendToClient: (text) => (sent.push(text), Promise.resolve()),
    sendToServer: () => Promise.reject(new Error("unexpected")),
    close: () => {},
    signal: new AbortController().signal,
  };
  const session = translator.startSession(ctx, {} as never);
  assert.equal(await session.onClientLine!(line("hello"), io), "forward");
  assert.equal(await session.onClientLine!(line("WHOAMI"), io), "consumed");
  assert.deepEqual(sent, ["client=192.0.2.1:40000 server=[2001:db8::20]:7007"]);
});

Deno.test("echo-addr options refuse an invalid command name", () => {
  assert.ok(!echoAddrOptionsSchema.safeParse({ command: "two words" }).success);
});
