/**
 * The command line's OpenTelemetry SDK and exporters are optional peer
 * dependencies of the `otel-twamp` library (README "Install"): a library
 * install does not bring them; the `otel-twamp-agent` package does. Before
 * a command that needs them loads them, this says which are missing and
 * what to install, instead of Node's ERR_MODULE_NOT_FOUND.
 */
import { readFileSync } from 'node:fs';

interface Manifest {
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** The optional peers with their ranges, from this package's own package.json (dist/src/cli → the root). */
export function optionalPeers(manifestUrl = new URL('../../../package.json', import.meta.url)): Record<string, string> {
  const pkg = JSON.parse(readFileSync(manifestUrl, 'utf8')) as Manifest;
  const out: Record<string, string> = {};
  for (const [name, range] of Object.entries(pkg.peerDependencies ?? {})) {
    if (pkg.peerDependenciesMeta?.[name]?.optional === true) out[name] = range;
  }
  return out;
}

/** Those of `peers` that cannot be imported from here. */
export function missingPeers(peers: Record<string, string>, resolve: (name: string) => unknown = (n) => import.meta.resolve(n)): string[] {
  return Object.keys(peers).filter((name) => {
    try {
      resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * The message for a command that cannot run without `missing`, or undefined
 * when nothing is missing.
 */
export function missingPeersMessage(command: string, peers: Record<string, string> = optionalPeers(),
  missing: readonly string[] = missingPeers(peers)): string | undefined {
  if (missing.length === 0) return undefined;
  const all = Object.entries(peers).map(([n, r]) => `'${n}@${r}'`);
  return `otel-twamp ${command}: needs the OpenTelemetry SDK and exporters, which the otel-twamp library does not install\n` +
    `  missing: ${missing.join(', ')}\n` +
    '  install the command line:  npm i -g otel-twamp-agent   (or run it once: npx otel-twamp-agent ...)\n' +
    `  or add them to this project: npm i ${all.join(' ')}\n`;
}
