package egress_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/egress"
)

func TestNewRulesRefusesInvalidPatterns(t *testing.T) {
	tests := []struct {
		name    string
		hosts   []string
		prefix  []netip.Prefix
		wantErr bool
	}{
		{name: "plain", hosts: []string{"api.example.com"}},
		{name: "port", hosts: []string{"api.example.com:8443"}},
		{name: "wildcard", hosts: []string{"*.example.com"}},
		{name: "wildcard port", hosts: []string{"*.example.com:443"}},
		{name: "ipv4 literal", hosts: []string{"203.0.113.7"}},
		{name: "ipv6 literal", hosts: []string{"2001:db8::1"}},
		{name: "bracketed ipv6", hosts: []string{"[2001:db8::1]"}},
		{name: "ipv6 with port", hosts: []string{"[2001:db8::1]:8443"}},
		{name: "underscore", hosts: []string{"_svc.example.com"}},
		{name: "trailing dot", hosts: []string{"example.com."}},
		{name: "empty", hosts: []string{""}, wantErr: true},
		{name: "bare star", hosts: []string{"*"}, wantErr: true},
		{name: "star dot", hosts: []string{"*."}, wantErr: true},
		{name: "inner star", hosts: []string{"api.*.example.com"}, wantErr: true},
		{name: "empty label", hosts: []string{"a..example.com"}, wantErr: true},
		{name: "leading hyphen", hosts: []string{"-a.example.com"}, wantErr: true},
		{name: "space", hosts: []string{"exa mple.com"}, wantErr: true},
		{name: "url", hosts: []string{"https://example.com"}, wantErr: true},
		{name: "path", hosts: []string{"example.com/x"}, wantErr: true},
		{name: "port zero", hosts: []string{"example.com:0"}, wantErr: true},
		{name: "port too big", hosts: []string{"example.com:65536"}, wantErr: true},
		{name: "named port", hosts: []string{"example.com:https"}, wantErr: true},
		{name: "decimal ip", hosts: []string{"2130706433"}, wantErr: true},
		{name: "short ip", hosts: []string{"127.1"}, wantErr: true},
		{name: "hex ip", hosts: []string{"0x7f.1"}, wantErr: true},
		{name: "octal-looking", hosts: []string{"0177.0.0.1"}, wantErr: true},
		{name: "wildcard over numbers", hosts: []string{"*.0.1"}, wantErr: true},
		{name: "label too long", hosts: []string{strings.Repeat("a", 64) + ".com"}, wantErr: true},
		{name: "invalid prefix", prefix: []netip.Prefix{{}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := egress.NewRules(tt.hosts, tt.prefix)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewRules(%q) error = %v, want error %v", tt.hosts, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, &egress.Error{Code: egress.CodeInvalidRules}) {
				t.Fatalf("error %v is not %s", err, egress.CodeInvalidRules)
			}
		})
	}
}

func TestRulesKeyIsStable(t *testing.T) {
	a := mustRules(t, []string{"API.example.com", "*.svc.example.com:8443", "api.example.com."},
		[]netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("127.0.0.1/32")})
	b := mustRules(t, []string{"*.SVC.example.com:8443", "api.example.com"},
		[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("::ffff:127.0.0.1/128")})
	if a.Key() != b.Key() {
		t.Fatalf("equivalent rules have different keys:\n%v\n%v", a, b)
	}
	if got, want := a.Hosts(), []string{"*.svc.example.com:8443", "api.example.com"}; !slices.Equal(got, want) {
		t.Fatalf("Hosts() = %q, want %q", got, want)
	}
	if got := a.AllowedPrefixes(); len(got) != 2 {
		t.Fatalf("AllowedPrefixes() = %v, want 2 canonical prefixes", got)
	}

	others := map[string]egress.Rules{
		"other host":   mustRules(t, []string{"api.example.org"}, nil),
		"port":         mustRules(t, []string{"api.example.com:443"}, nil),
		"wildcard":     mustRules(t, []string{"*.api.example.com"}, nil),
		"exact":        mustRules(t, []string{"api.example.com"}, nil),
		"with prefix":  mustRules(t, []string{"api.example.com"}, loopbackOnly()),
		"empty":        mustRules(t, nil, nil),
		"prefix only":  mustRules(t, nil, loopbackOnly()),
		"wider prefix": mustRules(t, nil, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}),
	}
	seen := map[string]string{}
	for name, r := range others {
		k := r.Key()
		if len(k) != 64 {
			t.Fatalf("%s: key %q is not a hex SHA-256", name, k)
		}
		if prev, dup := seen[k]; dup {
			t.Fatalf("%s and %s share a key", name, prev)
		}
		seen[k] = name
	}
	var zero egress.Rules
	if zero.Key() != others["empty"].Key() {
		t.Fatalf("zero Rules key %q differs from empty rules key %q", zero.Key(), others["empty"].Key())
	}
}

