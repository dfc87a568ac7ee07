/**
 * The OpenTelemetry Resource of every otel-twamp entry point (agent, reflect):
 * one service.name, so a standalone reflector's series are found like the
 * agent's (docs/configuration.md "OTLP and the environment").
 */
import os from 'node:os';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { VERSION } from '../version.js';

const SERVICE_NAME = 'otel-twamp';

export interface CliResourceOptions {
  /** host.name and service.instance.id (default: the machine's host name). */
  readonly host?: string;
  /**
   * Where OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME come from. The SDK's
   * env detector reads process.env only, so any other object means none.
   */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * service.name `otel-twamp`, service.version, service.instance.id and
 * host.name over the SDK's defaults (telemetry.sdk.*);
 * OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win, as the OpenTelemetry
 * SDK environment variable specification says.
 */
export function cliResource(options: CliResourceOptions = {}): Resource {
  const host = options.host ?? os.hostname();
  const env = options.env ?? process.env;
  const ours = resourceFromAttributes({
    'service.name': SERVICE_NAME,
    'service.version': VERSION,
    'service.instance.id': host,
    'host.name': host,
  });
  const fromEnv = env === process.env ? detectResources({ detectors: [envDetector] }) : resourceFromAttributes({});
  return defaultResource().merge(ours).merge(fromEnv);
}
