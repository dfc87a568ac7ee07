/**
 * Files a config names, read at load time: the agent file itself,
 * `secret_file` (a pass-phrase) and `key_file` (perfSONAR pfstore keys).
 * Every read is bounded and refuses what is not a regular file; problems
 * become issues naming the key and the path, never a file's content.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyIdProblem } from './fields.js';
import type { RawIssue } from './issues.js';
import { Secret } from '../options.js';
import { messageOf } from '../util/errors.js';

/** Where relative file names in a config resolve from, and the problems met reading them. */
export interface FileContext {
  /** Directory of the config file; the working directory for inline configs. */
  baseDir: string;
  issues: RawIssue[];
}

export function fileContext(source: string): FileContext {
  const isFile = source !== '<inline>' && !source.startsWith('<');
  const path = source.startsWith('file:') ? fileURLToPath(source) : source;
  return { baseDir: isFile ? dirname(resolvePath(path)) : process.cwd(), issues: [] };
}

function readProblem(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
}

/** Largest `secret_file`: a pass-phrase is a line of text. */
export const MAX_SECRET_FILE_OCTETS = 64 * 1024;
/** Largest `key_file`: thousands of pfstore lines. */
export const MAX_KEY_FILE_OCTETS = 1024 * 1024;
/** Largest agent config file (50,000 labels are about 1 MiB). */
export const MAX_CONFIG_FILE_OCTETS = 16 * 1024 * 1024;

/** Why a file was not read (the message names the path). */
class FileReadError extends Error {}

function describeKind(st: Stats): string {
  return st.isDirectory() ? 'is a directory' : st.isFIFO() ? 'is a FIFO (named pipe)' : st.isCharacterDevice() ? 'is a character device'
    : st.isBlockDevice() ? 'is a block device' : st.isSocket() ? 'is a socket' : 'is not a regular file';
}

/**
 * A regular file's octets, at most `limit` of them. Opened non-blocking, so
 * a FIFO cannot stall the event loop in open(), and refused unless fstat
 * says it is a regular file (no /dev/zero, no pipes); the read stops past
 * `limit` even if the file grows after the fstat.
 */
export function readBoundedFile(path: string, limit: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw new FileReadError(readProblem(err));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(`${describeKind(st)}, expected a regular file`);
    if (st.size > limit) throw new FileReadError(`is ${st.size} octets, more than the ${limit} allowed`);
    const buf = Buffer.alloc(limit + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > limit) throw new FileReadError(`grew past the ${limit} octets allowed while being read`);
    }
    return buf.subarray(0, n);
  } catch (err) {
    throw err instanceof FileReadError ? err : new FileReadError(readProblem(err));
  } finally {
    closeSync(fd);
  }
}

/** The file's octets, or undefined after recording an issue naming key and path. */
function readConfigFile(ctx: FileContext, key: string, name: string, limit: number): { path: string; data: Buffer } | undefined {
  const path = resolvePath(ctx.baseDir, name);
  try {
    return { path, data: readBoundedFile(path, limit) };
  } catch (err) {
    ctx.issues.push({ path: [key], message: `cannot read ${JSON.stringify(path)}: ${messageOf(err)}` });
    return undefined;
  }
}

/**
 * secret_file: the pass-phrase itself, on one line (a final line break is
 * ignored). Messages name the file, never its content.
 */
export function readSecretFile(ctx: FileContext, name: string): Secret | undefined {
  const f = readConfigFile(ctx, 'secret_file', name, MAX_SECRET_FILE_OCTETS);
  if (!f) return undefined;
  const text = f.data.toString('utf8').replace(/\r?\n$/, '');
  const problem =
    text.length === 0 ? 'is empty' : /[\r\n]/.test(text) ? 'must hold the pass-phrase on a single line' : undefined;
  if (problem !== undefined) {
    ctx.issues.push({ path: ['secret_file'], message: `${JSON.stringify(f.path)} ${problem}` });
    return undefined;
  }
  return new Secret(text);
}

/**
 * Parses a perfSONAR pass-phrase file as `pfstore` writes it (I2util
 * I2ParsePFFile): one `<key id> <hex of the pass-phrase>` per line, blank
 * lines and lines starting with `#` ignored. Errors name file and line.
 */
export function parseKeyFile(text: string, file: string): { keys: Map<string, Secret> } | { error: string } {
  const keys = new Map<string, Secret>();
  const firstLine = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const at = `${JSON.stringify(file)} line ${i + 1}`;
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) return { error: `${at}: expected "<key id> <hex pass-phrase>" (as pfstore writes it)` };
    const [id, hex] = parts as [string, string];
    const idProblem = keyIdProblem(id);
    if (idProblem !== undefined) return { error: `${at}: key id ${idProblem}` };
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
      return { error: `${at}: the pass-phrase of ${JSON.stringify(id)} must be an even number of hex digits` };
    }
    const first = firstLine.get(id);
    if (first !== undefined) return { error: `${at}: key id ${JSON.stringify(id)} already defined on line ${first}` };
    firstLine.set(id, i + 1);
    keys.set(id, new Secret(Buffer.from(hex, 'hex')));
  }
  return { keys };
}

export function readKeyFile(ctx: FileContext, name: string): Map<string, Secret> | undefined {
  const f = readConfigFile(ctx, 'key_file', name, MAX_KEY_FILE_OCTETS);
  if (!f) return undefined;
  const parsed = parseKeyFile(f.data.toString('utf8'), f.path);
  if ('error' in parsed) {
    ctx.issues.push({ path: ['key_file'], message: parsed.error });
    return undefined;
  }
  if (parsed.keys.size === 0) {
    ctx.issues.push({ path: ['key_file'], message: `${JSON.stringify(f.path)} holds no keys` });
    return undefined;
  }
  return parsed.keys;
}
