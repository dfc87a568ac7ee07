#!/usr/bin/env node
/**
 * Builds the optional native helper (native/sockopt.cc, native/datapath.cc
 * -> build/Release/twamp_sockopt.node): DSCP marking of TWAMP test packets
 * (IP_TOS / IPV6_TCLASS; Node 20's dgram cannot), and on Linux the native
 * test-socket datapath (kernel timestamps, scheduled departures) and the
 * CLOCK_REALTIME clock (src/session/native.ts).
 *
 * Runs as the package's `install` script, so it must never fail an install:
 * on any problem it prints one warning and exits 0, and the agent runs
 * without DSCP marking (dscpSupport() says why). `--strict` (the
 * `build:native` script) exits 1 instead, for developers and CI.
 *
 * Environment:
 *   OTEL_TWAMP_SKIP_NATIVE=1  skip the build (exit 0)
 *   npm_config_node_gyp       node-gyp's CLI, set by npm in lifecycle scripts
 *   npm_config_nodedir        Node headers, read by node-gyp itself
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON = join(ROOT, 'build', 'Release', 'twamp_sockopt.node');
const LOG = join(ROOT, 'build', 'native-build.log');
const TIMEOUT_MS = 5 * 60 * 1000;
const strict = process.argv.includes('--strict');
const verbose = process.argv.includes('--verbose') || process.env.npm_config_foreground_scripts === 'true';

function finish(ok, message, detail) {
  if (ok) {
    console.log(`otel-twamp: ${message}`);
    process.exit(0);
  }
  const tail = detail ? `\n${detail.trimEnd().split('\n').slice(-10).map((l) => `  | ${l}`).join('\n')}` : '';
  console.warn(
    `otel-twamp: WARNING: native helper not built (${message}). ` +
      'Test packets will be sent WITHOUT DSCP marking (TOS/Traffic Class 0), ' +
      'with userspace timestamps (node:dgram) and an anchored clock. ' +
      'To enable it install python3, make and a C++ compiler, then run `npm run build:native`.' +
      tail,
  );
  process.exit(strict ? 1 : 0);
}

/** How to run node-gyp: [command, argsPrefix], or undefined. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(createRequire(join(ROOT, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a local dependency
  }
  // npm's bundled copy: next to the running npm, or next to this node binary.
  if (process.env.npm_execpath) {
    candidates.push(resolve(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  const prefix = resolve(dirname(process.execPath), '..');
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const c of candidates) {
    if (existsSync(c)) return /\.[cm]?js$/.test(c) ? [process.execPath, [c]] : [c, []];
  }
  // Last resort: a node-gyp on PATH or in npx's cache, without downloading.
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
  const probe = spawnSync(npx, ['--no-install', 'node-gyp', '--version'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.status === 0) return [npx, ['--no-install', 'node-gyp']];
  return undefined;
}

/**
 * Outside npm, node-gyp would try to download headers; when this node was
 * installed with its own headers (distro packages, official tarballs), use them.
 */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  const versionH = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(join(prefix, 'include', 'node', 'common.gypi')) || !existsSync(versionH)) return [];
  const h = readFileSync(versionH, 'utf8');
  const num = (name) => h.match(new RegExp(`#define ${name} (\\d+)`))?.[1];
  const headers = `v${num('NODE_MAJOR_VERSION')}.${num('NODE_MINOR_VERSION')}.${num('NODE_PATCH_VERSION')}`;
  return headers === process.version ? [`--nodedir=${prefix}`] : [];
}

if (process.env.OTEL_TWAMP_SKIP_NATIVE === '1') finish(false, 'OTEL_TWAMP_SKIP_NATIVE=1');
if (process.platform === 'win32') finish(false, 'not supported on Windows');
if (!existsSync(join(ROOT, 'binding.gyp'))) finish(false, `binding.gyp missing in ${ROOT}`);
try {
  createRequire(join(ROOT, 'package.json')).resolve('node-addon-api');
} catch {
  finish(false, 'the node-addon-api package is not installed');
}

const gyp = findNodeGyp();
if (gyp === undefined) finish(false, 'node-gyp not found (neither npm_config_node_gyp, npm\'s bundled copy, nor npx)');

const [cmd, prefixArgs] = gyp;
const args = [...prefixArgs, 'rebuild', ...nodedirArgs()];
const env = { ...process.env };
if (env.npm_config_nodedir === '') delete env.npm_config_nodedir; // an empty one beats --nodedir
const run = spawnSync(cmd, args, {
  cwd: ROOT,
  env,
  encoding: 'utf8',
  timeout: TIMEOUT_MS,
  killSignal: 'SIGKILL',
  maxBuffer: 64 * 1024 * 1024,
  stdio: ['ignore', 'pipe', 'pipe'],
});
const output = `$ ${[cmd, ...args].join(' ')}\n${run.stdout ?? ''}${run.stderr ?? ''}`;
try {
  mkdirSync(dirname(LOG), { recursive: true });
  writeFileSync(LOG, output);
} catch {
  // the log is a convenience
}
if (verbose) process.stdout.write(output);

if (run.error) finish(false, `node-gyp could not run: ${run.error.message}`, output);
if (run.signal) finish(false, `node-gyp killed by ${run.signal} (timeout ${TIMEOUT_MS / 1000} s?)`, output);
if (run.status !== 0) {
  const headers = /download\/release|network connectivity/.test(output)
    ? '; it tried to download Node headers: point npm at installed ones (`npm config set nodedir <node prefix>`)'
    : '';
  finish(false, `node-gyp exited with ${run.status}${headers}; full log in ${LOG}`, output);
}
if (!existsSync(ADDON)) finish(false, `node-gyp succeeded but ${ADDON} is missing`, output);

// Load it once, in a child, so a broken binary is reported here and not at run time.
const check = spawnSync(
  process.execPath,
  ['-e', `const a = require(${JSON.stringify(ADDON)}); if (typeof a.setTos !== 'function' || typeof a.getTos !== 'function') process.exit(3);` +
    ` if (process.platform === 'linux' && (typeof a.Datapath !== 'function' || typeof a.realtimeNs() !== 'bigint')) process.exit(4);`],
  { encoding: 'utf8', timeout: 30_000 },
);
if (check.status !== 0) finish(false, `built ${ADDON} but it does not load`, `${check.stdout}${check.stderr}`);

finish(true, `native helper built: ${ADDON}`);
