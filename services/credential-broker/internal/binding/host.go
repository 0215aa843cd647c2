package binding

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/mcpgw/mcpgw/libs/errcode"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
)

// MaxHosts bounds the hosts of one binding.
const MaxHosts = 64

// Host is a confirmed host of a binding: a lowercase DNS name or an IP
// address, with an optional port.
type Host struct {
	// Name is the DNS name or the IP address in its canonical text form
	// (without brackets).
	Name string
	// Port is the decimal port, or "" when the host names none.
	Port string
}

// String returns the host in the form bindings record: name, name:port,
// [v6] or [v6]:port.
func (h Host) String() string {
	name := h.Name
	if strings.IndexByte(name, ':') >= 0 {
		name = "[" + name + "]"
	}
	if h.Port == "" {
		return name
	}
	return name + ":" + h.Port
}

// Covers reports whether a request to r may carry a credential confirmed
// for h: the names are equal, and h names no port or the same port as r.
// A host confirmed with a port does not cover a request that names none.
func (h Host) Covers(r Host) bool {
	return h.Name == r.Name && (h.Port == "" || h.Port == r.Port)
}

// ParseHost parses a host as an operator confirms it for a binding: a
// lowercase DNS name (labels of a-z, 0-9 and '-', not starting or ending
// with '-', at most 253 bytes, no trailing dot, a last label that is not
// all digits) or an IPv4 address or bracketed IPv6 address in canonical
// form, each with an optional port 1–65535. Schemes, paths, user info,
// wildcards, zones and upper case are refused with a message that says so.
func ParseHost(s string) (Host, error) {
	bad := func(reason string) (Host, error) {
		return Host{}, errcode.Errorf(errcode.InvalidArgument, "host %q: %s", strategy.Clip(s), reason)
	}
	switch {
	case s == "":
		return bad("empty")
	case len(s) > 260:
		return bad("too long")
	case strings.Contains(s, "://"):
		return bad("give the host only, without a scheme")
	case strings.ContainsAny(s, "/?#"):
		return bad("give the host only, without a path, query or fragment")
	case strings.ContainsRune(s, '@'):
		return bad("user info is not allowed")
	case strings.ContainsRune(s, '*'):
		return bad("wildcards are not allowed")
	case strings.ContainsRune(s, '%'):
		return bad("zones and escapes are not allowed")
	case strings.ToLower(s) != s:
		return bad("must be lowercase")
	}
	name, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("unclosed '['")
		}
		name, port = s[1:end], s[end+1:]
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return bad("unexpected text after ']'")
			}
			port = p
			if port == "" {
				return bad("empty port")
			}
		}
		a, err := netip.ParseAddr(name)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return bad("brackets must hold an IPv6 address")
		}
		if a.String() != name {
			return bad("write the IPv6 address in its canonical form " + a.String())
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			name, port = s[:i], s[i+1:]
			if strings.IndexByte(name, ':') >= 0 {
				return bad("put an IPv6 address in brackets")
			}
			if port == "" {
				return bad("empty port")
			}
		}
		if a, err := netip.ParseAddr(name); err == nil {
			if !a.Is4() {
				return bad("put an IPv6 address in brackets")
			}
		} else if reason := checkDNSName(name); reason != "" {
			return bad(reason)
		}
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
			return bad("port must be a number from 1 to 65535")
		}
	}
	return Host{Name: name, Port: port}, nil
}

// ParseRequestHost parses the host a request will go to (a URL's host:
// host or host:port) for comparison with confirmed hosts. Upper case is
// folded, since DNS names are case-insensitive; otherwise the rules of
// ParseHost apply.
func ParseRequestHost(s string) (Host, error) {
	return ParseHost(strings.ToLower(s))
}

// checkDNSName returns why name is not an acceptable DNS name, or "".
func checkDNSName(name string) string {
	if name == "" {
		return "empty name"
	}
	if len(name) > 253 {
		return "name longer than 253 bytes"
	}
	if strings.HasSuffix(name, ".") {
		return "remove the trailing dot"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label"
		}
		if len(l) > 63 {
			return "label longer than 63 bytes"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "a label starts or ends with '-'"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "only a-z, 0-9, '-' and '.' are allowed in a name"
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return "not a valid IPv4 address, and a name cannot end in a numeric label"
	}
	return ""
}

// CheckHosts parses the hosts of a new binding and returns them in their
// recorded form, without duplicates, in the order given. At least one and
// at most MaxHosts are required.
func CheckHosts(hosts []string) ([]string, error) {
	if len(hosts) == 0 {
		return nil, errcode.New(errcode.InvalidArgument, "hosts: at least one confirmed host is required")
	}
	if len(hosts) > MaxHosts {
		return nil, errcode.Errorf(errcode.InvalidArgument, "hosts: at most %d are allowed", MaxHosts)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(hosts))
	for _, s := range hosts {
		h, err := ParseHost(s)
		if err != nil {
			return nil, err
		}
		if k := h.String(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// Covered reports whether one of the confirmed hosts covers the request
// host. Confirmed hosts that do not parse cover nothing.
func Covered(confirmed []string, request Host) bool {
	for _, s := range confirmed {
		if h, err := ParseHost(s); err == nil && h.Covers(request) {
			return true
		}
	}
	return false
}
