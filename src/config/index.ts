/**
 * `otel-twamp/config`: the agent file and Gufo-style collector objects to
 * the settings the producers take (src/options.ts). Uses yaml and zod, which
 * the main entry point (`otel-twamp`) does not load.
 */
export { ConfigError, formatIssue, formatPath } from './errors.js';
export type { ConfigIssue, ConfigPath } from './errors.js';
export {
  DEFAULT_INTERVAL_S,
  DEFAULT_OTLP_ENDPOINT,
  loadAgentConfig,
  otlpEndpointFromEnv,
  parseAgentConfig,
  parseReflectorConfig,
  parseSenderConfig,
} from './load.js';
export { COLLECTOR_TYPES, Secret } from './types.js';
export type {
  AgentConfig,
  Cidr,
  CollectorConfig,
  CollectorType,
  MeshSourceConfig,
  ModelConfig,
  ModelName,
  NamingProfile,
  OtlpConfig,
  OtlpProtocol,
  OtlpTemporality,
  ProbeConfig,
  ProbeModuleConfig,
  PrometheusConfig,
  ReflectorConfig,
  RelabelDialect,
  RelabelRule,
  SenderConfig,
} from './types.js';
