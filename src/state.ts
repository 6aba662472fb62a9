import * as core from '@actions/core';

// Everything start creates is recorded here the moment it exists, so the post step (and a
// signal handler) can roll back whatever made it into the world.

export interface Resources {
  label?: string;
  region?: string;
  scope?: 'repo' | 'org';
  /** Who recorded it: post removes a watch's resources by record only, never by label. */
  mode?: 'start' | 'watch';
  launchTemplateIds: string[];
  instanceIds: string[];
  parameterNames: string[];
  runnerIds: number[];
  /**
   * Runner names, recorded before generate-jitconfig is sent: a step killed while the request is
   * in flight never learns the id of a runner GitHub did register, and post finds it by name.
   */
  runnerNames: string[];
  /** Runner names a fleet request is launching machines for, recorded before the request. */
  launchingNames: string[];
  /**
   * Names whose fleet request was answered (its instances are in instanceIds) or refused. A name
   * launching but not launched: the step stopped while EC2 may have launched for it unseen.
   */
  launchedNames: string[];
}

/** What a step records as it creates it, for rollback and for post. */
export type RecordedKey =
  | 'launchTemplateIds'
  | 'instanceIds'
  | 'parameterNames'
  | 'runnerIds'
  | 'runnerNames'
  | 'launchingNames'
  | 'launchedNames';

export function emptyResources(): Resources {
  return {
    launchTemplateIds: [],
    instanceIds: [],
    parameterNames: [],
    runnerIds: [],
    runnerNames: [],
    launchingNames: [],
    launchedNames: [],
  };
}

const KEY = 'resources';
const IS_POST = 'isPost';

/** One bundle serves main and post; the main run leaves this mark so the post run knows itself. */
export function isPost(): boolean {
  return Boolean(core.getState(IS_POST));
}

export function markMainRan(): void {
  core.saveState(IS_POST, 'true');
}

export class StateRecorder {
  constructor(readonly resources: Resources = emptyResources()) {}

  private save(): void {
    core.saveState(KEY, JSON.stringify(this.resources));
  }

  setContext(label: string, region: string, scope: 'repo' | 'org', mode?: 'watch'): void {
    Object.assign(this.resources, { label, region, scope, ...(mode ? { mode } : {}) });
    this.save();
  }

  add<K extends RecordedKey>(key: K, ...items: Resources[K]): void {
    const list = this.resources[key] as unknown[];
    for (const it of items) if (!list.includes(it)) list.push(it);
    this.save();
  }
}

export function loadResources(): Resources | undefined {
  const raw = core.getState(KEY);
  if (!raw) return undefined;
  return { ...emptyResources(), ...(JSON.parse(raw) as Partial<Resources>) };
}
