#!/usr/bin/env node
/**
 * otel-twamp command line: `agent` runs collectors from a Gufo Agent-style
 * YAML file and exports their metrics.
 */
import { loadAgentConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { consoleLogger, type LogLevel } from '../util/log.js';
import type { Agent } from './agent.js';
import { missingPeersMessage } from './peers.js';
import { parseArgs, parseOrExit, untilStopped } from './common.js';
import { createTwampViews, ViewConfigError } from '../otel/views.js';
import { VERSION } from '../version.js';
import { messageOf } from '../util/errors.js';
import { MODEL_NAMES } from '../measure/models.js';

const HELP = `otel-twamp ${VERSION} — TWAMP (RFC 5357) sender and reflector with OpenTelemetry metrics

Usage:
  otel-twamp agent --config FILE [--check] [--log-level LEVEL]
  otel-twamp probe HOST[:PORT] [--model M] [--count N] [--json] ...
  otel-twamp reflect [--listen ADDR] [--port N] [--metrics HOST:PORT] ...
  otel-twamp --help | --version

Commands:
  agent      Run the collectors of FILE (Gufo Agent format: $version, agent,
             sender, collectors) and export their metrics.
  probe      Run one test session against HOST and print delay, jitter, loss
             and MOS per direction (--json for a JSON document); exit 0 ok,
             1 failed, 2 usage, 3 loss above --max-loss. See probe --help.
  reflect    Run a standalone TWAMP reflector, logging sessions as they come
             and go. See reflect --help.

Options:
  -c, --config FILE     Agent configuration (YAML or JSON).
      --check           Validate FILE, print a summary and exit: 0 if valid,
                        1 with a message naming file, line, collector and key.
      --log-level L     debug | info | warn | error (default info).
  -h, --help            This help.
  -V, --version         Print the version.

Configuration file (summary; see docs/configuration.md for every key):
  $version: "1.0"
  agent:    { host, labels: {...}, defaults: { interval: 60 } }
  sender:   { type: openmetrics, mode: pull, listen: "0.0.0.0:9464", path: /metrics }
            Prometheus endpoint; omit "listen" for none.
  otlp:     { endpoint, protocol: http/protobuf|http/json, headers, interval,
            timeout, temporality: cumulative|delta }    OTLP/HTTP push (optional)
  naming:   legacy | otel       metric names (legacy = Gufo Agent's names)
  collectors:
    - { id, type: twamp_reflector, listen: 0.0.0.0, port: 862 }
    - { id, type: twamp_sender, reflector: HOST, port: 862, reflector_port: 0,
        dscp: be, n_packets: 100, model: ${MODEL_NAMES.join('|')}, bandwidth, size,
        interval, labels, relabel, disabled }

Environment:
  OTEL_METRICS_EXPORTER            otlp, prometheus, none (comma list); overrides
                                   which exporters the file enables
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
  OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_PROTOCOL,
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
                                   OTLP settings where the file is silent
  OTEL_METRIC_EXPORT_INTERVAL      OTLP export interval, ms (default 60000)
  OTEL_METRIC_EXPORT_TIMEOUT       OTLP export timeout, ms
  OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
                                   resource attributes

Ports below 1024 (TWAMP's 862) need root or CAP_NET_BIND_SERVICE.
`;

/** Commands with their own options, dispatched before the agent's parser. */
const COMMANDS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  probe: async () => (await import('./probe.js')).probeMain,
  reflect: async () => (await import('./reflect.js')).reflectMain,
};

