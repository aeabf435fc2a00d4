package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// resolveWait bounds the DNS lookup of a URL's host at registration.
const resolveWait = 5 * time.Second

// nonPublic are the special-purpose ranges (IANA registries, RFC 6890 and later) that the
// netip predicates do not cover, with why each is not a public destination.
var nonPublic = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // and 255.255.255.255, broadcast
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments"}, // Teredo among them
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// Prefixes whose addresses carry an IPv4 address, which is checked in turn: NAT64 (the
// last 32 bits) and 6to4 (bits 16 to 47).
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// NonPublic says why ip is not a public unicast address a webhook may go to, or "" when
// it is one.
func NonPublic(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast"
	}
	for _, r := range nonPublic {
		if r.prefix.Contains(ip) {
			return r.why
		}
	}
	if b := ip.As16(); nat64.Contains(ip) {
		if why := NonPublic(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
			return "NAT64 of " + why
		}
	} else if sixToFour.Contains(ip) {
		if why := NonPublic(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
			return "6to4 of " + why
		}
	}
	if !ip.IsGlobalUnicast() {
		return "not global unicast"
	}
	return ""
}

// ForbiddenError is a connection refused because its address is not public.
type ForbiddenError struct {
	Addr netip.Addr
	Why  string
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("address %s is not public (%s); --webhook-allow-private allows it", e.Addr, e.Why)
}

// dialControl refuses a connection to a non-public address. It runs after DNS, on the
// address really dialled, so a name that resolved to a public address at registration and
// to a private one now (DNS rebinding) is refused too.
func dialControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	if why := NonPublic(ip); why != "" {
		return &ForbiddenError{Addr: ip.Unmap(), Why: why}
	}
	return nil
}

// checkURL checks an endpoint URL: absolute http or https with a host, no user
// information or fragment, and (unless allowPrivate) a host that is a public IP or a name
// with at least one public address. A name that does not resolve now is accepted: the dial
// check still guards every connection.
func checkURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	invalid := func(why string) error {
		return ledger.Errorf(ledger.CodeInvalidRequest, "url %s", why)
	}
	if raw == "" {
		return invalid("is required")
	}
	if len(raw) > URLMax {
		return invalid(fmt.Sprintf("is longer than %d bytes", URLMax))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return invalid("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid("must be absolute, http:// or https://")
	case u.Opaque != "" || u.Hostname() == "":
		return invalid("must have a host")
	case u.User != nil:
		return invalid("must not hold a user name or password: authenticate webhooks by their signature")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return invalid("must not have a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("has a bad port")
		}
	}
	host := u.Hostname()
	ip, err := netip.ParseAddr(host)
	if err != nil && numeric(host) {
		// 127.1, 0x7f.0.0.1 and 2130706433 are 127.0.0.1 to some resolvers.
		return invalid("has a host that is neither a name nor an IP address in canonical form")
	}
	if allowPrivate {
		return nil
	}
	if err == nil {
		if why := NonPublic(ip); why != "" {
			return ledger.Errorf(ledger.CodeWebhookURLForbidden, "the url's host %s is not a public address (%s)", ip, why)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveWait)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil
	}
	var why string
	for _, a := range addrs {
		if why = NonPublic(a); why == "" {
			return nil
		}
	}
	return ledger.Errorf(ledger.CodeWebhookURLForbidden, "the url's host %s resolves only to addresses that are not public (%s)",
		clip(host, 253), why)
}

// numeric reports whether host's last label is all digits or a 0x number, as no DNS name's
// top-level label is.
func numeric(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		return true
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}
