/**
 * A small seeded PRNG (xorshift32) so that fuzz cases are reproducible from their seed.
 *
 * @module
 */

/** A seeded pseudo-random source. */
export class SeededRandom {
  #state: number;

  /** Creates a source from a non-zero 32-bit seed. */
  constructor(seed: number) {
    this.#state = (seed >>> 0) || 0x9e3779b9;
  }

  /** The next 32-bit unsigned value. */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }

  /** An integer in `[0, max)`. */
  below(max: number): number {
    return this.next() % max;
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** A copy of `input` with a few random mutations (flip, insert, delete, truncate, extend). */
  mutate(input: Uint8Array): Uint8Array {
    let out = Array.from(input);
    const count = 1 + this.below(4);
    for (let i = 0; i < count; i++) {
      const at = out.length === 0 ? 0 : this.below(out.length);
      switch (this.below(6)) {
        case 0:
          if (out.length > 0) out[at] = this.below(256);
          break;
        case 1:
          out.splice(at, 0, this.below(256));
          break;
        case 2:
          out.splice(at, 1);
          break;
        case 3:
          out = out.slice(0, at);
          break;
        case 4:
          out.push(...this.bytes(this.below(8)));
          break;
        default:
          if (out.length > 0) out[at] = [0, 1, 2, 3, 4, 5, 0xff, 0x7f][this.below(8)]!;
      }
    }
    return Uint8Array.from(out);
  }
}
