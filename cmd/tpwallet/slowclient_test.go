package main_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowClients: a client that trickles its headers or its body is cut off by the
// server's timeouts, and oversized headers are refused, while a normal client is served
// all along.
func TestSlowClients(t *testing.T) {
	p := startServe(t, t.TempDir(), "--read-header-timeout", "300ms", "--read-timeout", "600ms")
	addr := strings.TrimPrefix(p.base, "http://")

	// closedWithin reads from conn until the server closes it, failing t after limit. What
	// the server sent before closing (a 408, say) is returned.
	closedWithin := func(conn net.Conn, limit time.Duration) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(limit))
		b, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept a slow connection open for %v", limit)
		}
		return string(b)
	}

	// Headers never finished.
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	io.WriteString(c1, "POST /v1/transfers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
	closedWithin(c1, 10*time.Second)

	// Headers sent, body trickled and never finished.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+adminKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"asset\":")
	if got := closedWithin(c2, 10*time.Second); strings.Contains(got, " 201 ") {
		t.Fatalf("an unfinished body created an account: %q", got)
	}

	// Headers over 64 KiB.
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	go io.WriteString(c3, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c3), nil)
	if err != nil {
		t.Fatalf("oversized headers: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: status %d, want 431", resp.StatusCode)
	}

	// Meanwhile a normal client is served.
	p.mustCall(t, "GET", "/healthz", nil, nil, 200)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"asset": "USD"}, nil, 201)
}
