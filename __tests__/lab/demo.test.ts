// `npm run demo` is a newcomer's first command: it must end clean, show the job summaries as text
// tables, and print no stack trace (the AWS SDK's Node-version warning on Node 20 included).
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it('runs start → jobs → stop, prints readable summaries and no stack trace', () => {
    const r = spawnSync(process.execPath, ['scripts/demo.mjs'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 150_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status).toBe(0);
    expect(out).toContain('leak check: clean');
    expect(out).not.toMatch(/^\s+at .+[(:]\d+/m); // a stack frame
    expect(out).not.toMatch(/<\/?(table|tr|td|th|h3|code)>/);
    expect(out).toMatch(
      /^ {2}runner +instance +type +AZ +market +spot price \(USD\/h\) +runner version +fingerprint$/m,
    );
    expect(out).toMatch(
      /^ {2}instance +type +market +state before stop +interrupted +hours +cost \(USD, with EBS\) +price from +GitHub-hosted, same minutes +runner version +fingerprint$/m,
    );
    const sdkNotes = out
      .split('\n')
      .filter((l) => l.includes('NodeVersionSupportWarning') || l.startsWith("note: the AWS SDK's releases"));
    expect(sdkNotes).toEqual(
      Number(process.versions.node.split('.')[0]) < 22
        ? ["note: the AWS SDK's releases from January 2027 need Node.js >= 22 (this is " + process.version + ')']
        : [],
    );
  }, 180_000);
});
