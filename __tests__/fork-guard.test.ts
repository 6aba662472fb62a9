// The one fork guard (src/config.ts forkGuard), over event payloads in the shapes GitHub sends
// (https://docs.github.com/en/webhooks/webhook-events-and-payloads: pull_request,
// pull_request_target, workflow_run, issue_comment), trimmed to the fields around the repositories.
import { describe, expect, it } from '@jest/globals';
import { BASE_START, ENV, config } from '../test/fakes/harness.js';

const BASE = {
  id: 1296269,
  node_id: 'MDEwOlJlcG9zaXRvcnkxMjk2MjY5',
  name: 'widgets',
  full_name: 'acme/widgets',
  private: false,
  fork: false,
  owner: { login: 'acme', id: 1, type: 'Organization' },
};
const FORK = {
  id: 5550001,
  node_id: 'R_kgDOfork',
  name: 'widgets',
  full_name: 'mallory/widgets',
  private: false,
  fork: true,
  owner: { login: 'mallory', id: 666, type: 'User' },
};
// This repository is itself a fork of upstream: head.repo.fork is true even for its own branches.
const BASE_THAT_IS_A_FORK = { ...BASE, fork: true };

const prPayload = (head: object | null, base: object = BASE, action = 'opened') => ({
  action,
  number: 42,
  pull_request: {
    url: 'https://api.github.com/repos/acme/widgets/pulls/42',
    number: 42,
    state: 'open',
    head: {
      label: head ? 'mallory:feature' : 'unknown',
      ref: 'feature',
      sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e',
      repo: head,
    },
    base: { label: 'acme:main', ref: 'main', sha: '6dcb09b5b57875f334f61aebed695e2e4193db5f', repo: base },
  },
  repository: base,
  sender: { login: 'mallory', id: 666, type: 'User' },
});

const workflowRunPayload = (event: string, head: object | null) => ({
  action: 'completed',
  workflow_run: {
    id: 30433642,
    name: 'Build',
    event,
    status: 'completed',
    conclusion: 'success',
    head_branch: 'feature',
    head_sha: 'acb5820ced9479c074f688cc328bf03f341a511d',
    pull_requests: [],
    head_repository: head,
    repository: BASE,
  },
  repository: BASE,
  sender: { login: 'mallory', id: 666, type: 'User' },
});

const commentPayload = (onPr: boolean) => ({
  action: 'created',
  issue: {
    number: 42,
    title: 'Add a widget',
    ...(onPr
      ? {
          pull_request: {
            url: 'https://api.github.com/repos/acme/widgets/pulls/42',
            html_url: 'https://github.com/acme/widgets/pull/42',
          },
        }
      : {}),
  },
  comment: { id: 1, body: '/run-proofs' },
  repository: BASE,
  sender: { login: 'mallory', id: 666, type: 'User' },
});

const start =
  (eventName: string, event: unknown, inputs: Record<string, string> = {}) =>
  () =>
    config({ ...BASE_START, ...inputs }, { ...ENV, GITHUB_EVENT_NAME: eventName }, event);
const REFUSAL = /Input 'allow-forks': refusing to start runners for .*AWS network and instance role.*Fix: /;

describe('fork guard', () => {
  it('refuses a pull_request from a fork, naming the fork, the reason and the fix', () => {
    expect(start('pull_request', prPayload(FORK))).toThrow(
      /refusing to start runners for pull_request from mallory\/widgets: a self-hosted runner would run code/,
    );
    expect(start('pull_request', prPayload(FORK))).toThrow(REFUSAL);
  });
  it('refuses a pull request whose fork was deleted (head.repo is null)', () => {
    expect(start('pull_request', prPayload(null))).toThrow(/from a deleted repository \(head.repo is null\)/);
    expect(start('pull_request_target', prPayload(null))).toThrow(REFUSAL);
  });
  it('compares repository ids, not head.repo.fork: a branch PR inside a repository that is itself a fork is allowed', () => {
    expect(start('pull_request', prPayload(BASE_THAT_IS_A_FORK, BASE_THAT_IS_A_FORK))).not.toThrow();
  });
  it('refuses a fork whose fork flag is false but whose id differs (a renamed or transferred copy)', () => {
    expect(start('pull_request', prPayload({ ...FORK, fork: false, full_name: 'acme/widgets' }))).toThrow(REFUSAL);
  });
  it('refuses pull_request_target from a fork, and allows it from a branch of this repository', () => {
    expect(start('pull_request_target', prPayload(FORK))).toThrow(
      /refusing to start runners for pull_request_target from mallory\/widgets/,
    );
    expect(start('pull_request_target', prPayload(BASE))).not.toThrow();
  });
  it('refuses a workflow_run triggered by a pull request from a fork', () => {
    expect(start('workflow_run', workflowRunPayload('pull_request', FORK))).toThrow(
      /refusing to start runners for workflow_run of a pull_request run from mallory\/widgets/,
    );
    expect(start('workflow_run', workflowRunPayload('pull_request', null))).toThrow(REFUSAL);
    expect(start('workflow_run', workflowRunPayload('pull_request', BASE))).not.toThrow();
    expect(start('workflow_run', workflowRunPayload('push', BASE))).not.toThrow();
  });
  it('refuses an issue_comment on a pull request (the payload does not say where its head lives), not on an issue', () => {
    expect(start('issue_comment', commentPayload(true))).toThrow(
      /refusing to start runners for issue_comment on a pull request from pull request #42/,
    );
    expect(start('issue_comment', commentPayload(false))).not.toThrow();
  });
  it('allows a same-repository pull request, a push, and everything when allow-forks is true', () => {
    expect(start('pull_request', prPayload(BASE))).not.toThrow();
    expect(start('push', { ref: 'refs/heads/main', repository: BASE })).not.toThrow();
    for (const [name, ev] of [
      ['pull_request', prPayload(FORK)],
      ['pull_request_target', prPayload(null)],
      ['workflow_run', workflowRunPayload('pull_request', FORK)],
      ['issue_comment', commentPayload(true)],
    ] as const) {
      expect(start(name, ev, { 'allow-forks': 'true' })).not.toThrow();
    }
  });
  it('guards only start: stop and reap of a fork run still clean up', () => {
    const env = { ...ENV, GITHUB_EVENT_NAME: 'pull_request' };
    expect(() =>
      config({ mode: 'stop', 'github-token': 't', label: 'spot-runner-1-1-aaaaaa-00000000' }, env, prPayload(FORK)),
    ).not.toThrow();
  });
});
