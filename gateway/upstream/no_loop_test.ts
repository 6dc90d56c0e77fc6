import assert from "node:assert/strict";
import { type IpAddress, parseIp, sameIp } from "../../net/address.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply, type SocksTarget } from "../../socks5/types.ts";
import { NoLoopDialer } from "./no_loop.ts";
import type { Dialed, Dialer, DialRequest } from "./types.ts";

const ip = (text: string) => parseIp(text)!;

/** Dials the first permitted of `candidates` (as the direct dialer does), recording it. */
function fakeBelow(candidates: IpAddress[]): Dialer & { dialed: IpAddress[] } {
  const dialed: IpAddress[] = [];
  return {
    dialed,
    dial(request: DialRequest): Promise<Dialed> {
      const first = candidates.find((address) => request.permit(address));
      if (!first) {
        return Promise.reject(
          new SocksReplyError(Reply.NotAllowedByRuleset, "Cannot connect: denied by rules"),
        );
      }
      dialed.push(first);
      return Promise.resolve({
        conn: null as unknown as Deno.TcpConn,
        remote: { address: first, port: request.target.port },
        local: { address: ip("192.0.2.1"), port: 40000 },
      });
    },
  };
}

const OWN = { address: ip("192.0.2.1"), port: 1080 };
const isOwnListener = (address: IpAddress, port: number) =>
  port === OWN.port && sameIp(address, OWN.address);
const hop: SocksTarget = { address: { family: "name", name: "gw.example" }, port: 1080 };
const request = (target: SocksTarget): DialRequest => ({
  target,
  signal: new AbortController().signal,
  permit: () => true,
});

Deno.test("NoLoopDialer.dial() refuses a hop that resolves only to our own listener", async () => {
  const below = fakeBelow([ip("192.0.2.1")]);
  const error = await new NoLoopDialer(below, isOwnListener).dial(request(hop)).then(
    () => assert.fail("dialed ourselves"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SocksReplyError);
  assert.equal(error.reply, Reply.NotAllowedByRuleset);
  assert.match(error.message, /192\.0\.2\.1:1080: it is this gateway's own listener/);
  assert.equal(below.dialed.length, 0);
});

Deno.test("NoLoopDialer.dial() skips our own address and dials the hop's others", async () => {
  const below = fakeBelow([ip("192.0.2.1"), ip("198.51.100.20")]);
  const dialed = await new NoLoopDialer(below, isOwnListener).dial(request(hop));
  assert.deepEqual(dialed.remote, { address: ip("198.51.100.20"), port: 1080 });
});

Deno.test("NoLoopDialer.dial() passes other targets and refusals through", async () => {
  const other = fakeBelow([ip("192.0.2.1")]);
  const elsewhere = { ...hop, port: 1081 };
  assert.equal(
    (await new NoLoopDialer(other, isOwnListener).dial(request(elsewhere))).remote.port,
    1081,
  );
  const denied = fakeBelow([ip("198.51.100.20")]);
  const error = await new NoLoopDialer(denied, isOwnListener)
    .dial({ ...request(hop), permit: () => false })
    .catch((e: unknown) => e);
  assert.ok(error instanceof SocksReplyError);
  assert.equal(error.message, "Cannot connect: denied by rules");
});
