package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Resolver resolves host names to addresses. *net.Resolver implements it;
// tests inject a fake. network is "ip", "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ContextDialer opens a TCP connection. The Dialer hands it only IP:port
// addresses that it has already checked, never a host name. *net.Dialer
// implements it.
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// DialerConfig configures a Dialer.
type DialerConfig struct {
	// Rules decide which hosts and addresses may be dialed. Required in the
	// sense that the zero Rules allows nothing.
	Rules Rules
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Dialer opens connections to checked addresses; nil means a *net.Dialer
	// whose control hook checks the socket address once more.
	Dialer ContextDialer
	// Timeout bounds resolution and connection together; 0 means 10s.
	Timeout time.Duration
	// Logger receives refusals (host and address, never a URL); nil discards.
	Logger *slog.Logger
}

// Dialer is the guarded dialer: it checks the host against the rules,
// resolves it once through the Resolver, refuses the whole dial if any
// resolved address is not allowed by Rules.AllowsAddr, and connects to the
// checked addresses themselves (in the resolver's order, the first that
// answers wins), so no second resolution can rebind the name. A literal IP
// host is checked the same way. A Dialer is safe for concurrent use.
type Dialer struct {
	rules    Rules
	resolver Resolver
	dialer   ContextDialer
	timeout  time.Duration
	log      *slog.Logger
}

// NewDialer returns a guarded dialer for cfg.Rules.
func NewDialer(cfg DialerConfig) (*Dialer, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("egress dialer: negative timeout")
	}
	d := &Dialer{
		rules:    cfg.Rules,
		resolver: cfg.Resolver,
		dialer:   cfg.Dialer,
		timeout:  cfg.Timeout,
		log:      cfg.Logger,
	}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	if d.timeout == 0 {
		d.timeout = 10 * time.Second
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.dialer == nil {
		rules := d.rules
		d.dialer = &net.Dialer{
			// The last wall: refuse at the socket if an unchecked address
			// ever reached this point.
			ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil || !rules.AllowsAddr(ap.Addr()) {
					return newError(CodeAddressBlocked, "", "address in a blocked range", nil)
				}
				return nil
			},
		}
	}
	return d, nil
}

// DialContext connects to address ("host:port") over network ("tcp",
// "tcp4" or "tcp6"). Errors are *Error: CodeHostNotAllowed,
// CodeAddressBlocked (before any connection is attempted), CodeDNS,
// CodeConnect, CodeTimeout or CodeCanceled.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil || !validPort(port) {
		return nil, newError(CodeInvalidRequest, "", "invalid dial address", nil)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	canon, addrs, err := d.resolve(ctx, network, host, port)
	if err != nil {
		return nil, err
	}
	var first error
	for i, a := range addrs {
		attempt := ctx
		if dl, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
			// Leave the later addresses a share of the time, as net.Dialer does.
			var c context.CancelFunc
			attempt, c = context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(addrs)-i))
			defer c()
		}
		conn, err := d.dialer.DialContext(attempt, network, netip.AddrPortFrom(a, portNumber(port)).String())
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, d.dialError(ctx, canon, first)
}

func (d *Dialer) dialError(ctx context.Context, host string, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		c := *e
		c.Host = host
		return &c
	case errors.Is(ctx.Err(), context.Canceled):
		return newError(CodeCanceled, host, "dial canceled", err)
	case ctx.Err() != nil:
		return newError(CodeTimeout, host, "dial timed out", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return newError(CodeTimeout, host, "dial timed out", err)
	}
	return newError(CodeConnect, host, "connection failed", err)
}

// Resolve checks host and port against the rules and returns the addresses
// a dial would use, all of them allowed, without connecting. network is
// "tcp", "tcp4" or "tcp6". Errors are as for DialContext. A later dial
// resolves again and checks again, so Resolve serves gates and diagnostics;
// the guarantee is the dial's.
func (d *Dialer) Resolve(ctx context.Context, network, host, port string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	_, addrs, err := d.resolve(ctx, network, host, port)
	return addrs, err
}

func (d *Dialer) resolve(ctx context.Context, network, host, port string) (string, []netip.Addr, error) {
	var family string
	switch network {
	case "tcp":
		family = "ip"
	case "tcp4":
		family = "ip4"
	case "tcp6":
		family = "ip6"
	default:
		return "", nil, newError(CodeInvalidRequest, "", "unsupported network", nil)
	}
	canon, literal, ok := canonicalHost(host)
	if !ok || !validPort(port) || !d.rules.allowsCanonical(canon, port) {
		return "", nil, newError(CodeHostNotAllowed, canon, "host not allowed", nil)
	}
	var addrs []netip.Addr
	if literal.IsValid() {
		addrs = []netip.Addr{literal}
	} else {
		found, err := d.resolver.LookupNetIP(ctx, family, canon)
		switch {
		case err == nil:
		case errors.Is(ctx.Err(), context.Canceled):
			return "", nil, newError(CodeCanceled, canon, "resolution canceled", err)
		case ctx.Err() != nil:
			return "", nil, newError(CodeTimeout, canon, "resolution timed out", err)
		default:
			return "", nil, newError(CodeDNS, canon, "name resolution failed", err)
		}
		addrs = make([]netip.Addr, 0, len(found))
		for _, a := range found {
			if a.Is4In6() {
				a = a.Unmap()
			}
			if (family == "ip4" && !a.Is4()) || (family == "ip6" && !a.Is6()) {
				continue
			}
			addrs = append(addrs, a)
		}
		if len(addrs) == 0 {
			return "", nil, newError(CodeDNS, canon, "no address found", nil)
		}
	}
	for _, a := range addrs {
		if !d.rules.AllowsAddr(a) {
			d.log.LogAttrs(ctx, slog.LevelWarn, "egress address blocked",
				slog.String("host", canon), slog.String("addr", a.String()))
			return "", nil, newError(CodeAddressBlocked, canon, "address in a blocked range", nil)
		}
	}
	return canon, addrs, nil
}

// portNumber parses a port already checked by validPort.
func portNumber(p string) uint16 {
	var n uint16
	for i := 0; i < len(p); i++ {
		n = n*10 + uint16(p[i]-'0')
	}
	return n
}
