#!/usr/bin/env node
// The otel-twamp command line: the library's CLI entry (otel-twamp/cli), run
// with the OpenTelemetry SDK and exporters this package depends on.
import 'otel-twamp/cli';
