/** Package identity, used as the instrumentation scope of every instrument. */
export const METER_NAME = 'otel-twamp';
export const VERSION = '0.1.0';
