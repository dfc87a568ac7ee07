/**
 * `otel-twamp reflect`: a standalone TWAMP reflector (server + session
 * reflector) with limits from flags, logging sessions as they come and go,
 * optionally exporting its counters for Prometheus. SIGINT/SIGTERM stop it
 * cleanly (exit 0).
 */
import { parseArgs } from './common.js'; // our messages for unknown options
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { parseReflectorConfig } from '../config/load.js';
import { parseListen } from '../config/schema.js';
import type { ReflectorConfig } from '../config/types.js';
import { SESSION_LOG_LINES_PER_S, type SessionEvent } from '../session/controlServer.js';
import { LineBudget } from '../session/limits.js';
import { TwampReflector } from '../reflector.js';
import { UsageError, parseFlags, parseOrExit, untilStopped } from './common.js';
import { childLogger, consoleLogger, type Logger, type LogLevel } from '../util/log.js';
import { PrometheusEndpoint } from './exporters.js';
import { cliResource } from './resource.js';
import { messageOf } from '../util/errors.js';

/** Every other twamp_reflector key as a flag: limits, access lists, security modes, TWAMP Light. */
const EXTRA_FLAGS: readonly { flag: string; key: string; kind: 'number' | 'string' | 'list' | 'numbers' | 'bool'; value?: boolean }[] = [
  { flag: 'max-connections', key: 'max_connections', kind: 'number' },
  { flag: 'max-sessions-per-connection', key: 'max_sessions_per_connection', kind: 'number' },
  { flag: 'max-session-duration', key: 'max_session_duration', kind: 'number' },
  { flag: 'max-pps-per-session', key: 'max_pps_per_session', kind: 'number' },
  { flag: 'max-pps', key: 'max_pps', kind: 'number' },
  { flag: 'max-padding', key: 'max_padding', kind: 'number' },
  { flag: 'allow', key: 'allow', kind: 'list' },
  { flag: 'deny', key: 'deny', kind: 'list' },
  { flag: 'control-timeout', key: 'control_timeout', kind: 'number' },
  { flag: 'max-connections-per-client', key: 'max_connections_per_client', kind: 'number' },
  { flag: 'max-sessions-per-client', key: 'max_sessions_per_client', kind: 'number' },
  { flag: 'client-ipv6-prefix', key: 'client_ipv6_prefix', kind: 'number' },
  { flag: 'kdf-rate-per-client', key: 'kdf_rate_per_client', kind: 'number' },
  { flag: 'allow-third-party-sender', key: 'allow_third_party_sender', kind: 'bool' },
  { flag: 'allow-reply-ports', key: 'allow_reply_ports', kind: 'numbers' },
  { flag: 'modes', key: 'modes', kind: 'list' },
  { flag: 'key-file', key: 'key_file', kind: 'string' },
  { flag: 'kdf-count', key: 'kdf_count', kind: 'number' },
  { flag: 'light-port', key: 'light_port', kind: 'number' },
  { flag: 'light-only', key: 'control', kind: 'bool', value: false },
  { flag: 'light-stateful', key: 'light_stateful', kind: 'bool' },
  { flag: 'light-rate-limit', key: 'light_rate_limit', kind: 'number' },
  { flag: 'light-max-pps', key: 'light_max_pps', kind: 'number' },
  { flag: 'light-max-octets-per-source', key: 'light_max_octets_per_source', kind: 'number' },
  { flag: 'light-max-octets', key: 'light_max_octets', kind: 'number' },
  { flag: 'light-symmetric-only', key: 'light_symmetric_only', kind: 'bool' },
  { flag: 'light-key-id', key: 'light_key_id', kind: 'string' },
  { flag: 'light-cos-allow', key: 'light_cos_allow', kind: 'list' },
];

