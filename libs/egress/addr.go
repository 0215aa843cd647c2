package egress

import "net/netip"

// blockedPrefixes are the special-purpose ranges (IANA IPv4 and IPv6
// Special-Purpose Address Registries, plus multicast and reserved space) that
// egress refuses unless a Rules value explicitly allows them. IPv4-mapped IPv6
// addresses are unmapped before the check, so 127.0.0.0/8 also covers
// ::ffff:127.0.0.1.
var blockedPrefixes = [...]netip.Prefix{
	// IPv4.
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", incl. 0.0.0.0
	netip.MustParsePrefix("10.0.0.0/8"),      // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, incl. 169.254.169.254 metadata
	netip.MustParsePrefix("172.16.0.0/12"),   // private (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments, incl. NAT64 discovery
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("192.168.0.0/16"),  // private (RFC 1918)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, incl. 255.255.255.255 broadcast

	// IPv6.
	netip.MustParsePrefix("::/96"),           // unspecified, loopback, IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0/96"),   // IPv4-mapped (checked unmapped; kept as a backstop)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix
	netip.MustParsePrefix("64:ff9b:1::/48"),  // NAT64 local-use prefix
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, incl. Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4, which embeds any IPv4 address
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // segment routing SIDs
	netip.MustParsePrefix("fc00::/7"),        // unique local, incl. fd00:ec2::254 metadata
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),        // multicast
}

// Blocked reports whether addr lies in a special-purpose range that egress
// refuses unless a Rules value explicitly allows it: loopback, private
// (RFC 1918, fc00::/7), link-local (including cloud metadata addresses),
// unspecified, multicast, broadcast and reserved space, CGNAT 100.64.0.0/10,
// 0.0.0.0/8, documentation and benchmarking ranges, NAT64, 6to4, Teredo and
// the IPv4-mapped or IPv4-translated forms of any IPv4 address in those
// ranges. Anything that is not a global unicast address is blocked too, and
// so is the zero Addr.
func Blocked(addr netip.Addr) bool {
	if !addr.IsValid() {
		return true
	}
	a := addr.WithZone("").Unmap()
	if !a.IsGlobalUnicast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
