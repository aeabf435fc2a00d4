package grpcapi

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// healthPoll is how often Watch streams learn that readiness changed (Check is exact).
const healthPoll = 500 * time.Millisecond

// healthService is grpc.health.v1 for the whole server ("") and each tpwallet service,
// all with one status: SERVING exactly when /readyz answers 200, that is while this
// instance takes writes (not on a standby, not after a failed commit), and NOT_SERVING
// from the start of Stop on. Watch streams get NOT_SERVING and end when Stop begins, so
// that they do not hold up a graceful stop.
type healthService struct {
	healthpb.UnimplementedHealthServer
	s *Server

	mu      sync.Mutex
	serving bool
	changed chan struct{} // closed and replaced when serving changes
}

// healthNames are the service names health reports on.
var healthNames = []string{"",
	tpwalletv1.APIKeyService_ServiceDesc.ServiceName, tpwalletv1.AssetService_ServiceDesc.ServiceName,
	tpwalletv1.AccountService_ServiceDesc.ServiceName, tpwalletv1.TransferService_ServiceDesc.ServiceName,
	tpwalletv1.JournalService_ServiceDesc.ServiceName, tpwalletv1.EventService_ServiceDesc.ServiceName}

func newHealth(s *Server) *healthService {
	h := &healthService{s: s, changed: make(chan struct{})}
	h.update()
	healthpb.RegisterHealthServer(s.grpc, h)
	return h
}

// update sets the status from the service's readiness and returns it, with a channel
// closed at the next change.
func (h *healthService) update() (healthpb.HealthCheckResponse_ServingStatus, <-chan struct{}) {
	serving := h.s.svc.Ready() == nil && h.s.stopping.Err() == nil
	h.mu.Lock()
	defer h.mu.Unlock()
	if serving != h.serving {
		h.serving = serving
		close(h.changed)
		h.changed = make(chan struct{})
	}
	if h.serving {
		return healthpb.HealthCheckResponse_SERVING, h.changed
	}
	return healthpb.HealthCheckResponse_NOT_SERVING, h.changed
}

func known(name string) bool {
	for _, n := range healthNames {
		if n == name {
			return true
		}
	}
	return false
}

// Check answers from the readiness of this moment.
func (h *healthService) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if !known(req.Service) {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	st, _ := h.update()
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers every name with the readiness of this moment.
func (h *healthService) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	st, _ := h.update()
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	for _, n := range healthNames {
		out.Statuses[n] = &healthpb.HealthCheckResponse{Status: st}
	}
	return out, nil
}

// Watch sends the status, then every change, until the client cancels or Stop begins
// (NOT_SERVING, then Unavailable). An unknown service is SERVICE_UNKNOWN, as the
// protocol asks, and never changes.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	var last healthpb.HealthCheckResponse_ServingStatus = -1
	for {
		st, changed := h.update()
		if !known(req.Service) {
			st = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		if h.s.stopping.Err() != nil {
			return status.Error(codes.Unavailable, "the server is stopping")
		}
		t := time.NewTimer(healthPoll)
		select {
		case <-changed:
		case <-t.C:
		case <-h.s.stopping.Done():
		case <-stream.Context().Done():
			t.Stop()
			return status.FromContextError(stream.Context().Err()).Err()
		}
		t.Stop()
	}
}
