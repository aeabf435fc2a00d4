// Package natsbus carries tpwallet's events out to NATS JetStream and its transfer commands
// in: a Publisher is the events.Sink of the journal follower "nats", and Commands consumes
// POST /v1/transfers commands from a JetStream stream and answers each on a reply subject.
//
// # Delivery
//
// Events are delivered at least once and in journal order. Each message carries the
// event's id as Nats-Msg-Id, so JetStream drops a copy that arrives within the stream's
// duplicate window (a restart republishes from the follower's durable cursor); a consumer
// that needs exactly-once processing keeps the ids it has seen. Commands are applied
// exactly once by their Idempotency-Key, however often JetStream redelivers them.
//
// docs/nats.md describes subjects, headers, streams and operations.
package natsbus
