/**
 * `otel-twamp probe HOST[:PORT]`: one TWAMP test session from the command
 * line, printed like twping but per direction and with MOS, or as one JSON
 * document (`--json`, schema in format.ts).
 *
 * Exit codes: 0 ok; 1 the session failed (the message names the peer and the
 * reason); 2 usage error (the message names the flag); 3 round-trip loss
 * above `--max-loss`.
 */
import { UsageError, parseArgs, parseFlags, parseOrExit, type FlagNames } from './common.js';
import { parseSenderConfig } from '../config/load.js';
import type { SenderConfig } from '../config/types.js';
import { formatHostPort } from '../util/net.js';
import type { Logger } from '../util/log.js';
import { createTrafficModel, MODEL_NAMES } from '../measure/models.js';
import { TwampSender, type SenderOptions } from '../sender.js';
import { buildProbeReport, renderProbeJson, renderProbeText, type ProbeOutcome } from './format.js';
import { VERSION } from '../version.js';

const PROBE_USAGE = `Usage: otel-twamp probe HOST[:PORT] [options]

Run one TWAMP test session against the reflector at HOST (IPv4, host name,
or IPv6 as [addr] or [addr]:port; PORT default 862) and print delay, jitter,
loss and MOS per direction.

Options:
  -m, --model M           ${MODEL_NAMES.join(' | ')} (default g711)
  -c, --count N           packets in the session (default 100)
      --bandwidth BPS     bit/s at IP level (cbr, imix)
      --size OCTETS       IP packet size, headers included (cbr)
      --dscp D            be, ef, af11…af43, cs0…cs7, or 0–63 (default be)
      --reflector-port N  UDP port to request for the test session (default 0:
                          the reflector chooses; Cisco IOS needs e.g. 9447)
      --timeout S         TWAMP-Control connect/reply timeout, s (default 5)
      --reply-timeout S   wait for late reflections after the last packet, s
                          (default 3)
      --mode M[,M…]       security modes in order of preference: open,
                          authenticated, encrypted, mixed (default open)
      --key-id ID         KeyID for authenticated/encrypted/mixed mode
      --secret-file FILE  file holding the shared secret of ID (one line)
      --light             TWAMP Light / STAMP: no TWAMP-Control, PORT is the
                          reflector's UDP test port (default 862)
      --format F          with --light: twamp (14-octet packets) or stamp (RFC 8762)
      --max-loss PCT      exit 3 when the round-trip loss exceeds PCT percent
      --json              print one JSON document (schemaVersion 1) instead of text
  -q, --quiet             no progress line on a terminal
  -h, --help              this help

Exit codes: 0 ok, 1 session failed, 2 usage error, 3 loss above --max-loss.
One-way delays are only meaningful when both hosts' clocks are synchronized;
the output says whether they are.
`;

/** Sender config keys (as validated by parseSenderConfig) → the flag a user typed. */
const FLAG_OF: Readonly<Record<string, string>> = {
  reflector: 'HOST',
  port: 'PORT (HOST:PORT)',
  n_packets: '--count',
  model: '--model',
  bandwidth: '--bandwidth',
  size: '--size',
  dscp: '--dscp',
  reflector_port: '--reflector-port',
  control_timeout: '--timeout',
  reply_timeout: '--reply-timeout',
  mode: '--mode',
  key_id: '--key-id',
  secret_file: '--secret-file',
  secret: '--secret-file',
  control: '--light',
  format: '--format',
};

/**
 * The sender schema's cross-key messages in the probe's words:
 * `format "stamp" needs control: false` → `--format stamp needs --light`.
 */
const PHRASES: FlagNames = {
  phrases: [
    [/^secret or secret_file\b/, '--secret-file'],
    [/\bformat "(\w+)"/g, '--format $1'],
    [/\bmode includes\b/g, '--mode includes'],
    [/\bgot mode\b/g, 'got --mode'],
    [/\bby model (\w+)/g, 'by --model $1'],
    [/\bset port to\b/g, 'set PORT (HOST:PORT) to'],
  ],
};


/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 literal (no port). */
export function parseTarget(s: string): { host: string; port: string | undefined } {
  const bracket = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (bracket) return { host: bracket[1]!, port: bracket[2] };
  const colons = s.split(':').length - 1;
  if (colons >= 2) return { host: s, port: undefined }; // a bare IPv6 literal
  if (colons === 1) {
    const i = s.indexOf(':');
    return { host: s.slice(0, i), port: s.slice(i + 1) };
  }
  return { host: s, port: undefined };
}

/** A number when the flag looks like one, else the text (so the schema's message quotes it). */
function numeric(v: string): number | string {
  return /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(v.trim()) ? Number(v) : v;
}

interface ProbeArgs {
  config: SenderConfig;
  host: string;
  port: number;
  json: boolean;
  quiet: boolean;
  maxLoss: number | undefined;
}

