/**
 * otel-twamp: TWAMP (RFC 5357) sender and reflector as OpenTelemetry metrics
 * producers. The library part depends on @opentelemetry/api only; bring your
 * own MeterProvider (or NodeSDK) and exporters.
 */
export { TwampSender, measurementValues } from './sender.js';
export type { ProducerOptions, SenderRunOutcome, SenderRunResult } from './sender.js';
export { TwampReflector } from './reflector.js';
export { SENDER_MEASUREMENTS, SENDER_HEALTH, REFLECTOR_METRICS, metricName } from './otel/instruments.js';
export type { MetricSpec, NamingProfile } from './otel/instruments.js';
export { compileRelabel, RelabelConfigError } from './otel/relabel.js';
export { createTwampViews, ViewConfigError } from './otel/views.js';
export type { TwampView, ViewCollector, CreateViewsOptions } from './otel/views.js';
export { ATTRIBUTES } from './otel/attributes.js';
export type { RelabelRule, CompiledRelabel, Labels, RegexDialect } from './otel/relabel.js';
export { parseAgentConfig, loadAgentConfig, parseSenderConfig, parseReflectorConfig } from './config/load.js';
export { ConfigError } from './config/errors.js';
export type { AgentConfig, SenderConfig, ReflectorConfig, CollectorConfig } from './config/types.js';
export { TwampSessionError } from './session/errors.js';
export type { FailureReason } from './session/errors.js';
export { consoleLogger, silentLogger, warnLogger } from './session/log.js';
export type { Logger } from './session/log.js';
export { VERSION } from './version.js';
