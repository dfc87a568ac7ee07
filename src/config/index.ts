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
export { COLLECTOR_TYPES } from './types.js';
export type {
  AgentConfig,
  CollectorConfig,
  CollectorType,
  ModelConfig,
  ModelName,
  NamingProfile,
  OtlpConfig,
  OtlpProtocol,
  OtlpTemporality,
  PrometheusConfig,
  ReflectorConfig,
  RelabelDialect,
  RelabelRule,
  SenderConfig,
} from './types.js';