func TestRulesAllowsHost(t *testing.T) {
	r := mustRules(t, []string{
		"api.example.com",
		"pinned.example.com:8443",
		"*.svc.example.net",
		"203.0.113.7",
		"[2001:db8::1]:443",
	}, nil)
	tests := []struct {
		host, port string
		want       bool
	}{
		{"api.example.com", "443", true},
		{"api.example.com", "8080", true},
		{"API.Example.COM", "443", true},
		{"api.example.com.", "443", true},
		{"example.com", "443", false},
		{"evilapi.example.com", "443", false},
		{"api.example.com.evil.test", "443", false},
		{"pinned.example.com", "8443", true},
		{"pinned.example.com", "443", false},
		{"a.svc.example.net", "443", true},
		{"a.b.svc.example.net", "80", true},
		{"svc.example.net", "443", false},
		{"evilsvc.example.net", "443", false},
		{"203.0.113.7", "80", true},
		{"::ffff:203.0.113.7", "80", true},
		{"203.0.113.8", "80", false},
		{"2001:db8::1", "443", true},
		{"2001:0db8:0:0::1", "443", true},
		{"2001:db8::1", "80", false},
		{"2130706433", "80", false},
		{"", "443", false},
		{"api example.com", "443", false},
	}
	for _, tt := range tests {
		t.Run(tt.host+":"+tt.port, func(t *testing.T) {
			if got := r.AllowsHost(tt.host, tt.port); got != tt.want {
				t.Fatalf("AllowsHost(%q, %q) = %v, want %v", tt.host, tt.port, got, tt.want)
			}
		})
	}
}

// blockedAddrs covers every refused range, in plain, IPv4-mapped and
// embedded forms.
var blockedAddrs = []string{
	"0.0.0.0", "0.1.2.3",
	"10.0.0.1", "10.255.255.255",
	"100.64.0.1", "100.127.255.255", "100.100.100.200",
	"127.0.0.1", "127.255.255.254",
	"169.254.0.1", "169.254.169.254",
	"172.16.0.1", "172.31.255.255",
	"192.0.0.170", "192.0.2.1", "192.88.99.1",
	"192.168.0.1", "192.168.255.255",
	"198.18.0.1", "198.19.255.255", "198.51.100.1", "203.0.113.1",
	"224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
	"::", "::1", "::127.0.0.1",
	"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
	"::ffff:0:7f00:1",
	"64:ff9b::7f00:1", "64:ff9b::808:808", "64:ff9b:1::a9fe:a9fe",
	"100::1",
	"2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
	"2002:7f00:1::1", "3fff::1", "5f00::1",
	"fc00::1", "fd00:ec2::254",
	"fe80::1", "fe80::1%eth0", "fec0::1",
	"ff02::1", "ff05::1:3",
}

var publicAddrs = []string{
	"8.8.8.8", "1.1.1.1", "93.184.215.14", "9.255.255.255", "11.0.0.1",
	"100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
	"192.169.0.1", "198.20.0.1", "223.255.255.255",
	"2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8",
}

func TestBlockedRanges(t *testing.T) {
	none := mustRules(t, nil, nil)
	for _, a := range blockedAddrs {
		t.Run(a, func(t *testing.T) {
			addr := netip.MustParseAddr(a)
			if !egress.Blocked(addr) {
				t.Fatalf("Blocked(%s) = false", a)
			}
			if none.AllowsAddr(addr) {
				t.Fatalf("AllowsAddr(%s) = true without an allowed prefix", a)
			}
		})
	}
	for _, a := range publicAddrs {
		t.Run(a, func(t *testing.T) {
			addr := netip.MustParseAddr(a)
			if egress.Blocked(addr) || !none.AllowsAddr(addr) {
				t.Fatalf("public address %s refused", a)
			}
		})
	}
	if !egress.Blocked(netip.Addr{}) {
		t.Fatal("the zero Addr is not blocked")
	}
}

func TestAllowedPrefixLiftsTheBan(t *testing.T) {
	tests := []struct {
		name  string
		allow string
		addr  string
		want  bool
	}{
		{"loopback", "127.0.0.1/32", "127.0.0.1", true},
		{"mapped loopback", "127.0.0.1/32", "::ffff:127.0.0.1", true},
		{"next loopback", "127.0.0.1/32", "127.0.0.2", false},
		{"mapped prefix", "::ffff:127.0.0.1/128", "127.0.0.1", true},
		{"private", "10.20.0.0/16", "10.20.3.4", true},
		{"other private", "10.20.0.0/16", "10.21.3.4", false},
		{"metadata not covered", "10.0.0.0/8", "169.254.169.254", false},
		{"ula", "fd00::/8", "fd00:ec2::254", true},
		{"link-local with zone", "fe80::/10", "fe80::1%eth0", true},
		{"v4 prefix does not cover v6", "127.0.0.0/8", "::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRules(t, nil, []netip.Prefix{netip.MustParsePrefix(tt.allow)})
			if got := r.AllowsAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("AllowsAddr(%s) under %s = %v, want %v", tt.addr, tt.allow, got, tt.want)
			}
		})
	}
}
