package natsbus

import (
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect connects to the NATS servers of urls (comma-separated, as nats.Connect takes
// them) for the life of the process: it returns at once even when no server is reachable
// yet, and reconnects forever, so that a NATS outage delays events and commands but never
// stops tpwallet. It logs connection changes with the server's address only: credentials
// in urls are never logged, nor returned in an error.
//
// While disconnected, publishes fail at once instead of being buffered, so that nothing
// sent before an outage can be overtaken by something sent after it (see Publisher).
func Connect(urls, name string, logger *slog.Logger) (*nats.Conn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	secrets, err := urlSecrets(urls)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(urls,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(c *nats.Conn) {
			logger.Info("nats connected", "server", serverOf(c))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "server", serverOf(c))
		}),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected; reconnecting", "err", redact(err, secrets))
			}
		}),
		nats.ErrorHandler(func(c *nats.Conn, s *nats.Subscription, err error) {
			logger.Warn("nats error", "err", redact(err, secrets))
		}),
	)
	if err != nil {
		return nil, errors.New("natsbus: connect: " + redact(err, secrets).Error())
	}
	return nc, nil
}

// serverOf is the host:port of the server c is connected to, never its credentials.
func serverOf(c *nats.Conn) string {
	if u, err := url.Parse(c.ConnectedUrl()); err == nil {
		return u.Host
	}
	return ""
}

// urlSecrets checks urls and returns the credentials in them (user info), to be scrubbed
// from anything logged. Its error names no URL, since a URL may hold a password.
func urlSecrets(urls string) ([]string, error) {
	var secrets []string
	for i, s := range strings.Split(urls, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, errors.New("natsbus: server URL " + strconv.Itoa(i+1) + " of the list is not a valid URL (its text is not shown: it may hold credentials)")
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				secrets = append(secrets, p)
			} else if n := u.User.Username(); n != "" {
				secrets = append(secrets, n) // nats://<token>@host: the user part is the secret
			}
		}
	}
	return secrets, nil
}

// redact returns err with every secret replaced, as a plain error.
func redact(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	s := err.Error()
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return errors.New(s)
}