function parseProbeArgs(argv: string[]): ProbeArgs | 'help' {
  const parsed = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' },
      count: { type: 'string', short: 'c' },
      bandwidth: { type: 'string' },
      size: { type: 'string' },
      dscp: { type: 'string' },
      'reflector-port': { type: 'string' },
      timeout: { type: 'string' },
      'reply-timeout': { type: 'string' },
      mode: { type: 'string' },
      'key-id': { type: 'string' },
      'secret-file': { type: 'string' },
      light: { type: 'boolean' },
      format: { type: 'string' },
      'max-loss': { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  if (positionals.length === 0) throw new UsageError('HOST is required (HOST[:PORT], [IPv6]:PORT)');
  if (positionals.length > 1) throw new UsageError(`one HOST expected, got ${positionals.length}: ${positionals.join(' ')}`);
  const target = parseTarget(positionals[0]!);
  if (target.host === '') throw new UsageError(`HOST: missing host name or address in ${JSON.stringify(positionals[0])}`);

  const raw: Record<string, unknown> = {
    id: 'probe',
    reflector: target.host,
    n_packets: v.count === undefined ? 100 : numeric(v.count),
    model: v.model ?? 'g711',
  };
  if (target.port !== undefined) raw.port = numeric(target.port);
  const opt = (key: string, val: string | undefined, asNumber = true): void => {
    if (val !== undefined) raw[key] = asNumber ? numeric(val) : val;
  };
  opt('bandwidth', v.bandwidth);
  opt('size', v.size);
  opt('dscp', v.dscp, false);
  opt('reflector_port', v['reflector-port']);
  opt('control_timeout', v.timeout);
  opt('reply_timeout', v['reply-timeout']);
  if (v.mode !== undefined) {
    const modes = v.mode.split(',').map((m) => m.trim());
    raw.mode = modes.length === 1 ? modes[0] : modes;
  }
  opt('key_id', v['key-id'], false);
  opt('secret_file', v['secret-file'], false);
  if (v.light) raw.control = false;
  opt('format', v.format, false);

  const config = parseFlags(FLAG_OF, () => parseSenderConfig(raw), PHRASES);

  let maxLoss: number | undefined;
  if (v['max-loss'] !== undefined) {
    const n = numeric(v['max-loss'].replace(/%$/, ''));
    if (typeof n !== 'number' || !(n >= 0 && n <= 100)) {
      throw new UsageError(`--max-loss: expected a percentage between 0 and 100, got ${JSON.stringify(v['max-loss'])}`);
    }
    maxLoss = n;
  }
  return { config, host: config.reflector, port: config.port, json: v.json ?? false, quiet: v.quiet ?? false, maxLoss };
}

/** A `\r` status line on stderr, only on a terminal. */
class Progress {
  private timer: NodeJS.Timeout | undefined;
  private received: number | undefined;
  private readonly t0 = Date.now();
  constructor(private readonly enabled: boolean, private readonly target: string, private readonly total: number,
    private readonly expectedS: number) {}

  start(): void {
    if (!this.enabled) return;
    this.draw();
    this.timer = setInterval(() => this.draw(), 200);
    this.timer.unref();
  }

  update(received: number): void {
    this.received = received;
  }

  private draw(): void {
    const s = ((Date.now() - this.t0) / 1000).toFixed(1);
    const count = this.received === undefined ? `${this.total} packets` : `${this.received}/${this.total} reflected`;
    process.stderr.write(`\r\x1b[K${this.target}: ${count}, ${s} s of ~${this.expectedS.toFixed(1)} s`);
  }

  stop(): void {
    if (!this.enabled) return;
    if (this.timer) clearInterval(this.timer);
    process.stderr.write('\r\x1b[K');
  }
}

/** Keeps the sender's warnings (e.g. why DSCP marking is unavailable) for the report. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (m) => { warnings.push(m); }, error: (m) => { warnings.push(m); } };
}

export async function probeMain(argv: string[]): Promise<number> {
  const args = parseOrExit('probe', () => parseProbeArgs(argv));
  if (typeof args === 'number') return args;
  if (args === 'help') { process.stdout.write(PROBE_USAGE); return 0; }

  const { config, json } = args;
  const display = formatHostPort(config.reflector, config.port);
  const model = createTrafficModel(config.model);
  const progress = new Progress(!args.quiet && process.stderr.isTTY === true, display, config.nPackets,
    config.nPackets / model.meanPps + config.replyTimeoutMs / 1000);
  const log = recordingLogger();
  const senderOpts: SenderOptions = {
    logger: log,
    onReply: (received) => progress.update(received),
  };
  // No meterProvider: the global no-op one; the probe exports nothing.
  const sender = new TwampSender(config, senderOpts);
  let interrupted = false;
  const onSignal = (): void => { interrupted = true; void sender.stop(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const startedAt = new Date();
  let outcome: ProbeOutcome;
  let runDurationMs: number;
  progress.start();
  try {
    const o = await sender.runOnce();
    runDurationMs = o.durationMs;
    if (o.ok) {
      const dscpNote = log.warnings.find((w) => w.includes('not marked with DSCP'));
      outcome = {
        ok: true, session: o.result.session, values: o.result.values,
        ...(dscpNote ? { dscpNote: dscpNote.replace(/^\[probe\] /, '') } : {}),
      };
    } else {
      outcome = { ok: false, reason: o.reason, message: interrupted ? `${display}: interrupted` : o.error.message };
    }
  } finally {
    progress.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  // Percentiles and the histogram come from the session's own statistics (SessionStats).
  const report = buildProbeReport({
    version: VERSION, target: { host: config.reflector, controlPort: config.port }, config, startedAt,
    runDurationMs, outcome, maxLossPercent: args.maxLoss,
  });

  if (json) process.stdout.write(renderProbeJson(report));
  if (!outcome.ok) {
    process.stderr.write(`otel-twamp probe: test session with ${display} failed (${outcome.reason}): ${outcome.message}\n`);
    return 1;
  }
  if (!json) process.stdout.write(renderProbeText(report));
  if (report.maxLoss?.exceeded) {
    process.stderr.write(`otel-twamp probe: round-trip loss ${report.roundTrip!.lossPercent} % ` +
      `(${report.roundTrip!.lossPackets} of ${report.traffic!.sentPackets}) exceeds --max-loss ${report.maxLoss.thresholdPercent} %\n`);
  }
  return report.exitCode;
}
