import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { digestPage, readDigestPage } from "./digest_page.ts";

/** The page's own sha256(), taken out of the page and run here. */
function pageSha256(): (bytes: Uint8Array) => string {
  const html = digestPage("payload.bin", "t");
  const source = /function sha256\(bytes\) \{[\s\S]*?\n\}\n/.exec(html)?.[0];
  assert.ok(source, "the page has no sha256 function");
  return new Function(`${source}; return sha256;`)();
}

Deno.test("`digestPage()` hashes like SHA-256 across block and padding boundaries", () => {
  const sha256 = pageSha256();
  for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 131 + 7) & 0xff;
    assert.equal(sha256(bytes), createHash("sha256").update(bytes).digest("hex"), `size ${size}`);
  }
});

Deno.test("`readDigestPage()` reads the token and a completed digest only", () => {
  const hex = "ab".repeat(32);
  assert.deepEqual(
    readDigestPage(`<p id="token">tok</p><p id="digest">status 200 size 12 sha256 ${hex}</p>`),
    { token: "tok", size: 12, sha256: hex },
  );
  assert.deepEqual(readDigestPage(`<p id="token">tok</p><p id="digest">no digest</p>`), {
    token: "tok",
  });
  assert.deepEqual(
    readDigestPage(`<p id="digest">status 404 size 12 sha256 ${hex}</p>`),
    {},
  );
});
