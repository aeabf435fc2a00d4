package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/tracing"
)

// clearEnv unsets every OTEL_* variable Setup or the SDK reads, for the test's duration.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, n := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		t.Setenv(n, "")
	}
}

// collector is an OTLP receiver over HTTP (POST /v1/traces) or gRPC that keeps what it is
// sent.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	requests []*collectortrace.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "not an OTLP traces request", http.StatusNotFound)
		return
	}
	b, err := io.ReadAll(r.Body)
	req := new(collectortrace.ExportTraceServiceRequest)
	if err == nil {
		err = proto.Unmarshal(b, req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.Export(r.Context(), req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// spans returns, for each span received, its name and its resource's service.name.
func (c *collector) spans() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, req := range c.requests {
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.Resource.GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out[s.Name] = service
				}
			}
		}
	}
	return out
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.requests)
}

// httpCollector serves c over OTLP/HTTP and returns its URL.
func httpCollector(t *testing.T, c *collector) string {
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv.URL
}

// grpcCollector serves c over OTLP/gRPC and returns its URL (http: no TLS).
func grpcCollector(t *testing.T, c *collector) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

// TestTraceSetupOff checks that without an endpoint, or with tracing disabled, Setup
// installs the no-op provider and nothing reaches a collector.
func TestTraceSetupOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string // endpoint added as OTEL_EXPORTER_OTLP_ENDPOINT when "endpoint"
	}{
		{"no endpoint", nil},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "endpoint": ""}},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "endpoint": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			c := &collector{}
			url := httpCollector(t, c)
			for k, v := range tc.env {
				if k == "endpoint" {
					k, v = "OTEL_EXPORTER_OTLP_ENDPOINT", url
				}
				t.Setenv(k, v)
			}
			shutdown, err := tracing.Setup(t.Context(), nil)
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if tp, ok := otel.GetTracerProvider().(noop.TracerProvider); !ok {
				t.Fatalf("global tracer provider: got %T, want noop.TracerProvider", tp)
			}
			_, span := otel.Tracer("test").Start(t.Context(), "probe")
			if span.IsRecording() {
				t.Error("a span records with tracing off")
			}
			span.End()
			if err := shutdown(t.Context()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if n := c.count(); n != 0 {
				t.Fatalf("collector got %d requests with tracing off, want 0", n)
			}
		})
	}
}

// TestTraceSetupExports checks that with an endpoint a span reaches the collector, over
// each protocol, at the latest when shutdown flushes, with the service name of the
// environment or tpwallet.
func TestTraceSetupExports(t *testing.T) {
	for _, tc := range []struct {
		name    string
		serve   func(*testing.T, *collector) string
		env     map[string]string
		path    string // appended to the collector's URL for the endpoint variable
		service string
	}{
		{"http default", httpCollector, nil, "", "tpwallet"},
		{"http/protobuf traces endpoint", httpCollector, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_SERVICE_NAME": "ledger-eu"}, "/v1/traces", "ledger-eu"},
		{"grpc", grpcCollector, map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "", "tpwallet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			c := &collector{}
			url := tc.serve(t, c)
			if tc.path != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url+tc.path)
			} else {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			shutdown, err := tracing.Setup(t.Context(), nil)
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			_, span := otel.Tracer("test").Start(t.Context(), "probe")
			if !span.IsRecording() {
				t.Error("a span does not record with tracing on")
			}
			span.End()
			if err := shutdown(t.Context()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if c.count() == 0 {
				t.Fatal("collector got no request after shutdown")
			}
			if got := c.spans()["probe"]; got != tc.service {
				t.Fatalf("span probe: got service.name %q (spans %v), want %q", got, c.spans(), tc.service)
			}
		})
	}
}

// TestTraceSetupErrors checks that a configuration Setup cannot honour is an error, not
// a silent lack of traces.
func TestTraceSetupErrors(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
		{"OTEL_TRACES_EXPORTER": "zipkin"},
	} {
		clearEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		for k, v := range env {
			t.Setenv(k, v)
		}
		if _, err := tracing.Setup(t.Context(), nil); err == nil {
			t.Errorf("Setup with %v: got no error", env)
		}
	}
}