export const REFLECT_USAGE = `Usage: otel-twamp reflect [options]

Run a TWAMP reflector (RFC 5357 server and session-reflector) that serves any
compliant client (twping, routers, otel-twamp probe/agent). Sessions are
logged as they start and end; Ctrl-C or SIGTERM stops it.

Options:
      --listen ADDR           address for TWAMP-Control (default 0.0.0.0; :: for IPv6)
      --port N                TWAMP-Control port (default 862; 0 = ephemeral)
      --max-sessions N        test sessions at once (default 1000)
      --refwait S             end a started session after S seconds without packets (default 900)
      --servwait S            close an idle control connection after S seconds (default 900)
      --test-port-range LO-HI UDP ports for test sessions (default: the requested one, else ephemeral)
      --max-connections N, --max-sessions-per-connection N, --max-session-duration S,
      --max-pps-per-session N, --max-pps N, --max-padding OCTETS, --control-timeout S
                              limits (defaults as the twamp_reflector keys, see docs/configuration.md)
      --max-connections-per-client N (default 8), --max-sessions-per-client N (default 64),
      --kdf-rate-per-client N (authenticated set-ups per second, default 10),
      --client-ipv6-prefix BITS (IPv6 clients grouped by prefix, default 64)
                              per-client limits (client = source address)
      --allow-third-party-sender  accept a Sender Address other than the client's own
      --allow-reply-ports P[,P…]  ports below 1024 replies may go to (default none)
      --allow CIDR[,CIDR…]    serve only these client networks; --deny CIDR[,…] refuses (wins)
      --modes M[,M…]          open, authenticated, encrypted, mixed (default open)
      --key-file FILE         pfstore-format pass-phrases (keyid hex) for the secured modes
      --kdf-count N           PBKDF2 Count in the greeting (default 2048)
      --light-port N          also answer TWAMP Light / STAMP on UDP port N
      --light-only            Light/STAMP only, no TWAMP-Control (needs --light-port)
      --light-stateful        Light: a sequence counter per sender
      --light-rate-limit N    Light: packets per second per source (default 1000)
      --light-max-pps N       Light: replies per second, all sources together (default 10000)
      --light-max-octets-per-source N, --light-max-octets N
                              Light: reply octets per second (IP level) per source
                              (default 1250000) and in total (default 12500000)
      --light-symmetric-only  Light: answer only requests at least as long as the reply
                              (≥ 44 octets), so nothing is amplified
      --light-key-id ID       Light: answer only authenticated STAMP keyed with ID's
                              secret from --key-file
      --light-cos-allow D[,D…] STAMP Class of Service (RFC 8972): DSCPs a sender may ask
                              for besides the one its packet arrived with (ef, af41, 46…)
      --metrics HOST:PORT     serve Prometheus metrics at http://HOST:PORT/metrics
      --log-level L           debug | info | warn | error (default info)
  -h, --help                  this help

Ports below 1024 (TWAMP's 862) need root or CAP_NET_BIND_SERVICE.
`;

const FLAG_OF: Readonly<Record<string, string>> = {
  listen: '--listen',
  port: '--port',
  max_sessions: '--max-sessions',
  refwait: '--refwait',
  servwait: '--servwait',
  test_port_range: '--test-port-range',
  ...Object.fromEntries(EXTRA_FLAGS.map((f) => [f.key, `--${f.flag}`])),
};


function numeric(v: string): number | string {
  return /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(v.trim()) ? Number(v) : v;
}

/** One log line per test session as it is accepted and as it ends. */
export function logSessionEvent(log: Logger | LineBudget, e: SessionEvent): void {
  const info = (msg: string): void => { if (log instanceof LineBudget) log.line('info', msg); else log.info(msg); };
  if (e.type === 'accepted') {
    info(`${e.peer}: session accepted, reflector port ${e.port}` +
      (e.requestedPort && e.requestedPort !== e.port ? ` (requested ${e.requestedPort} was unusable)` : ''));
  } else {
    info(`${e.peer}: session on port ${e.port} ended (${e.why}), ${e.reflected} packets reflected`);
  }
}

/**
 * Session events as log lines, at most `perSecond` a second: a client
 * churning sessions cannot flood the log (docs/security.md); the rest are
 * summed up as "N more session events not logged". flush() at shutdown.
 */
