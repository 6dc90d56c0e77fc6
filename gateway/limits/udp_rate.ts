/**
 * Flood limits for UDP ASSOCIATE: a datagram rate per client (summed over all of that client's
 * associations) and one for the whole process, each direction on its own. Both are set far
 * above any ordinary flow (a QUIC download or a video call sends thousands of datagrams a
 * second), so that they only ever bite a flood; what they drop is counted as `client_rate` or
 * `total_rate`.
 *
 * A client is its {@linkcode clientKey}: an IPv4 address, or its IPv6 /64 (by default), so that
 * one host cannot multiply its share by opening associations from many addresses.
 *
 * @module
 */

/**
 * A token bucket of `rate` tokens per second with a burst of one second's worth; `allow`
 * costs a clock read and a few arithmetic operations.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /** Allows `rate` per second; `now` is a millisecond clock. */
  constructor(rate: number, now: () => number = () => performance.now()) {
    this.#rate = rate;
    this.#now = now;
    this.#tokens = rate;
    this.#last = now();
  }

  /** Takes one token; false when the bucket is empty. */
  allow(): boolean {
    const now = this.#now();
    const refill = ((now - this.#last) * this.#rate) / 1000;
    this.#last = now;
    this.#tokens = Math.min(this.#rate, this.#tokens + refill);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Why a datagram was refused by the flood limits. */
export type UdpRateRefusal = "client_rate" | "total_rate";

/** The direction of a datagram: from the client to a peer, or back. */
export type UdpDirection = "up" | "down";

/** One association's handle on its client's share; `leave` once when it ends. */
export interface UdpRateShare {
  /** Takes a token for one datagram in `direction`; the refusal, or null when it may pass. */
  admit(direction: UdpDirection): UdpRateRefusal | null;
  /** Gives the share back; the client's buckets go when its last association leaves. */
  leave(): void;
}

/** Datagram rates: per client and in total, each per second and per direction. */
export interface UdpRates {
  /** Datagrams per second per client, each direction. */
  readonly perClient: number;
  /** Datagrams per second across the process, each direction. */
  readonly total: number;
}

interface ClientBuckets {
  readonly up: RateLimiter;
  readonly down: RateLimiter;
  associations: number;
  /** When the last association left (ms), while the client has none. */
  restingSince: number;
}

/**
 * How long a client's buckets outlive its last association: a bucket refills to its burst in
 * one second, so a client that closes and reopens its association sooner gets no fresh burst.
 */
const REST_MS = 1000;

/**
 * The per-client and total buckets of one process. Buckets of a client live while it has an
 * association and one second after (so reopening does not refill them), so the table holds an
 * entry per client with a live association (bounded by the connection limits) plus those of
 * the last second.
 */
export class UdpRateBudget {
  /** The rates this budget enforces. */
  readonly rates: UdpRates;
  readonly #now: () => number;
  readonly #clients = new Map<string, ClientBuckets>();
  /** Clients without an association, oldest first (a Map keeps insertion order). */
  readonly #resting = new Map<string, ClientBuckets>();
  readonly #totalUp: RateLimiter;
  readonly #totalDown: RateLimiter;

  /** A budget enforcing `rates`; `now` is a millisecond clock. */
  constructor(rates: UdpRates, now: () => number = () => performance.now()) {
    this.rates = rates;
    this.#now = now;
    this.#totalUp = new RateLimiter(rates.total, now);
    this.#totalDown = new RateLimiter(rates.total, now);
  }

  /** Clients holding buckets now (with an association, or resting). */
  get clients(): number {
    return this.#clients.size + this.#resting.size;
  }

  /** Joins the share of `client` (a {@linkcode clientKey}) for one association. */
  join(client: string): UdpRateShare {
    this.#forgetRested();
    let buckets = this.#clients.get(client) ?? this.#resting.get(client);
    this.#resting.delete(client);
    if (buckets === undefined) {
      buckets = {
        up: new RateLimiter(this.rates.perClient, this.#now),
        down: new RateLimiter(this.rates.perClient, this.#now),
        associations: 0,
        restingSince: 0,
      };
    }
    this.#clients.set(client, buckets);
    buckets.associations++;
    const own = buckets;
    let left = false;
    return {
      admit: (direction) => {
        if (!(direction === "up" ? own.up : own.down).allow()) return "client_rate";
        if (!(direction === "up" ? this.#totalUp : this.#totalDown).allow()) return "total_rate";
        return null;
      },
      leave: () => {
        if (left) return;
        left = true;
        if (--own.associations === 0 && this.#clients.get(client) === own) {
          this.#clients.delete(client);
          own.restingSince = this.#now();
          this.#resting.set(client, own);
        }
      },
    };
  }

  #forgetRested(): void {
    const now = this.#now();
    for (const [client, buckets] of this.#resting) {
      if (now - buckets.restingSince < REST_MS) break;
      this.#resting.delete(client);
    }
  }
}
