/**
 * otel-twamp: TWAMP (RFC 5357) sender and reflector as OpenTelemetry metrics
 * producers. This entry point depends on @opentelemetry/api only; bring your
 * own MeterProvider (or NodeSDK) and exporters. The producers take their
 * settings ready-made: `parseSenderConfig` / `parseReflectorConfig` from
 * `otel-twamp/config` (src/config/index.ts) make them from the agent file's
 * collector keys (Gufo-style, snake_case), so that importing this module
 * loads no config parser (yaml, zod).
 */
export { TwampSender, measurementValues } from './sender.js';
export type { ProducerOptions, SenderOptions, SenderRunOutcome, SenderRunResult, SenderValues } from './sender.js';
export { TwampReflector } from './reflector.js';
export type { ReflectorOptions } from './reflector.js';
export { Secret } from './options.js';
export type {
  Cidr, CollectorConfig, CollectorType, CommonCollectorConfig, ReflectorConfig, SenderConfig, SecurityMode,
} from './options.js';
export { SENDER_MEASUREMENTS, SENDER_HEALTH, REFLECTOR_METRICS, metricName } from './otel/instruments.js';
export type { MetricSpec, NamingProfile } from './otel/instruments.js';
export { compileRelabel, RelabelConfigError } from './otel/relabel.js';
export { createTwampViews, ViewConfigError } from './otel/views.js';
export type { TwampView, ViewCollector, CreateViewsOptions } from './otel/views.js';
export { ATTRIBUTES } from './otel/attributes.js';
export type { RelabelRule, CompiledRelabel, Labels, RegexDialect } from './otel/relabel.js';
export { TwampSessionError } from './session/errors.js';
export type { FailureReason } from './session/errors.js';
export { consoleLogger, silentLogger, warnLogger } from './util/log.js';
export type { Logger } from './util/log.js';
export { VERSION } from './version.js';
