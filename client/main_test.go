package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client"
)

// The tests and examples run against the real server: `tpwallet serve` built from this
// module, in a child process over a temporary data directory, as a user runs it.

const adminKey = "tpw_sdk_test_admin_key_0123456789abcdef"

var (
	binPath string
	// baseURL and apiKey are those of the server the examples use (shared with the tests
	// that need no server of their own).
	baseURL, apiKey string
	// grpcTarget is the shared server's gRPC address.
	grpcTarget string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run() // a fuzz worker runs only the fuzz target, which needs no server
	}
	dir, err := os.MkdirTemp("", "tpwallet-sdk")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "tpwallet")
	// Under -race the server is built with the race detector too: it checks the server's
	// side of every call the tests make.
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/tpwallet/tpwallet/cmd/tpwallet")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build tpwallet: %v\n%s", err, out)
		return 1
	}
	// The examples register webhook receivers on 127.0.0.1.
	srv, err := startServer(filepath.Join(dir, "data"), "--webhook-allow-private")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.stop()
	baseURL, grpcTarget, apiKey = srv.URL, srv.GRPC, adminKey
	return m.Run()
}

// server is a running `tpwallet serve`.
type server struct {
	URL  string
	GRPC string // the gRPC API's host:port
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

// lockedBuffer is the server's log, written by the process's reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs `tpwallet serve` on a port of its choosing over dataDir, with extra
// flags, and returns once it is ready for writes. The address comes from the server's
// "listening" log line, so no port is guessed.
func startServer(dataDir string, flags ...string) (*server, error) {
	cmd := exec.Command(binPath, append([]string{"serve", "--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--data", dataDir, "--log-format", "json"}, flags...)...)
	cmd.Env = append(os.Environ(), "TPWALLET_ADMIN_KEY="+adminKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, log: new(lockedBuffer), done: make(chan struct{})}
	cmd.Stdout = s.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr, grpcAddr := make(chan string, 1), make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			s.log.Write(append(line, '\n'))
			var l struct{ Msg, Addr string }
			if json.Unmarshal(line, &l) == nil {
				switch l.Msg {
				case "listening":
					addr <- l.Addr
				case "grpc listening":
					grpcAddr <- l.Addr
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	timeout := time.After(time.Minute)
	for s.URL == "" || s.GRPC == "" {
		select {
		case a := <-addr:
			s.URL = "http://" + a
		case a := <-grpcAddr:
			s.GRPC = a
		case <-s.done:
			return nil, fmt.Errorf("tpwallet serve exited before listening:\n%s", s.log)
		case <-timeout:
			s.stop()
			return nil, fmt.Errorf("tpwallet serve did not listen within a minute:\n%s", s.log)
		}
	}
	// Listening comes after the store is open; /readyz says when writes are taken.
	c, err := client.New(s.URL, adminKey)
	if err != nil {
		s.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		err := c.Ready(ctx)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("tpwallet serve not ready: %v\n%s", err, s.log)
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("tpwallet serve exited: %v\n%s", err, s.log)
		case <-time.After(20 * time.Millisecond): // polling a child process's readiness
		}
	}
}

func (s *server) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// newServer starts a server of the test's own, with flags, stopped at the test's end.
func newServer(t testing.TB, flags ...string) *server {
	t.Helper()
	s, err := startServer(t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// newClient returns a client of url with the admin key and opts.
func newClient(t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, adminKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sharedClient returns a client of the shared server.
func sharedClient(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	return newClient(t, baseURL, opts...)
}
