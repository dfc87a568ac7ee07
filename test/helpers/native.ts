// Tests of the native datapath: run when the helper is built, skip with one
// line saying why when it is not, and fail under CI, where `npm ci` builds it.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { datapathSupport } from '../../src/session/datapath.js';
import { isCI } from './peers.js';

/** True when the native datapath is available; otherwise skips `t` (fails it under CI). */
export function needNative(t: TestContext): boolean {
  const s = datapathSupport();
  if (s.native) return true;
  if (isCI()) assert.fail(`CI is set but the native datapath is unavailable: ${s.reason}`);
  const why = `native datapath unavailable: ${s.reason} (build it with \`npm run build:native\`)`;
  console.warn(`skipping "${t.name}": ${why}`);
  t.skip(why);
  return false;
}
