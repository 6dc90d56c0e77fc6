/**
 * An HTML page that makes a browser prove what it downloaded: a script fetches a payload from
 * the page's own origin and writes its SHA-256 into the DOM, which `chromium --dump-dom` prints.
 *
 * The script uses a synchronous XMLHttpRequest (so the digest is in the DOM before the load
 * event, when `--dump-dom` prints) and its own SHA-256: `crypto.subtle` exists only in secure
 * contexts, and an `http://` page from a name other than localhost is not one.
 *
 * @module
 */

/** What {@link readDigestPage} finds in a dumped DOM. */
export interface DigestPageResult {
  /** The static token of the page, if the page arrived. */
  token?: string;
  /** Lower-case hex SHA-256 the script computed, if it ran. */
  sha256?: string;
  /** Number of payload bytes the script hashed. */
  size?: number;
}

/** The page's HTML: a static `token`, then the script that hashes `payload` (a relative URL). */
export function digestPage(payload: string, token: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>dualgate</title></head>
<body><p id="token">${token}</p><p id="digest">no digest</p>
<script>
"use strict";
function sha256(bytes) {
  const K = new Uint32Array([${SHA256_K.join(",")}]);
  const H = new Uint32Array([${SHA256_H.join(",")}]);
  const total = ((bytes.length + 9 + 63) >> 6) << 6;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[bytes.length] = 0x80;
  const view = new DataView(m.buffer);
  view.setUint32(total - 8, Math.floor(bytes.length / 0x20000000));
  view.setUint32(total - 4, (bytes.length * 8) >>> 0);
  const w = new Uint32Array(64);
  const rot = (x, s) => (x >>> s) | (x << (32 - s));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rot(w[i - 15], 7) ^ rot(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rot(w[i - 2], 17) ^ rot(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rot(e, 6) ^ rot(e, 11) ^ rot(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rot(a, 2) ^ rot(a, 13) ^ rot(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
  }
  return Array.from(H, (x) => x.toString(16).padStart(8, "0")).join("");
}
const xhr = new XMLHttpRequest();
xhr.open("GET", ${JSON.stringify(payload)}, false);
// Bytes as the low 8 bits of each char: the classic binary read for a synchronous request.
xhr.overrideMimeType("text/plain; charset=x-user-defined");
xhr.send();
const text = xhr.responseText;
const bytes = new Uint8Array(text.length);
for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
document.getElementById("digest").textContent =
  "status " + xhr.status + " size " + bytes.length + " sha256 " + sha256(bytes);
</script></body></html>
`;
}

/** Reads the token and the digest line from a dumped DOM. */
export function readDigestPage(dom: string): DigestPageResult {
  const result: DigestPageResult = {};
  const token = /<p id="token">([^<]*)<\/p>/.exec(dom)?.[1];
  if (token !== undefined) result.token = token;
  const digest = /<p id="digest">status 200 size (\d+) sha256 ([0-9a-f]{64})<\/p>/.exec(dom);
  if (digest) {
    result.size = Number(digest[1]);
    result.sha256 = digest[2]!;
  }
  return result;
}

/** FIPS 180-4 §4.2.2: first 32 bits of the fractional parts of the cube roots of 64 primes. */
const SHA256_K = [
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
];

/** FIPS 180-4 §5.3.3: the initial hash value. */
const SHA256_H = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];