export function sessionEventLogger(log: Logger, perSecond = SESSION_LOG_LINES_PER_S): { onEvent: (e: SessionEvent) => void; flush: () => void } {
  const budget = new LineBudget(log, perSecond, 'session events');
  return { onEvent: (e) => logSessionEvent(budget, e), flush: () => budget.flush() };
}

interface ReflectArgs {
  config: ReflectorConfig;
  metrics: { host: string; port: number } | undefined;
  level: LogLevel;
}

function parseReflectArgs(argv: string[]): ReflectArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        port: { type: 'string' },
        'max-sessions': { type: 'string' },
        refwait: { type: 'string' },
        servwait: { type: 'string' },
        'test-port-range': { type: 'string' },
        ...Object.fromEntries(EXTRA_FLAGS.map((f) => [f.flag, { type: f.kind === 'bool' ? 'boolean' as const : 'string' as const }])),
        metrics: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(messageOf(e));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const level = (v['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    throw new UsageError(`--log-level: expected debug, info, warn or error, got ${JSON.stringify(v['log-level'])}`);
  }
  const raw: Record<string, unknown> = { id: 'reflect' };
  if (v.listen !== undefined) raw.listen = v.listen;
  if (v.port !== undefined) raw.port = numeric(v.port);
  if (v['max-sessions'] !== undefined) raw.max_sessions = numeric(v['max-sessions']);
  if (v.refwait !== undefined) raw.refwait = numeric(v.refwait);
  if (v.servwait !== undefined) raw.servwait = numeric(v.servwait);
  if (v['test-port-range'] !== undefined) raw.test_port_range = v['test-port-range'];
  const values = v as Record<string, string | boolean | undefined>;
  for (const f of EXTRA_FLAGS) {
    const val = values[f.flag];
    if (val === undefined) continue;
    raw[f.key] = f.kind === 'bool' ? f.value ?? true
      : f.kind === 'list' ? String(val).split(',').map((x) => x.trim()).filter(Boolean)
        : f.kind === 'numbers' ? String(val).split(',').map((x) => x.trim()).filter(Boolean).map(numeric)
        : f.kind === 'number' ? numeric(String(val)) : val;
  }
  const config = parseFlags(FLAG_OF, () => parseReflectorConfig(raw));
  let metrics: { host: string; port: number } | undefined;
  if (v.metrics !== undefined) {
    metrics = parseListen(v.metrics);
    if (!metrics) {
      throw new UsageError(`--metrics: expected HOST:PORT ([::1]:9464 for IPv6, :9464 for all interfaces), got ${JSON.stringify(v.metrics)}`);
    }
  }
  return { config, metrics, level };
}

export async function reflectMain(argv: string[]): Promise<number> {
  const args = parseOrExit('reflect', () => parseReflectArgs(argv));
  if (typeof args === 'number') return args;
  if (args === 'help') { process.stdout.write(REFLECT_USAGE); return 0; }

  const log = consoleLogger(args.level);
  const endpoint = args.metrics ? new PrometheusEndpoint({ ...args.metrics, path: '/metrics' }, 'legacy') : undefined;
  const meterProvider = new MeterProvider({ resource: cliResource(), readers: endpoint ? [endpoint.reader] : [] });
  const sessionLog = sessionEventLogger(childLogger(log, `[${args.config.id}] `));
  const reflector = new TwampReflector(args.config, { meterProvider, logger: log, onSessionEvent: sessionLog.onEvent });
  try {
    await reflector.start();
    if (endpoint) {
      const { url } = await endpoint.start();
      log.info(`Prometheus metrics at ${url}`);
    }
  } catch (e) {
    log.error(messageOf(e));
    await reflector.stop().catch(() => undefined);
    await endpoint?.stop().catch(() => undefined);
    await meterProvider.shutdown().catch(() => undefined);
    return 1;
  }

  const c = reflector.counters;
  return untilStopped(log, async () => {
    await reflector.stop();
    sessionLog.flush();
    await endpoint?.stop();
    await meterProvider.shutdown();
    log.info(`stopped: ${c.sessionAttempts} session request(s), ${c.sessionsStarted} started, ` +
      `${c.reflectedPackets} packet(s) reflected, ${c.droppedPackets} dropped`);
  });
}
