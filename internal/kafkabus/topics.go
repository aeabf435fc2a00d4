package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// validTopic is Kafka's rule for topic names.
var validTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// ValidTopic reports whether Kafka accepts t as a topic name.
func ValidTopic(t string) bool { return validTopic.MatchString(t) && t != "." && t != ".." }

// topicsTimeout bounds a createTopics call: one request, answered in milliseconds by a
// broker that is up. Unreachable brokers or a refused login make it wait this long before
// the caller backs off, since franz-go retries those inside the call.
const topicsTimeout = 5 * time.Second

// createTopics creates the topics that do not exist yet, with the broker's default
// partition count and replication factor. A topic that exists is left as it is. When the
// principal may not create topics, the error says so: the topics must then exist.
func createTopics(ctx context.Context, cl *kgo.Client, topics ...string) error {
	ctx, cancel := context.WithTimeout(ctx, topicsTimeout)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(topicsTimeout / time.Millisecond)
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, -1, -1 // the broker's defaults
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("kafkabus: create topics: %w", err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafkabus: create topic %s: %w", t.Topic, err))
		}
	}
	return errors.Join(errs...)
}
