package kafkabus

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Fast returns c with franz-go's waits shortened for tests: its retry backoff (default
// up to 2.5 s) and how long it waits before reloading metadata after an error (5 s). The
// behaviour is the same, only quicker.
func Fast(c Config) Config {
	c.extra = append(c.extra[:len(c.extra):len(c.extra)],
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond))
	return c
}
