package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamConflict is returned (wrapped) when the stream tpwallet is configured to use
// exists but does not take the subjects tpwallet publishes to, or when those subjects
// belong to another stream: a configuration error that retrying does not fix.
var ErrStreamConflict = errors.New("stream conflict")

// jsErrStreamSubjectOverlap is JetStream's error code for a stream whose subjects overlap
// another stream's (nats-server JSStreamSubjectOverlapErr); nats.go has no constant for it.
const jsErrStreamSubjectOverlap jetstream.ErrorCode = 10065

// ensureStream creates the stream cfg describes, or checks that the existing stream of that
// name takes every subject in cfg.Subjects. It changes no existing stream: its other
// settings (limits, replicas, duplicate window) are the operator's.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another instance made it meanwhile
			s, err = js.Stream(ctx, cfg.Name)
		}
		if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStreamSubjectOverlap {
			return nil, fmt.Errorf("natsbus: create stream %s: subjects %s belong to another stream (%s): %w",
				cfg.Name, strings.Join(cfg.Subjects, " "), apiErr.Description, ErrStreamConflict)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsbus: stream %s: %w", cfg.Name, err)
	}
	info := s.CachedInfo()
	for _, want := range cfg.Subjects {
		if !anyCovers(info.Config.Subjects, want) {
			return nil, fmt.Errorf("natsbus: stream %s exists with subjects [%s], which do not take %s: "+
				"add it to the stream, or choose another stream name or subject prefix: %w",
				cfg.Name, strings.Join(info.Config.Subjects, " "), want, ErrStreamConflict)
		}
	}
	return info, nil
}

// anyCovers reports whether one of patterns matches every subject that sub matches.
func anyCovers(patterns []string, sub string) bool {
	for _, p := range patterns {
		if covers(p, sub) {
			return true
		}
	}
	return false
}

// covers reports whether every subject that sub matches (sub may hold the wildcards * and
// >) is matched by the subject pattern p.
func covers(p, sub string) bool {
	pt, st := strings.Split(p, "."), strings.Split(sub, ".")
	for i, tok := range pt {
		switch {
		case tok == ">":
			return i < len(st) // > takes one token or more
		case i >= len(st):
			return false
		case st[i] == ">":
			return false // sub takes any number of tokens here, p only one
		case tok == "*":
		case tok != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// validSubjectPrefix reports whether s can begin subjects: tokens of printable ASCII
// without wildcards, separated by dots.
func validSubjectPrefix(s string) bool {
	if s == "" {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}

// validSubject reports whether s is a subject a message may be published to: no
// wildcards, no empty tokens, printable ASCII.
func validSubject(s string) bool { return validSubjectPrefix(s) }

func validToken(tok string) bool {
	if tok == "" || tok == "*" || tok == ">" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// validStreamName reports whether s can name a stream or consumer: JetStream refuses names
// with dots, wildcards, path separators or white space.
func validStreamName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ' || c >= 0x7f, c == '.', c == '*', c == '>', c == '/', c == '\\':
			return false
		}
	}
	return true
}
