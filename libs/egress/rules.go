package egress

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Rules says where egress may go: the allowed host names (with an optional
// port) and the IP prefixes that lift the ban on special-purpose ranges.
//
// A Rules value is immutable once built by NewRules and safe for concurrent
// use. The zero value allows nothing.
//
// Host patterns are matched case-insensitively, without a trailing dot:
//
//   - "api.example.com" allows that host on any port;
//   - "api.example.com:8443" allows that host on port 8443 only;
//   - "*.example.com" allows every name below example.com (one or more
//     labels), but not example.com itself; a port may follow as above;
//   - an IP literal ("203.0.113.7", "2001:db8::1", "[2001:db8::1]:443")
//     allows a request addressed to that literal.
//
// Passing the host check is not enough: every address a host resolves to (or
// an IP literal itself) must also pass AllowsAddr.
type Rules struct {
	hosts    []hostRule
	prefixes []netip.Prefix
	key      string
}

type hostRule struct {
	name     string // canonical host (lowercase name or canonical IP), without "*."
	port     string // "" for any port
	wildcard bool
}

func (h hostRule) String() string {
	s := h.name
	if h.wildcard {
		s = "*." + s
	}
	if h.port == "" {
		if strings.Contains(s, ":") {
			return "[" + s + "]"
		}
		return s
	}
	return net.JoinHostPort(s, h.port)
}

// NewRules validates and canonicalises host patterns and allowed prefixes.
// Duplicates are removed and the order of both lists does not matter: two
// rule sets that allow the same patterns have the same Key. A host pattern
// that is not a valid DNS name or IP literal, a bare "*", a name whose last
// label is numeric or hexadecimal (a disguised IP such as "2130706433" or
// "0x7f.1"), a port outside 1–65535 or an invalid prefix is an error.
func NewRules(hosts []string, allow []netip.Prefix) (Rules, error) {
	r := Rules{
		hosts:    make([]hostRule, 0, len(hosts)),
		prefixes: make([]netip.Prefix, 0, len(allow)),
	}
	for _, h := range hosts {
		hr, err := parseHostRule(h)
		if err != nil {
			return Rules{}, err
		}
		r.hosts = append(r.hosts, hr)
	}
	for _, p := range allow {
		if !p.IsValid() {
			return Rules{}, &Error{Code: CodeInvalidRules, detail: "invalid prefix"}
		}
		r.prefixes = append(r.prefixes, canonicalPrefix(p))
	}
	slices.SortFunc(r.hosts, func(a, b hostRule) int { return strings.Compare(a.String(), b.String()) })
	r.hosts = slices.Compact(r.hosts)
	slices.SortFunc(r.prefixes, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	r.prefixes = slices.Compact(r.prefixes)
	r.key = r.computeKey()
	return r, nil
}

// canonicalPrefix masks p and turns an IPv4-mapped IPv6 prefix into the IPv4
// prefix it stands for, since addresses are unmapped before they are checked.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

func parseHostRule(pattern string) (hostRule, error) {
	bad := func(why string) (hostRule, error) {
		return hostRule{}, &Error{Code: CodeInvalidRules, Host: pattern, detail: why}
	}
	s := strings.TrimSpace(pattern)
	if s == "" {
		return bad("empty host pattern")
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if !validPort(port) {
			return bad("invalid port in host pattern")
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return hostRule{name: a.Unmap().String(), port: port}, nil
	}
	wildcard := false
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		wildcard, host = true, rest
	}
	name, ok := canonicalName(host)
	if !ok {
		return bad("invalid host pattern")
	}
	return hostRule{name: name, port: port, wildcard: wildcard}, nil
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// canonicalName lowercases a DNS host name, drops one trailing dot and
// reports whether it is a name this package accepts: labels of letters,
// digits, '-' and '_', at most 63 bytes each and 253 in all, not starting or
// ending with '-', and a last label that is neither all digits nor "0x…"
// (which some resolvers would read as an IP address).
func canonicalName(h string) (string, bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	lower := true
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			lower = false
			break
		}
	}
	if !lower {
		h = strings.ToLower(h)
	}
	last := ""
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
		last = label
	}
	if strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return "", false
	}
	return h, true
}

// canonicalHost turns a request or dial host (no port, no brackets) into the
// form host rules are written in. ok is false for a host no rule can match.
func canonicalHost(host string) (canon string, addr netip.Addr, ok bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		return a.String(), a, true
	}
	name, ok := canonicalName(host)
	return name, netip.Addr{}, ok
}

// AllowsHost reports whether a request to host on port passes the host
// patterns. host is a name or an IP literal without brackets; port is the
// decimal port the connection will use. It does not look at addresses.
func (r Rules) AllowsHost(host, port string) bool {
	canon, _, ok := canonicalHost(host)
	return ok && r.allowsCanonical(canon, port)
}

func (r Rules) allowsCanonical(canon, port string) bool {
	for _, h := range r.hosts {
		if h.port != "" && h.port != port {
			continue
		}
		if h.wildcard {
			if len(canon) > len(h.name)+1 && strings.HasSuffix(canon, h.name) && canon[len(canon)-len(h.name)-1] == '.' {
				return true
			}
			continue
		}
		if canon == h.name {
			return true
		}
	}
	return false
}

// AllowsAddr reports whether a connection to addr may be opened: addr is not
// in a special-purpose range (see Blocked), or it lies inside one of the
// explicitly allowed prefixes. An IPv4-mapped IPv6 address is judged as the
// IPv4 address it carries; an IPv6 zone is ignored for the check.
func (r Rules) AllowsAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	a := addr.WithZone("").Unmap()
	for _, p := range r.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return !Blocked(a)
}

// Hosts returns the canonical host patterns, sorted.
func (r Rules) Hosts() []string {
	out := make([]string, len(r.hosts))
	for i, h := range r.hosts {
		out[i] = h.String()
	}
	return out
}

// AllowedPrefixes returns the canonical allowed prefixes, sorted.
func (r Rules) AllowedPrefixes() []netip.Prefix { return slices.Clone(r.prefixes) }

// Key returns a stable fingerprint of the rules: the hex SHA-256 of their
// canonical form. Two rule sets have the same key exactly when they allow the
// same host patterns and prefixes, whatever the order or letter case they
// were written in. The zero Rules has a key too.
func (r Rules) Key() string {
	if r.key == "" {
		return r.computeKey()
	}
	return r.key
}

func (r Rules) computeKey() string {
	h := sha256.New()
	fmt.Fprint(h, "egress-rules-v1\n")
	for _, hr := range r.hosts {
		fmt.Fprintf(h, "host %s\n", hr)
	}
	for _, p := range r.prefixes {
		fmt.Fprintf(h, "allow %s\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// String lists the patterns and prefixes; rules hold no secret.
func (r Rules) String() string {
	return fmt.Sprintf("egress.Rules{hosts=%v allow=%v}", r.Hosts(), r.prefixes)
}
