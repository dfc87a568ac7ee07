// Relabeling (docs/configuration.md "Relabeling"): Prometheus `relabel_config` semantics plus
// the Gufo Agent dialect. The public module; the work is split by job:
//   relabel/rules.ts     rules as configured → normalised rules (defaults, validation)
//   relabel/template.ts  replacement templates of the two dialects
//   relabel/re2.ts       RE2 regex syntax → JavaScript, and the regex bounds
//   relabel/engine.ts    compileRelabel: compiled steps run on one series

export {
  RelabelConfigError, validLabelName, validMetricName,
  type Labels, type NormalizedRule, type RegexDialect, type RelabelAction, type RelabelRule,
} from './relabel/rules.js';
export { translateRe2, MAX_REGEX_LENGTH, MAX_REGEX_NESTING } from './relabel/re2.js';
export { compileRelabel, type CompiledRelabel, type CompileRelabelOptions } from './relabel/engine.js';
