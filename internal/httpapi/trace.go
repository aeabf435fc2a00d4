package httpapi

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Spans carry routes, methods, statuses, codes and counts: never a path (it holds ids), an
// account or transfer id, an amount, a key, a header or a body.

const tracerName = "github.com/tpwallet/tpwallet/internal/httpapi"

// propagator reads the caller's W3C traceparent, tracestate and baggage headers.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Attributes of our own (OpenTelemetry has none for these).
const (
	attrCode     = attribute.Key("tpwallet.code")     // the api.md code of a problem answer
	attrRequests = attribute.Key("tpwallet.requests") // requests a write decoded to
)

// startSpan starts r's server span, a child of the caller's span when r has a traceparent
// header, named "METHOD /route" (semantic conventions: the pattern, never the path), and
// returns r with it in its context.
func (s *Server) startSpan(r *http.Request, pattern string) (*http.Request, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	method := methodLabel(r.Method)
	name := method
	if method == "other" { // semantic conventions for a method outside the known set
		method, name = "_OTHER", "HTTP"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method), semconv.URLScheme(scheme),
		semconv.NetworkProtocolVersion(protocolVersion(r)))
	if pattern != "" {
		route := routeLabel(pattern)
		name += " " + route
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return r.WithContext(ctx), span
}

func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "1.1"
	case r.ProtoMajor == 2:
		return "2"
	}
	return strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
}

// endSpan records the answer on the server span and ends it. A 5xx is an error of the
// server; a 4xx is the client's and leaves the status unset, as the conventions say.
func endSpan(span trace.Span, sw *statusWriter) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if sw.code != "" {
		span.SetAttributes(attrCode.String(string(sw.code)))
	}
	if status >= 500 {
		errType := strconv.Itoa(status)
		if sw.code != "" {
			errType = string(sw.code)
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// startDecode starts the span of reading, validating and decoding a write's request, when
// the request's span is recorded; else it returns nil and costs nothing more.
func (s *Server) startDecode(r *http.Request) trace.Span {
	if s.tracer == nil || !trace.SpanFromContext(r.Context()).IsRecording() {
		return nil
	}
	_, span := s.tracer.Start(r.Context(), "decode")
	return span
}

// endDecode ends a decode span with what the body decoded to, or the code it was refused
// with.
func endDecode(span trace.Span, cmd ledger.Command, err error) {
	if err != nil {
		span.SetAttributes(attrCode.String(string(ledger.CodeOf(err))))
	} else {
		span.SetAttributes(attrRequests.Int(len(cmd.Requests)))
	}
	span.End()
}
