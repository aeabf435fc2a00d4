package webhook_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

func TestWebhookNonPublic(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"93.184.216.34", true},
		{"8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"64:ff9b::808:808", true},  // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},   // 6to4 of 8.8.8.8
		{"127.0.0.1", false},        // loopback
		{"127.255.255.254", false},  // loopback
		{"::1", false},              // loopback
		{"::ffff:127.0.0.1", false}, // mapped loopback
		{"10.1.2.3", false},         // RFC 1918
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.0.1", false},
		{"fc00::1", false}, // unique local
		{"fd12:3456::1", false},
		{"169.254.169.254", false}, // link-local: cloud metadata
		{"fe80::1", false},
		{"0.0.0.0", false}, // unspecified
		{"::", false},
		{"0.1.2.3", false},    // this network
		{"100.64.0.1", false}, // CGNAT
		{"100.127.255.254", false},
		{"224.0.0.1", false}, // multicast
		{"ff02::1", false},
		{"255.255.255.255", false}, // broadcast
		{"240.0.0.1", false},       // reserved
		{"192.0.2.1", false},       // documentation
		{"198.18.0.1", false},      // benchmarking
		{"2001:db8::1", false},     // documentation
		{"64:ff9b::a00:1", false},  // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", false}, // NAT64 of 127.0.0.1
		{"2002:a00:1::1", false},   // 6to4 of 10.0.0.1
		{"2001::1", false},         // Teredo
		{"fec0::1", false},         // site-local
	} {
		why := webhook.NonPublic(netip.MustParseAddr(tc.ip))
		if (why == "") != tc.public {
			t.Errorf("NonPublic(%s) = %q, want public %v", tc.ip, why, tc.public)
		}
	}
	if webhook.NonPublic(netip.Addr{}) == "" {
		t.Error("the zero Addr is public")
	}
}

// TestWebhookURLAtRegistration checks what POST /v1/webhooks accepts as a URL, with
// private addresses refused (the default).
func TestWebhookURLAtRegistration(t *testing.T) {
	b := openBook(t)
	o := b.opts()
	o.AllowPrivate = false
	o.Resolver = fakeResolver{
		"public.test":   {"93.184.216.34"},
		"private.test":  {"10.0.0.5"},
		"mixed.test":    {"10.0.0.5", "93.184.216.34"},
		"metadata.test": {"169.254.169.254", "fd00::1"},
		"nowhere.test":  {},
	} // and the system resolver for localhost
	m := openManager(t, o)
	const ok, bad, forbidden = ledger.CodeOK, ledger.CodeInvalidRequest, ledger.CodeWebhookURLForbidden
	for _, tc := range []struct {
		url  string
		want ledger.Code
	}{
		{"https://93.184.216.34/hook", ok},
		{"http://public.test:8080/a/b?token=x", ok},
		{"https://mixed.test/", ok},   // one public address: the dial check skips the other
		{"https://nowhere.test/", ok}, // does not resolve now: the dial check guards it
		{"https://[2606:4700:4700::1111]/", ok},
		{"http://127.0.0.1/", forbidden},
		{"http://127.0.0.1:8080/hook", forbidden},
		{"http://[::1]:8080/", forbidden},
		{"http://[::ffff:127.0.0.1]/", forbidden},
		{"http://10.0.0.1/", forbidden},
		{"http://172.16.3.4/", forbidden},
		{"http://192.168.1.1/", forbidden},
		{"http://[fd00::1]/", forbidden},
		{"http://169.254.169.254/latest/meta-data/", forbidden},
		{"http://[fe80::1%25eth0]/", forbidden},
		{"http://0.0.0.0:80/", forbidden},
		{"http://100.64.0.1/", forbidden},
		{"http://224.0.0.1/", forbidden},
		{"http://[64:ff9b::a00:1]/", forbidden},
		{"http://localhost/", forbidden}, // resolves to 127.0.0.1 (and ::1)
		{"http://private.test/", forbidden},
		{"http://metadata.test/", forbidden},
		{"", bad},
		{"ftp://public.test/", bad},
		{"file:///etc/passwd", bad},
		{"public.test/hook", bad},
		{"/relative", bad},
		{"http://", bad},
		{"http:///path", bad},
		{"mailto:a@public.test", bad},
		{"http://user:pass@public.test/", bad},
		{"http://user@public.test/", bad},
		{"http://public.test/#frag", bad},
		{"http://public.test:0/", bad},
		{"http://public.test:65536/", bad},
		{"http://127.1/", bad},
		{"http://2130706433/", bad},
		{"http://0x7f.0.0.1/", bad},
		{"http://017700000001/", bad},
		{"http://public.test/" + strings.Repeat("a", webhook.URLMax), bad},
		{"http://pub lic.test/", bad},
	} {
		_, err := m.Create(t.Context(), webhook.Spec{URL: tc.url})
		if got := ledger.CodeOf(err); got != tc.want {
			t.Errorf("%q: %v (code %q), want %q", tc.url, err, got, tc.want)
		}
	}
	// With private addresses allowed, only the form is checked.
	o.AllowPrivate = true
	m2 := openManager(t, o)
	for _, u := range []string{"http://127.0.0.1:8080/", "http://localhost/", "http://[fd00::1]/"} {
		if _, err := m2.Create(t.Context(), webhook.Spec{URL: u}); err != nil {
			t.Errorf("%q with private addresses allowed: %v", u, err)
		}
	}
	if _, err := m2.Create(t.Context(), webhook.Spec{URL: "http://u:p@127.0.0.1/"}); ledger.CodeOf(err) != bad {
		t.Errorf("user information with private addresses allowed: %v", err)
	}
}

// TestWebhookForbiddenAtDial registers a name that resolved to a public address (as a
// DNS rebinding attacker would arrange) but dials to 127.0.0.1: the connection is refused
// when it is dialled, the receiver gets nothing, and the log says why.
func TestWebhookForbiddenAtDial(t *testing.T) {
	b := openBook(t)
	rc := newReceiver(t, nil)
	o := b.opts()
	o.AllowPrivate = false
	o.Resolver = fakeResolver{"localhost": {"93.184.216.34"}} // at registration only
	m := openManager(t, o)
	port := rc.srv.URL[strings.LastIndexByte(rc.srv.URL, ':'):]
	ep, err := m.Create(t.Context(), webhook.Spec{URL: "http://localhost" + port + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	b.account(t, "alice", false)
	var log []webhook.Delivery
	eventually(t, 10*time.Second, "a refused attempt in the log", func() bool {
		log, _, err = m.Deliveries(t.Context(), ep.ID, "", 10)
		return err == nil && len(log) > 0
	})
	d := log[len(log)-1]
	if d.Outcome != webhook.OutcomeRetrying || d.Status != 0 || !strings.Contains(d.Error, "is not public (loopback)") {
		t.Errorf("attempt %+v, want refused as loopback", d)
	}
	if strings.Contains(d.Error, "/hook") {
		t.Errorf("the error shows the URL: %q", d.Error)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("the receiver on 127.0.0.1 got %d requests", n)
	}
}
