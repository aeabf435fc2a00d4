package kafkabus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Defaults of the topics and the consumer group.
const (
	DefaultTopic         = "tpwallet.events"
	DefaultCommandsTopic = "tpwallet.commands"
	DefaultResultsTopic  = "tpwallet.results"
	DefaultGroup         = "tpwallet"
)

// SASL mechanisms Config accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Config is how to reach the Kafka cluster: what the Publisher and the Commands consumer
// share.
type Config struct {
	Brokers []string    // host:port seeds; at least one
	TLS     *tls.Config // nil: plaintext
	// SASLMechanism is "" (none), SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	SASLMechanism string
	SASLUser      string
	SASLPassword  Secret
	ClientID      string // default "tpwallet"
	Logger        *slog.Logger

	extra []kgo.Opt // tests: shorter backoffs and metadata ages (export_test.go)
}

// Secret is a password: it prints and logs as "[redacted]".
type Secret string

// String redacts s.
func (Secret) String() string { return "[redacted]" }

// LogValue redacts s in slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafkabus: no brokers")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			return errors.New("kafkabus: an empty broker address")
		}
	}
	switch c.SASLMechanism {
	case "":
		if c.SASLUser != "" || c.SASLPassword != "" {
			return errors.New("kafkabus: a SASL user or password without a SASL mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASLUser == "" || c.SASLPassword == "" {
			return fmt.Errorf("kafkabus: SASL %s needs a user and a password", c.SASLMechanism)
		}
	default:
		return fmt.Errorf("kafkabus: unknown SASL mechanism %q: use %s, %s or %s",
			c.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// clientOpts are the kgo options every client of c starts with.
func (c *Config) clientOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "tpwallet"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(id),
		kgo.WithLogger(kgoLogger{c.logger()})}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	user, pass := c.SASLUser, string(c.SASLPassword)
	switch c.SASLMechanism {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	}
	return append(opts, c.extra...), nil
}

// kgoLogger passes franz-go's errors to slog. Its warnings repeat on every reconnection
// attempt during an outage, and the follower and the consumer report outages themselves
// (with backoff), so only errors get through.
type kgoLogger struct{ l *slog.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelError }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelError {
		k.l.Log(context.Background(), slog.LevelWarn, "kafka: "+msg, keyvals...)
	}
}
