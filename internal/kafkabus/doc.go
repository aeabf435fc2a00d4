// Package kafkabus connects tpwallet to Kafka: a Publisher that a journal follower delivers
// events through (one CloudEvent per record, keyed by account), and a Commands consumer
// that runs transfers sent as records, answering each on a results topic.
//
// # Guarantees
//
//   - Events are delivered at least once, in journal order per key: the record key is
//     events.Event.Key, so each account's events share a partition, and the idempotent
//     producer keeps a partition's records in order and without gaps across its retries.
//     The follower's cursor moves only past the events Kafka acknowledged (acks=all), so a
//     crash or an outage repeats events rather than losing them; consumers drop copies by
//     their ce_id.
//   - A command applies at most once whatever Kafka redelivers: its idempotency key makes
//     a repeat replay the stored answer. A command's offset is committed only after its
//     result is acknowledged, so every command gets a result at least once.
//
// The package holds no ledger logic: it maps records to httpapi.Command and events to
// records. docs/kafka.md documents the topics, keys, headers and flags.
package kafkabus
