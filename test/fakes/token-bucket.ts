/**
 * A per-account request rate, as AWS meters it: a token bucket whose burst equals its rate.
 * Shared by the in-memory world and the lab's proxy so both throttle alike.
 * Infinity means no limit; 0 refuses every call (an outage).
 */
export class TokenBucket {
  private tokens: number;
  private at = Date.now();
  constructor(private readonly rate: number) {
    this.tokens = Number.isFinite(rate) ? rate : 0;
  }
  take(): boolean {
    if (!Number.isFinite(this.rate)) return true;
    const now = Date.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
