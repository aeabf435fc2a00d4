package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the service.name of the spans unless OTEL_SERVICE_NAME (or service.name in
// OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "tpwallet"

// Setup installs the global tracer provider and propagators as the OTEL_* environment
// variables ask, and returns shutdown, which flushes the spans not yet exported and stops
// the exporter; call it once, at the end.
//
// Tracing is on only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
// is set (the SDK would otherwise send to localhost), and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none turns it off. Off, the global provider is a noop.TracerProvider,
// which httpapi takes as "do not trace": no exporter, no span, nothing per request.
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL picks the exporter: http/protobuf (the default),
// http/json or grpc. Everything else (headers, TLS, timeouts, OTEL_TRACES_SAMPLER,
// OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES) the SDK reads itself.
//
// Errors the SDK meets later (a collector that cannot be reached) go to logger at Warn.
func Setup(ctx context.Context, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	endpoint, why, err := enabled()
	if err != nil {
		return nil, err
	}
	if endpoint == "" {
		otel.SetTracerProvider(noop.NewTracerProvider())
		logger.Debug("tracing off", "reason", why)
		return func(context.Context) error { return nil }, nil
	}
	// From here on the SDK reports what goes wrong (a malformed OTEL_* variable, an export
	// that failed) to the global handler, which would otherwise print to stderr unformatted.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing error", "err", err)
	}))
	protocol := env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var exp sdktrace.SpanExporter
	switch protocol {
	case "", "http/protobuf", "http/json":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL %q: use http/protobuf, http/json or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	// Resource detectors merge in order, the later winning: the environment overrides the
	// default name.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(ServiceName)), resource.WithFromEnv())
	if err != nil {
		if res == nil {
			exp.Shutdown(ctx)
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
		logger.Warn("tracing: resource incomplete", "err", err) // e.g. a malformed OTEL_RESOURCE_ATTRIBUTES
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	// W3C trace context and baggage, as httpapi reads them, for whatever sends requests on.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))
	if protocol == "" {
		protocol = "http/protobuf"
	}
	logger.Info("tracing on", "protocol", protocol, "endpoint", redact(endpoint))
	return tp.Shutdown, nil
}

// enabled returns the OTLP endpoint when tracing is on, else "" and why not. An exporter
// other than otlp is an error: it is not built in, and silence would pass for tracing on.
func enabled() (endpoint, why string, err error) {
	if v, err := strconv.ParseBool(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED"))); err == nil && v {
		return "", "OTEL_SDK_DISABLED=true", nil
	}
	if v := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); v != "" {
		for _, exp := range strings.Split(v, ",") { // the spec allows a list
			switch strings.TrimSpace(exp) {
			case "otlp":
			case "none":
				return "", "OTEL_TRACES_EXPORTER=none", nil
			default:
				return "", "", fmt.Errorf("tracing: OTEL_TRACES_EXPORTER %q: only otlp and none are built in", v)
			}
		}
	}
	endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" {
		return "", "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", nil
	}
	return endpoint, "", nil
}

// env returns the first of the variables that is set and not blank.
func env(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// redact keeps scheme, host and path of an endpoint for the log: a URL may carry a password
// or a token in its user info or query.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "(unparsed)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
