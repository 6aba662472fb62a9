import { describe, expect, it } from '@jest/globals';
import { TokenBucket } from '../test/fakes/token-bucket.js';

// The one throttle both AWS test worlds use (test/fakes/world.ts, test/lab/aws-proxy.ts).
describe('TokenBucket', () => {
  it('lets a burst of exactly `rate` calls through, then refuses', () => {
    const b = new TokenBucket(3);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
  });
  it('Infinity never refuses', () => {
    const b = new TokenBucket(Infinity);
    expect(Array.from({ length: 1000 }, () => b.take()).filter((x) => !x)).toHaveLength(0);
  });
  it('0 refuses every call (an outage), never means unlimited', () => {
    const b = new TokenBucket(0);
    expect([b.take(), b.take()]).toEqual([false, false]);
  });
});
