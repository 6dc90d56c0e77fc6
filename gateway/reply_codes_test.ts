import assert from "node:assert/strict";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply } from "../socks5/types.ts";
import { replyForError, replyForErrors } from "./reply_codes.ts";

/** A real ECONNREFUSED: connect to a loopback port nobody listens on. */
async function refusedError(): Promise<unknown> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
  } catch (error) {
    return error;
  }
  return assert.fail("connect to a closed port succeeded");
}

function errno(code: string): Error {
  return Object.assign(new Error(`connect ${code}`), { code });
}

Deno.test("replyForError() maps a real refused connection to REP 5", async () => {
  const error = await refusedError();
  assert.ok(error instanceof Deno.errors.ConnectionRefused);
  assert.equal(replyForError(error), Reply.ConnectionRefused);
});

Deno.test("replyForError() maps Deno error classes", () => {
  assert.equal(replyForError(new Deno.errors.ConnectionRefused("x")), Reply.ConnectionRefused);
  assert.equal(replyForError(new Deno.errors.NetworkUnreachable("x")), Reply.NetworkUnreachable);
  assert.equal(replyForError(new Deno.errors.TimedOut("x")), Reply.HostUnreachable);
  assert.equal(replyForError(new Deno.errors.AddrNotAvailable("x")), Reply.NetworkUnreachable);
});

Deno.test("replyForError() maps errno codes", () => {
  const cases: [string, number][] = [
    ["ECONNREFUSED", Reply.ConnectionRefused],
    ["ENETUNREACH", Reply.NetworkUnreachable],
    ["EADDRNOTAVAIL", Reply.NetworkUnreachable],
    ["EAFNOSUPPORT", Reply.NetworkUnreachable],
    ["EHOSTUNREACH", Reply.HostUnreachable],
    ["EHOSTDOWN", Reply.HostUnreachable],
    ["ETIMEDOUT", Reply.HostUnreachable],
    ["EACCES", Reply.NotAllowedByRuleset],
    ["EPERM", Reply.NotAllowedByRuleset],
  ];
  for (const [code, reply] of cases) {
    assert.equal(replyForError(errno(code)), reply, code);
    // Plain objects carrying a code count too.
    assert.equal(replyForError({ code }), reply, code);
  }
});

Deno.test("replyForError() maps unknown codes and non-errors to REP 1", () => {
  for (
    const error of [
      errno("ECONNRESET"),
      { code: 111 },
      new Error("boom"),
      new TypeError("bad"),
      "ECONNREFUSED",
      null,
      undefined,
      42,
      {},
      { errors: [] },
    ]
  ) {
    assert.equal(replyForError(error), Reply.GeneralFailure, String(error));
  }
});

// A code that names an Object.prototype member must not be looked up on the prototype: the
// "reply" would be a function, which encodeReply() writes as REP 0 (succeeded).
Deno.test("replyForError() ignores codes that name Object.prototype members", () => {
  for (const code of ["toString", "constructor", "valueOf", "hasOwnProperty", "__proto__"]) {
    assert.equal(replyForError(errno(code)), Reply.GeneralFailure, code);
  }
});

Deno.test("replyForError() maps a TimeoutError DOMException to REP 4", async () => {
  assert.equal(replyForError(new DOMException("timed out", "TimeoutError")), Reply.HostUnreachable);
  const signal = AbortSignal.timeout(1);
  await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  assert.equal(replyForError(signal.reason), Reply.HostUnreachable);
});

Deno.test("replyForError() does not treat an AbortError as a timeout", () => {
  assert.equal(replyForError(new DOMException("aborted", "AbortError")), Reply.GeneralFailure);
});

Deno.test("replyForError() passes a SocksReplyError's code through", () => {
  for (const reply of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
    assert.equal(replyForError(new SocksReplyError(reply)), reply);
  }
  // Even when it also carries a misleading errno code.
  const error = Object.assign(new SocksReplyError(Reply.TtlExpired), { code: "ECONNREFUSED" });
  assert.equal(replyForError(error), Reply.TtlExpired);
});

Deno.test("replyForError() looks inside an AggregateError", () => {
  const aggregate = new AggregateError([errno("ENETUNREACH"), errno("ECONNREFUSED")], "all failed");
  assert.equal(replyForError(aggregate), Reply.ConnectionRefused);
  assert.equal(replyForError({ errors: [errno("EHOSTUNREACH")] }), Reply.HostUnreachable);
});

Deno.test("replyForErrors() prefers refused over unreachable and general failures", () => {
  assert.equal(
    replyForErrors([errno("ENETUNREACH"), errno("ECONNREFUSED")]),
    Reply.ConnectionRefused,
  );
  assert.equal(
    replyForErrors([errno("ECONNREFUSED"), errno("ENETUNREACH")]),
    Reply.ConnectionRefused,
  );
  assert.equal(
    replyForErrors([new Error("x"), errno("EHOSTUNREACH"), errno("ENETUNREACH")]),
    Reply.HostUnreachable,
  );
  assert.equal(replyForErrors([new Error("x"), errno("ENETUNREACH")]), Reply.NetworkUnreachable);
  assert.equal(
    replyForErrors([errno("ECONNREFUSED"), errno("EACCES")]),
    Reply.NotAllowedByRuleset,
  );
});

Deno.test("replyForErrors() on a real refused connection and a timeout answers REP 5", async () => {
  const refused = await refusedError();
  assert.equal(
    replyForErrors([new DOMException("timed out", "TimeoutError"), refused]),
    Reply.ConnectionRefused,
  );
});

Deno.test("replyForErrors() keeps a code outside the priority list when it is the only one", () => {
  assert.equal(replyForErrors([new SocksReplyError(Reply.TtlExpired)]), Reply.TtlExpired);
  assert.equal(
    replyForErrors([new SocksReplyError(Reply.TtlExpired), new SocksReplyError(Reply.TtlExpired)]),
    Reply.TtlExpired,
  );
});

Deno.test("replyForErrors() of nothing is REP 1", () => {
  assert.equal(replyForErrors([]), Reply.GeneralFailure);
});
