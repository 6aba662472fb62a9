// One lab per test file, back to an empty account between scenarios. The returned object
// forwards to the lab started in beforeAll, so scenarios read `lab.start(…)` as usual.
import { afterAll, afterEach, beforeAll, beforeEach } from '@jest/globals';
import { startLab, type Lab, type LabOptions } from './lab.js';

export function useLab(o: LabOptions = {}): Lab {
  let current: Lab | undefined;
  beforeAll(async () => {
    current = await startLab(o);
  }, 60_000);
  beforeEach(async () => {
    await current?.reset();
  });
  afterEach(async () => {
    await current?.sim.reset();
  });
  afterAll(async () => {
    await current?.close();
  });
  return new Proxy({} as Lab, {
    get(_, key) {
      if (!current) throw new Error('the lab is not started yet: use it inside a test');
      const v: unknown = Reflect.get(current, key, current);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(current) : v;
    },
    set(_, key, value) {
      if (!current) throw new Error('the lab is not started yet: use it inside a test');
      return Reflect.set(current, key, value, current);
    },
  });
}