export async function main(argv: string[]): Promise<number> {
  const command = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? COMMANDS[argv[0]] : undefined;
  if (command) {
    // reflect exports with the SDK (optional peers of the library, src/cli/peers.ts); probe needs none.
    const missing = argv[0] === 'reflect' ? missingPeersMessage('reflect') : undefined;
    if (missing !== undefined) { process.stderr.write(missing); return 1; }
    return (await command())(argv.slice(1));
  }
  const parsed = parseOrExit(argv.includes('agent') ? 'agent' : '', () => parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      check: { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
    },
  }));
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(HELP); return 0; }
  if (values.version) { process.stdout.write(`${VERSION}\n`); return 0; }
  const cmd = positionals[0];
  if (cmd !== 'agent') {
    process.stderr.write(cmd ? `otel-twamp: unknown command "${cmd}"\n` : HELP);
    return 2;
  }
  const level = (values['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    process.stderr.write(`otel-twamp: --log-level must be debug, info, warn or error\n`);
    return 2;
  }
  if (!values.config) {
    process.stderr.write('otel-twamp agent: --config FILE is required\n');
    return 2;
  }
  let config;
  try {
    config = await loadAgentConfig(values.config);
  } catch (e) {
    process.stderr.write(`${e instanceof ConfigError ? e.message : `otel-twamp: ${messageOf(e)}`}\n`);
    return 1;
  }
  try {
    // Relabel rules that Views cannot represent are load errors, reported like config errors.
    createTwampViews(config.collectors, { naming: config.naming });
  } catch (e) {
    if (!(e instanceof ViewConfigError)) throw e;
    process.stderr.write(`${values.config}: ${e.message}\n`);
    return 1;
  }
  if (values.check) {
    const enabled = config.collectors.filter((c) => !c.disabled);
    process.stdout.write(`${values.config}: OK — ${enabled.length} collector(s) enabled` +
      `${config.collectors.length > enabled.length ? `, ${config.collectors.length - enabled.length} disabled` : ''}: ` +
      `${enabled.map((c) => `${c.id} (${c.type})`).join(', ') || 'none'}\n`);
    if (config.mesh) {
      // The mesh (docs/configuration.md "Mesh"): validate it and print what this node would run.
      try {
        process.stdout.write(await (await import('./mesh.js')).describeMeshCheck(config));
      } catch (e) {
        process.stderr.write(`${messageOf(e)}\n`);
        return 1;
      }
    }
    return 0;
  }
  const missing = missingPeersMessage('agent');
  if (missing !== undefined) { process.stderr.write(missing); return 1; }
  const { Agent: AgentImpl } = await import('./agent.js');
  const log = consoleLogger(level);
  let agent: Agent;
  try {
    agent = new AgentImpl(config, { logger: log });
    await agent.start();
  } catch (e) {
    log.error(messageOf(e));
    return 1;
  }
  const configPath = values.config;
  let stopping = false;
  let reloading: Promise<void> = Promise.resolve();
  // SIGHUP: reload the file; restart only collectors whose configuration changed.
  // An invalid file keeps the running configuration and says why.
  const reload = async (): Promise<void> => {
    let next;
    try {
      next = await loadAgentConfig(configPath);
      createTwampViews(next.collectors, { naming: next.naming });
    } catch (e) {
      log.error(`SIGHUP: configuration not reloaded, keeping the running one: ${messageOf(e)}`);
      return;
    }
    const why = agent.needsFullRestart(next);
    if (why === undefined) {
      await agent.reload(next);
      return;
    }
    log.info(`SIGHUP: ${why}: restarting the agent`);
    await agent.stop();
    const fresh = new AgentImpl(next, { logger: log });
    try {
      await fresh.start();
      agent = fresh;
    } catch (e) {
      log.error(`SIGHUP: new configuration failed to start (${messageOf(e)}); restoring the previous one`);
      await fresh.stop().catch(() => undefined);
      agent = new AgentImpl(agent.config, { logger: log });
      await agent.start();
    }
  };
  process.on('SIGHUP', () => {
    if (stopping) return;
    log.info('SIGHUP: reloading configuration');
    reloading = reloading.then(reload).catch((e: unknown) => log.error(`SIGHUP: ${messageOf(e)}`));
  });
  return untilStopped(log, async () => {
    stopping = true;
    await reloading;
    await agent.stop();
  });
}

main(process.argv.slice(2)).then((code) => { process.exit(code); }, (e: unknown) => {
  process.stderr.write(`otel-twamp: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
