/**
 * Per-caller rate limits in this process: a token bucket per key (a pipeline's identity, or the
 * peer address of a caller without one) holding up to `burst` calls, refilled at `perMinute`.
 * Idle full buckets are dropped, and the number of buckets is bounded, so a flood of new keys
 * cannot grow memory without end.
 */
export interface RateLimitSettings {
  /** Calls per minute per key; 0 = unlimited. */
  perMinute: number;
  /** Calls a key may make at once; default perMinute. */
  burst?: number;
}

const MAX_KEYS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;
  private readonly perMs: number;

  constructor(settings: RateLimitSettings) {
    this.burst = Math.max(1, settings.burst ?? settings.perMinute);
    this.perMs = settings.perMinute / 60_000;
  }

  /** Take one call for `key`: 0 when allowed, else the seconds until one is. */
  take(key: string, nowMs: number): number {
    let bucket = this.buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + (nowMs - bucket.at) * this.perMs);
      bucket.at = nowMs;
    } else {
      if (this.buckets.size >= MAX_KEYS) this.sweep(nowMs);
      bucket = { tokens: this.burst, at: nowMs };
      this.buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
  }

  private sweep(nowMs: number): void {
    for (const [key, b] of this.buckets) if (b.tokens + (nowMs - b.at) * this.perMs >= this.burst) this.buckets.delete(key);
    // Still full of busy keys: forget the oldest half rather than grow.
    if (this.buckets.size >= MAX_KEYS) {
      let n = this.buckets.size / 2;
      for (const key of this.buckets.keys()) {
        if (n-- <= 0) break;
        this.buckets.delete(key);
      }
    }
  }
}
