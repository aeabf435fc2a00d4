package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/kafkabus"
)

func init() { outlets = append(outlets, func() outlet { return &kafkaOutlet{} }) }

// kafkaOutlet publishes the journal's events to Kafka and, with a commands topic, runs
// the transfers sent on it (docs/kafka.md).
type kafkaOutlet struct {
	Brokers       string
	Topic         string
	CommandsTopic string
	ResultsTopic  string
	Group         string
	TLS           bool
	TLSCA         string
	SASLMechanism string
	SASLUser      string
	Linger        time.Duration
}

func (k *kafkaOutlet) flags(fs *flag.FlagSet) {
	fs.StringVar(&k.Brokers, "kafka-brokers", envOr("TPWALLET_KAFKA_BROKERS", ""),
		"Kafka seed brokers, comma-separated host:port; empty: no Kafka (env TPWALLET_KAFKA_BROKERS)")
	fs.StringVar(&k.Topic, "kafka-topic", envOr("TPWALLET_KAFKA_TOPIC", kafkabus.DefaultTopic),
		"Kafka topic the journal's events are published to (env TPWALLET_KAFKA_TOPIC)")
	fs.StringVar(&k.CommandsTopic, "kafka-commands-topic", envOr("TPWALLET_KAFKA_COMMANDS_TOPIC", ""),
		"Kafka topic of transfer commands to run, e.g. "+kafkabus.DefaultCommandsTopic+"; empty: none (env TPWALLET_KAFKA_COMMANDS_TOPIC)")
	fs.StringVar(&k.ResultsTopic, "kafka-results-topic", envOr("TPWALLET_KAFKA_RESULTS_TOPIC", kafkabus.DefaultResultsTopic),
		"Kafka topic of command results, unless a command names its reply-topic (env TPWALLET_KAFKA_RESULTS_TOPIC)")
	fs.StringVar(&k.Group, "kafka-group", envOr("TPWALLET_KAFKA_GROUP", kafkabus.DefaultGroup),
		"Kafka consumer group of the commands consumer (env TPWALLET_KAFKA_GROUP)")
	fs.DurationVar(&k.Linger, "kafka-linger", envDuration("TPWALLET_KAFKA_LINGER", kafkabus.DefaultLinger),
		"under light load, the Kafka follower's rounds are spaced this far apart so that each carries more events (adds at most this to their latency; 0: none) (env TPWALLET_KAFKA_LINGER)")
	fs.BoolVar(&k.TLS, "kafka-tls", envBool("TPWALLET_KAFKA_TLS"),
		"connect to Kafka over TLS, trusting the system's CAs (env TPWALLET_KAFKA_TLS)")
	fs.StringVar(&k.TLSCA, "kafka-tls-ca", envOr("TPWALLET_KAFKA_TLS_CA", ""),
		"PEM file of the CAs to trust for Kafka instead of the system's; implies --kafka-tls (env TPWALLET_KAFKA_TLS_CA)")
	fs.StringVar(&k.SASLMechanism, "kafka-sasl-mechanism", envOr("TPWALLET_KAFKA_SASL_MECHANISM", ""),
		"Kafka SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: none (env TPWALLET_KAFKA_SASL_MECHANISM)")
	fs.StringVar(&k.SASLUser, "kafka-sasl-user", envOr("TPWALLET_KAFKA_SASL_USER", ""),
		"Kafka SASL user; the password comes only from TPWALLET_KAFKA_SASL_PASSWORD (environment only) (env TPWALLET_KAFKA_SASL_USER)")
}

