// Package events turns the journal into events and follows it.
//
// The hash-chained journal is the ordered record of every committed change, so every
// outbound channel (webhooks, NATS JetStream, Kafka, GET /v1/events) is a follower of it:
// there is no second outbox that could drift from the ledger. Each change of a record is one
// CloudEvents 1.0 event whose id, "<seq>-<index>", is derived from the record's sequence
// number and the change's position in it, so that a consumer that sees an event twice (every
// channel delivers at least once) can drop the copy.
//
// A Follower reads the journal from a durable cursor kept in the store's Meta space, hands
// events to its Sink in order, and moves the cursor only after the Sink has delivered them.
// It catches up after a restart or an outage by itself, and reports its lag. Followers only
// read the store: one that fails, or falls behind, never slows or stops a transfer.
//
// docs/events.md documents the event types and their payloads.
package events
