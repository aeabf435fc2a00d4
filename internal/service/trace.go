package service

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Spans carry outcomes, codes and counts: never an id, an amount, a key or a body.

const tracerName = "github.com/tpwallet/tpwallet/internal/service"

// Attributes of our own (OpenTelemetry has none for these).
const (
	attrIdempotency   = attribute.Key("tpwallet.idempotency")    // outcome of the lookup
	attrBatchRequests = attribute.Key("tpwallet.batch.requests") // requests in the engine batch
	attrRequests      = attribute.Key("tpwallet.requests")       // requests of this submission
	attrRejected      = attribute.Key("tpwallet.rejected")       // of them, rejected
	attrCode          = attribute.Key("tpwallet.code")           // why a single request was rejected
)

// tracer returns the tracer for children of parent: from parent's own provider, so that
// the spans go wherever the transport's server span goes (the global provider in serve, a
// test's in tests).
func tracer(parent trace.Span) trace.Tracer {
	return parent.TracerProvider().Tracer(tracerName)
}

// endIdempotency ends the span of an idempotency lookup with its outcome.
func endIdempotency(span trace.Span, outcome string) {
	span.SetAttributes(attrIdempotency.String(outcome))
	if outcome == idemFailed {
		span.SetStatus(codes.Error, "idempotency lookup failed") // the error text stays out of traces
	}
	span.End()
}

// engineSpans draws, after the fact, the children of parent the engine went through for
// reply: waiting in its queue, applying the batch, committing it. The engine stamps the
// times (engine.Timing) and knows nothing of traces; the batch may hold other requests,
// whose own traces show the same apply and commit.
func engineSpans(ctx context.Context, parent trace.Span, reply *engine.Reply) {
	t, tr := &reply.Timing, tracer(parent)
	batch := attrBatchRequests.Int(t.BatchRequests)
	span := func(name string, start, end time.Time, attrs ...attribute.KeyValue) {
		_, s := tr.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
		s.End(trace.WithTimestamp(end))
	}
	rejected := 0
	for _, r := range reply.Results {
		if r.Code != ledger.CodeOK {
			rejected++
		}
	}
	applyAttrs := []attribute.KeyValue{batch, attrRequests.Int(len(reply.Results)), attrRejected.Int(rejected)}
	if len(reply.Results) == 1 && reply.Results[0].Code != ledger.CodeOK {
		applyAttrs = append(applyAttrs, attrCode.String(string(reply.Results[0].Code)))
	}
	span("engine.queue", t.Queued, t.ApplyStart)
	span("engine.apply", t.ApplyStart, t.ApplyEnd, applyAttrs...)
	span("engine.commit", t.CommitStart, t.CommitEnd, batch)
}