// config is the connection part of the flags, with the password from the environment.
func (k *kafkaOutlet) config(log *slog.Logger) (kafkabus.Config, error) {
	c := kafkabus.Config{SASLMechanism: strings.ToUpper(k.SASLMechanism), SASLUser: k.SASLUser,
		SASLPassword: kafkabus.Secret(os.Getenv("TPWALLET_KAFKA_SASL_PASSWORD")), Logger: log}
	for _, b := range strings.Split(k.Brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	if k.TLS || k.TLSCA != "" {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if k.TLSCA != "" {
			pem, err := os.ReadFile(k.TLSCA)
			if err != nil {
				return c, fmt.Errorf("--kafka-tls-ca: %w", err)
			}
			c.TLS.RootCAs = x509.NewCertPool()
			if !c.TLS.RootCAs.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("--kafka-tls-ca: no PEM certificate in %s", k.TLSCA)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("--kafka-*: %w (the SASL password comes from TPWALLET_KAFKA_SASL_PASSWORD)", err)
	}
	return c, nil
}

// start adds the publisher's follower (it runs while this instance leads) and starts the
// commands consumer (it joins the group while this instance leads). Neither waits for
// Kafka: an outage makes the follower lag and the consumer retry, never slows a transfer.
func (k *kafkaOutlet) start(ctx context.Context, env *outletEnv) (stop func(), err error) {
	if strings.TrimSpace(k.Brokers) == "" {
		return func() {}, nil
	}
	c, err := k.config(env.Logger)
	if err != nil {
		return nil, err
	}
	linger := k.Linger
	if linger == 0 {
		linger = -1 // none: PublisherOptions reads 0 as the default
	}
	pub, err := kafkabus.NewPublisher(kafkabus.PublisherOptions{Config: c, Topic: k.Topic, Linger: linger})
	if err != nil {
		return nil, err
	}
	env.Followers.Add(&events.Follower{Name: kafkabus.FollowerName, Source: env.Source, Meta: env.Meta,
		Hub: env.Hub, Sink: pub, Logger: env.Logger, Batch: kafkaBatch})
	stopCommands := func() {}
	if k.CommandsTopic != "" {
		if stopCommands, err = k.startCommands(ctx, c, env); err != nil {
			env.Followers.Remove(kafkabus.FollowerName)
			pub.Close()
			return nil, err
		}
	}
	env.Logger.Info("kafka on", "brokers", strings.Join(c.Brokers, ","), "topic", k.Topic,
		"commands_topic", k.CommandsTopic, "tls", c.TLS != nil, "sasl", c.SASLMechanism)
	return func() {
		stopCommands()
		env.Followers.Remove(kafkabus.FollowerName)
		pub.Close()
	}, nil
}

// kafkaBatch is the most events one round of the kafka follower hands to Kafka: a whole
// record of the largest batch (httpapi's 8,190 transfers). A round reads up to 64
// records from the journal and decodes all of them, so with the default of 1,024 a
// follower behind records of 1,000 transfers decoded 64,000 changes to send 1,024 of them
// and fell minutes behind the batch workload (docs/benchmarks.md, "Kafka publisher").
const kafkaBatch = 8192

// commandsStopWait bounds how long shutdown waits for the commands consumer: a command
// whose result is not out by then is not committed, so it comes again and is replayed.
const commandsStopWait = 10 * time.Second

func (k *kafkaOutlet) startCommands(ctx context.Context, c kafkabus.Config, env *outletEnv) (stop func(), err error) {
	if env.API == nil {
		return nil, errors.New("kafka commands: no API to submit to")
	}
	cmds, err := kafkabus.NewCommands(kafkabus.CommandsOptions{Config: c, Topic: k.CommandsTopic,
		Results: k.ResultsTopic, Group: k.Group, Submit: env.API, Leading: env.Service.IsLeader})
	if err != nil {
		return nil, err
	}
	// ctx ends when shutdown begins: the consumer stops taking commands while the HTTP
	// server drains.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); cmds.Run(cctx) }()
	return func() {
		cancel()
		t := time.NewTimer(commandsStopWait)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			env.Logger.Warn("kafka commands: consumer still stopping; leaving it", "waited", commandsStopWait)
		}
	}, nil
}
