package client_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// h2Proxy is a TCP proxy in front of a real gRPC server that reads the HTTP/2 frames going
// both ways. It records the :path and idempotency-key of every request, and, when told
// to, cuts a connection once the server has answered a call — its trailers, which the
// server sends after the handler returned, so a write is applied — without passing any of
// that answer on: the client sees the connection drop mid-call.
type h2Proxy struct {
	Addr   string
	target string

	mu      sync.Mutex
	drops   int                 // answers still to cut
	dropFor string              // the :path whose answers are cut
	seen    []h2Request         // every request, in order
	paths   map[uint64]string   // per connection and stream: the request's :path
	held    map[uint64][][]byte // frames of a stream whose answer will be cut
	cut     int                 // answers cut so far
}

type h2Request struct {
	path, idempotencyKey string
	hasKey               bool
}

const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
)

func newH2Proxy(t testing.TB, target string) *h2Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &h2Proxy{Addr: ln.Addr().String(), target: target, paths: map[uint64]string{}, held: map[uint64][][]byte{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for id := uint64(1); ; id++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(id, c) })
		}
	})
	return p
}

// dropAnswers makes the proxy cut the connection of the next n answers to path.
func (p *h2Proxy) dropAnswers(path string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropFor, p.drops = path, n
}

func (p *h2Proxy) requests() []h2Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]h2Request(nil), p.seen...)
}

func (p *h2Proxy) cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// serve relays one connection. Either direction ending closes both.
func (p *h2Proxy) serve(conn uint64, client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	var once sync.Once
	closeBoth := func() { once.Do(func() { client.Close(); server.Close() }) }
	defer closeBoth()
	go func() {
		defer closeBoth()
		p.fromClient(conn, client, server)
	}()
	p.fromServer(conn, server, client)
}

// readFrame reads one frame: its 9-byte header and payload, as they came.
func readFrame(r io.Reader) (raw []byte, typ, flags byte, stream uint32, err error) {
	h := make([]byte, 9)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, 0, 0, 0, err
	}
	n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	raw = make([]byte, 9+n)
	copy(raw, h)
	if _, err := io.ReadFull(r, raw[9:]); err != nil {
		return nil, 0, 0, 0, err
	}
	return raw, h[3], h[4], binary.BigEndian.Uint32(h[5:9]) & 0x7fffffff, nil
}

// fromClient records each request's headers before passing its frames on, so the server
// cannot answer a stream the proxy does not know yet.
func (p *h2Proxy) fromClient(conn uint64, client io.Reader, server io.Writer) {
	preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	if _, err := io.ReadFull(client, preface); err != nil {
		return
	}
	if _, err := server.Write(preface); err != nil {
		return
	}
	var req h2Request
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		switch f.Name {
		case ":path":
			req.path = f.Value
		case "idempotency-key":
			req.idempotencyKey, req.hasKey = f.Value, true
		}
	})
	for {
		raw, typ, flags, stream, err := readFrame(client)
		if err != nil {
			return
		}
		if typ == frameHeaders || typ == frameContinuation {
			if _, err := dec.Write(headerBlock(raw[9:], typ, flags)); err != nil {
				return
			}
			if flags&flagEndHeaders != 0 {
				p.mu.Lock()
				p.seen = append(p.seen, req)
				p.paths[conn<<32|uint64(stream)] = req.path
				p.mu.Unlock()
				req = h2Request{}
			}
		}
		if _, err := server.Write(raw); err != nil {
			return
		}
	}
}

// headerBlock is the HPACK fragment of a HEADERS or CONTINUATION payload.
func headerBlock(b []byte, typ, flags byte) []byte {
	if typ != frameHeaders {
		return b
	}
	pad := 0
	if flags&flagPadded != 0 {
		pad, b = int(b[0]), b[1:]
	}
	if flags&flagPriority != 0 {
		b = b[5:]
	}
	return b[:len(b)-pad]
}

// fromServer passes the server's frames on, except those of a stream whose answer is to
// be cut: they are held back until its trailers (HEADERS with END_STREAM), and then the
// connection is closed instead.
func (p *h2Proxy) fromServer(conn uint64, server io.Reader, client io.Writer) {
	for {
		raw, typ, flags, stream, err := readFrame(server)
		if err != nil {
			return
		}
		if stream != 0 && p.cutting(conn, stream, raw, typ, flags) {
			return
		}
		if _, err := client.Write(raw); err != nil {
			return
		}
	}
}

// cutting reports whether frame belongs to an answer being cut, holding it back; it
// returns true at the end of that answer, when the connection must close.
func (p *h2Proxy) cutting(conn uint64, stream uint32, raw []byte, typ, flags byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := conn<<32 | uint64(stream)
	if _, ok := p.held[k]; !ok {
		if p.drops == 0 || p.paths[k] != p.dropFor {
			return false
		}
		p.drops--
		p.held[k] = nil
	}
	p.held[k] = append(p.held[k], raw)
	if flags&flagEndStream != 0 && (typ == frameHeaders || typ == frameData) {
		p.cut++ // gRPC ends an answer with trailers; a DATA end is as final
		return true
	}
	return false
}
