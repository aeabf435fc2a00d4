// Package tracing turns OpenTelemetry tracing on from the standard OTEL_* environment
// variables: an OTLP exporter (HTTP or gRPC), the SDK's tracer provider and the W3C trace
// context and baggage propagators, installed as the otel globals. It creates no spans.
package tracing
