package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/tpwallet/tpwallet/internal/natsbus"
)

func init() { outlets = append(outlets, func() outlet { return new(natsOutlet) }) }

// natsOutlet publishes the journal's events to NATS JetStream (the follower "nats", on the
// leader) and takes transfer commands from it (on every instance): docs/nats.md.
type natsOutlet struct {
	url            string
	stream         string
	prefix         string
	commands       bool
	commandsStream string
	consumer       string
}

func (o *natsOutlet) flags(fs *flag.FlagSet) {
	// The environment is read at start, not made the flag's default: -h prints defaults, and
	// the URL may hold credentials.
	fs.StringVar(&o.url, "nats-url", "",
		"NATS servers (comma-separated URLs): publish events to JetStream and take transfer commands; empty: off. "+
			"Credentials belong in the environment variable, which ps does not show (env TPWALLET_NATS_URL)")
	fs.StringVar(&o.stream, "nats-stream", envOr("TPWALLET_NATS_STREAM", natsbus.DefaultStream),
		"JetStream stream of the events, made if missing (env TPWALLET_NATS_STREAM)")
	fs.StringVar(&o.prefix, "nats-subject-prefix", envOr("TPWALLET_NATS_SUBJECT_PREFIX", natsbus.DefaultSubjectPrefix),
		"first tokens of every subject: <prefix>.transfer.posted, <prefix>.commands.transfers, ... (env TPWALLET_NATS_SUBJECT_PREFIX)")
	commands := true
	if v, err := strconv.ParseBool(os.Getenv("TPWALLET_NATS_COMMANDS")); err == nil {
		commands = v
	}
	fs.BoolVar(&o.commands, "nats-commands", commands,
		"with --nats-url: take transfer commands from <prefix>.commands.transfers (env TPWALLET_NATS_COMMANDS)")
	fs.StringVar(&o.commandsStream, "nats-commands-stream", envOr("TPWALLET_NATS_COMMANDS_STREAM", natsbus.DefaultCommandsStream),
		"JetStream stream (work queue) of the transfer commands, made if missing (env TPWALLET_NATS_COMMANDS_STREAM)")
	fs.StringVar(&o.consumer, "nats-consumer", envOr("TPWALLET_NATS_CONSUMER", natsbus.DefaultConsumer),
		"durable consumer of the commands stream that all instances share (env TPWALLET_NATS_CONSUMER)")
}

// natsCheckWait bounds the stream checks at start; NATS that does not answer by then is
// treated as down, and the checks run again when it is back.
const natsCheckWait = 5 * time.Second

func (o *natsOutlet) start(ctx context.Context, env *outletEnv) (func(), error) {
	if o.url == "" {
		o.url = os.Getenv("TPWALLET_NATS_URL")
	}
	if o.url == "" {
		return func() {}, nil
	}
	log := env.Logger.With("outlet", "nats")
	po := natsbus.PublisherOptions{Stream: o.stream, SubjectPrefix: o.prefix, Head: env.Hub.Head, Logger: log}
	co := natsbus.CommandsOptions{Stream: o.commandsStream, SubjectPrefix: o.prefix, Consumer: o.consumer,
		Active: env.Service.IsLeader, Logger: log}
	if env.Metrics != nil {
		co.Registerer = env.Metrics.Registry()
	}
	po.EnsureDefaults()
	co.EnsureDefaults()
	if err := po.Validate(); err != nil {
		return nil, err
	}
	if err := co.Validate(); err != nil {
		return nil, err
	}
	nc, err := natsbus.Connect(o.url, "tpwallet", log)
	if err != nil {
		return nil, err
	}
	pub, err := natsbus.NewPublisher(nc, po)
	if err != nil {
		nc.Close()
		return nil, err
	}
	var cmds *natsbus.Commands
	if o.commands {
		if cmds, err = natsbus.NewCommands(nc, env.API, co); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if err := o.check(ctx, nc.IsConnected(), pub, cmds, log); err != nil {
		nc.Close()
		return nil, err
	}
	env.Followers.Add(natsbus.NewFollower(env.Source, env.Meta, env.Hub, pub, natsbus.FollowerOptions{Logger: log}))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if cmds != nil {
			cmds.Run(cctx)
		}
	}()
	return func() {
		cancel()
		<-done // the commands in hand are answered
		env.Followers.Remove(natsbus.FollowerName)
		nc.Close()
	}, nil
}

// check makes or checks the streams when NATS answers at start, so that a stream that
// does not take tpwallet's subjects stops serve with a clear message. NATS being down
// stops nothing: the follower and the consumer check again once it is back.
func (o *natsOutlet) check(ctx context.Context, connected bool, pub *natsbus.Publisher, cmds *natsbus.Commands, log *slog.Logger) error {
	if !connected {
		log.Warn("nats unreachable at start; events wait in the journal and commands in NATS until it is back")
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, natsCheckWait)
	defer cancel()
	err := pub.Ensure(cctx)
	if err == nil && cmds != nil {
		err = cmds.Ensure(cctx)
	}
	if errors.Is(err, natsbus.ErrStreamConflict) {
		return err
	}
	if err != nil {
		log.Warn("nats streams not checked at start; checking again before use", "err", err)
	}
	return nil
}
