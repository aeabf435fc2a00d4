package natsbus

import "testing"

// TestNatsCovers checks the subject-pattern containment that decides whether an existing
// stream takes tpwallet's subjects (a rule, so a table; the streams are in publisher_test.go).
func TestNatsCovers(t *testing.T) {
	for _, c := range []struct {
		p, sub string
		want   bool
	}{
		{"tpwallet.transfer.>", "tpwallet.transfer.>", true},
		{"tpwallet.>", "tpwallet.transfer.>", true},
		{">", "tpwallet.transfer.>", true},
		{"tpwallet.*.>", "tpwallet.transfer.>", true},
		{"*.transfer.>", "tpwallet.transfer.>", true},
		{"tpwallet.transfer.*", "tpwallet.transfer.>", false}, // one token, not any number
		{"tpwallet.transfer.*", "tpwallet.transfer.posted", true},
		{"tpwallet.transfer", "tpwallet.transfer.>", false},
		{"tpwallet.transfer.>", "tpwallet.transfer", false}, // > needs a token
		{"tpwallet.account.>", "tpwallet.transfer.>", false},
		{"tpwallet.transfer.posted", "tpwallet.transfer.posted", true},
		{"tpwallet.transfer.posted.x", "tpwallet.transfer.posted", false},
		{"tpwallet.*", "tpwallet.*", true},
		{"tpwallet.x", "tpwallet.*", false},
		{"tpwallet.*", "tpwallet.>", false},
	} {
		if got := covers(c.p, c.sub); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.p, c.sub, got, c.want)
		}
	}
}

// TestNatsNames checks which stream names and subject prefixes are accepted.
func TestNatsNames(t *testing.T) {
	for _, c := range []struct {
		s              string
		stream, prefix bool
	}{
		{"TPWALLET", true, true},
		{"tpwallet.eu", false, true},
		{"a b", false, false},
		{"", false, false},
		{"x.*", false, false},
		{"x.>", false, false},
		{"x..y", false, false},
		{"a/b", false, true},
		{"café", false, false},
	} {
		if got := validStreamName(c.s); got != c.stream {
			t.Errorf("validStreamName(%q) = %v, want %v", c.s, got, c.stream)
		}
		if got := validSubjectPrefix(c.s); got != c.prefix {
			t.Errorf("validSubjectPrefix(%q) = %v, want %v", c.s, got, c.prefix)
		}
	}
}
