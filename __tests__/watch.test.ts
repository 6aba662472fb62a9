// mode watch's two decisions, on the phases user-data/bootstrap.sh writes (src/tags.ts PHASES):
// did the runner take its job, and is the machine lost before that? The lab scenarios
// (__tests__/lab/fault-matrix.watch.test.ts) run the whole mode through dist.
import { describe, expect, it } from '@jest/globals';
import type { InstanceInfo } from '../src/aws/instances.js';
import { tuning } from '../src/config.js';
import { lostByInstance, tookJobByPhase } from '../src/modes/watch.js';

const inst = (state: string, phase?: string): InstanceInfo => ({
  instanceId: 'i-0123456789abcdef0',
  state,
  instanceType: 'c7i.large',
  availabilityZone: 'us-east-1a',
  market: 'spot',
  tags: phase ? { 'spot-runner:phase': phase } : {},
});

describe('watch: took its job?', () => {
  it.each([
    ['job-started', true],
    ['shutting-down', true], // job-done
    ['failed:job-failed:Failed', true],
    ['interrupted:job-started', true], // not written (the prefix goes on the final phase only), still counted
    ['interrupted:shutting-down', true],
    ['interrupted:failed:job-failed:Canceled', true],
    ['booting', false],
    ['runner-started', false],
    ['interrupted', false], // the notice itself says nothing about the job: GitHub decides
    ['failed:idle-timeout', false],
    ['failed:runner-exited-without-job:exit-0', false],
    ['interrupted:failed:max-lifetime', false],
    ['', false],
  ])('phase %j → %s', (phase, took) => {
    expect(tookJobByPhase(phase)).toBe(took);
  });
});

describe('watch: lost before its job?', () => {
  it.each([
    ['running', 'runner-started', false],
    ['pending', 'booting', false],
    ['running', 'interrupted', true],
    ['running', 'failed:idle-timeout', true],
    ['shutting-down', 'runner-started', true],
    ['terminated', 'runner-started', true],
    ['stopped', 'runner-started', true],
    ['stopping', '', true],
    ['running', 'interrupted:failed:pre-runner-script-failed:exit-1', true],
  ])('%s with phase %j → %s', (state, phase, lost) => {
    expect(lostByInstance(inst(state, phase || undefined))).toBe(lost);
  });
  it('an instance EC2 does not list is not lost by that alone (eventual consistency)', () => {
    expect(lostByInstance(undefined)).toBe(false);
  });
});

describe('watch: poll interval', () => {
  it('defaults to 5 s, well within the minute a lost machine may wait, and reads SPOT_RUNNER_WATCH_POLL_SECONDS', () => {
    expect(tuning({}).watchPollSeconds).toBe(5);
    expect(tuning({ SPOT_RUNNER_WATCH_POLL_SECONDS: '1' }).watchPollSeconds).toBe(1);
    expect(tuning({ SPOT_RUNNER_WATCH_POLL_SECONDS: 'soon' }).watchPollSeconds).toBe(5);
    expect(tuning({ SPOT_RUNNER_WATCH_POLL_SECONDS: '0' }).watchPollSeconds).toBe(5);
  });
});
