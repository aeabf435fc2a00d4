package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// benchClient is a minimal HTTP/1.1 client for the load generator, like wrk's: one request
// at a time per keep-alive connection, Content-Length bodies, no redirects. net/http's
// client spends two goroutines and several allocations a request, which on a 2-core
// machine takes CPU from the server under test.
type benchClient struct {
	addr, host string
	tls        bool
	header     []byte // the Authorization line and the rest that never changes

	mu   sync.Mutex
	idle []*benchConn
}

type benchConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

const benchTimeout = 30 * time.Second

func newBenchClient(base, key string) (*benchClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bench: --url must be http://host:port or https://host:port, got %q", base)
	}
	b := &benchClient{host: u.Host, addr: u.Host, tls: u.Scheme == "https"}
	if u.Port() == "" {
		port := "80"
		if b.tls {
			port = "443"
		}
		b.addr = net.JoinHostPort(u.Hostname(), port)
	}
	b.header = []byte("Host: " + u.Host + "\r\nAuthorization: Bearer " + key + "\r\nUser-Agent: tpwallet-bench\r\n")
	return b, nil
}

func (b *benchClient) get() (*benchConn, error) {
	b.mu.Lock()
	if n := len(b.idle); n > 0 {
		c := b.idle[n-1]
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		return c, nil
	}
	b.mu.Unlock()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 10 * time.Second}
	if b.tls {
		c, err = tls.DialWithDialer(d, "tcp", b.addr, &tls.Config{ServerName: b.host})
	} else {
		c, err = d.Dial("tcp", b.addr)
	}
	if err != nil {
		return nil, err
	}
	return &benchConn{c: c, r: bufio.NewReaderSize(c, 16<<10), w: bufio.NewWriterSize(c, 16<<10)}, nil
}

func (b *benchClient) put(c *benchConn) {
	b.mu.Lock()
	b.idle = append(b.idle, c)
	b.mu.Unlock()
}

func (b *benchClient) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.idle {
		c.c.Close()
	}
	b.idle = nil
}

// do sends one request and returns the status; a 2xx JSON answer is decoded into out when
// out is not nil. A request, once sent, runs to its end: the bench never cuts one off, so
// that its outcome is known and the tally exact. ctx only stops it from being sent.
func (b *benchClient) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c, err := b.get()
	if err != nil {
		return 0, err
	}
	status, data, keep, err := c.roundTrip(b.header, method, path, body)
	if err != nil {
		c.c.Close()
		return 0, err
	}
	if keep {
		b.put(c)
	} else {
		c.c.Close()
	}
	if out != nil && status < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return status, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return status, nil
}

func (c *benchConn) roundTrip(header []byte, method, path string, body []byte) (status int, data []byte, keep bool, err error) {
	c.c.SetDeadline(time.Now().Add(benchTimeout))
	w := c.w
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\n")
	w.Write(header)
	if body != nil {
		w.WriteString("Content-Type: application/json\r\n")
	}
	w.WriteString("Content-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return 0, nil, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, errors.New("bench: malformed status line")
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, errors.New("bench: malformed status code")
	}
	length, keep := -1, true
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, false, errors.New("bench: malformed header")
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, errors.New("bench: bad Content-Length")
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, nil, false, errors.New("bench: chunked answers are not supported")
		}
	}
	if length < 0 {
		if status == 204 || status == 304 || status/100 == 1 {
			return status, nil, keep, nil
		}
		// No length: the body runs to the end of the connection.
		data, err = io.ReadAll(c.r)
		return status, data, false, err
	}
	data = make([]byte, length)
	if _, err := io.ReadFull(c.r, data); err != nil {
		return 0, nil, false, err
	}
	return status, data, keep, nil
}
