// References to this repository inside it: `owner/repo@v1` (the action), `owner/repo/<dir>@v1` (a
// composite sub-action) and `owner/repo/.github/workflows/<file>@v1` (a reusable workflow). A fork
// must rewrite them all, because a reusable workflow runs in its caller's repository and cannot
// say `./`. package.json's "repository" names the owner/repo; `npm run retarget` rewrites every
// file that names it (see scripts/retarget.mjs).
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The version every internal reference uses; a release moves this major tag (release.yml). */
export const MAJOR = 'v1';
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\/[A-Za-z0-9._-]+$/;
/** Files never rewritten: generated (dist/, rebuilt from sources) or not ours (the lock file). */
const SKIP = /^(dist\/|node_modules\/|package-lock\.json$)|\.(png|jpe?g|gif|ico|gz|zip|tgz)$/;

export interface Ref {
  file: string;
  line: number;
  text: string;
  owner: string;
  repo: string;
  path: string;
  version: string;
}

/** owner/repo from package.json's "repository" (`github:owner/repo` or a github.com URL). */
export function identity(root: string): string {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    repository?: string | { url?: string };
  };
  const raw = typeof pkg.repository === 'string' ? pkg.repository : (pkg.repository?.url ?? '');
  const m = /^(?:github:|git\+https:\/\/github\.com\/|https:\/\/github\.com\/)?([^/]+\/[^/.]+?)(?:\.git)?$/.exec(raw);
  if (!m?.[1]) throw new Error(`package.json: "repository" must be github:OWNER/REPO (got '${raw}')`);
  return m[1];
}

/** The files a fork rewrites: every tracked text file but the generated and foreign ones. */
export function repoFiles(root: string): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  });
  return out
    .split('\0')
    .filter((f) => f && !SKIP.test(f) && existsSync(join(root, f)) && lstatSync(join(root, f)).isFile());
}

/** Is `path` (after owner/repo) one of ours: the root action, a sub-action directory, or a workflow? */
function ours(root: string, path: string): boolean {
  if (path === '') return false; // the root action is known by name only: owner/checkout@v4 is not ours
  if (/^\/\.github\/workflows\/[\w.-]+\.ya?ml$/.test(path)) return existsSync(join(root, path));
  return existsSync(join(root, path, 'action.yml')) || existsSync(join(root, path, 'action.yaml'));
}

/**
 * Every reference in `text` that points into this repository: named by the repository's own
 * name, or by a path that exists here. Upper-case placeholders (`ORG/REPO`, as the seed writes
 * them) are examples for the reader, not references.
 */
export function findRefs(root: string, file: string, text: string, repoName: string): Ref[] {
  const refs: Ref[] = [];
  const re = /(?<![\w./@-])([A-Za-z0-9][\w-]*)\/([\w.-]+?)((?:\/[\w.-]+)*)@([\w.-]+)/g;
  text.split('\n').forEach((lineText, i) => {
    for (const m of lineText.matchAll(re)) {
      const [text, owner, repo, path, version] = m as unknown as [string, string, string, string, string];
      if (/^[A-Z_]+$/.test(owner)) continue;
      // Third-party actions are pinned to a commit SHA; ours float on the major tag.
      if (repo !== repoName && !(ours(root, path) && !/^[0-9a-f]{40}$/.test(version))) continue;
      refs.push({ file, line: i + 1, text, owner, repo, path, version });
    }
  });
  return refs;
}

/** Every internal reference, bar the test files' fixtures (which hold wrong ones on purpose, for the checkers). */
export function allRefs(root: string): Ref[] {
  const repoName = identity(root).split('/')[1] ?? '';
  return repoFiles(root)
    .filter((f) => !f.startsWith('__tests__/'))
    .flatMap((f) => findRefs(root, f, readFileSync(join(root, f), 'utf8'), repoName));
}

/**
 * Rewrites every mention of the current owner/repo (as a whole name, in references, links and
 * prose) to `target`, in every file repoFiles lists, package.json's "repository" included.
 * Returns the files it changed.
 */
export function retarget(root: string, target: string): string[] {
  if (!NAME.test(target))
    throw new Error(`retarget: '${target}' is not OWNER/REPO (for example: npm run retarget -- myorg/spot-runner)`);
  const current = identity(root);
  if (current === target) return [];
  const escaped = current.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const whole = new RegExp(`(?<![\\w.-])${escaped}(?![\\w-])`, 'g');
  const changed: string[] = [];
  for (const f of repoFiles(root)) {
    const p = join(root, f);
    const before = readFileSync(p, 'utf8');
    const after = before.replace(whole, target);
    if (after !== before) {
      writeFileSync(p, after);
      changed.push(f);
    }
  }
  return changed;
}
