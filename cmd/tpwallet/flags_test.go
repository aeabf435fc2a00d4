package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestServeRefusesBadLimits: limits and timeouts that would silently mean something else
// stop serve at once with a message naming the flag, before it opens any store.
func TestServeRefusesBadLimits(t *testing.T) {
	for _, c := range []struct{ flag, value string }{
		{"--max-inflight", "-1"},
		{"--rate-limit", "-5"},
		{"--rate-burst", "-1"},
		{"--read-timeout", "0s"},
		{"--idle-timeout", "-1s"},
	} {
		dir := t.TempDir()
		out, err := exec.Command(binPath, "serve", "--addr", "127.0.0.1:0", "--data", dir, c.flag, c.value).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.flag) {
			t.Errorf("serve %s %s: %v\n%s", c.flag, c.value, err, out)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("serve %s %s opened a store in %s", c.flag, c.value, dir)
		}
	}
}
