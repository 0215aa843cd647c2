// Package egress is the guarded way out of the gateway: an HTTP client and a
// dialer that reach only the hosts a Rules value allows.
//
// The dialer resolves host names itself, through an injectable Resolver, and
// refuses every address in a special-purpose range (loopback, private,
// link-local and cloud metadata, CGNAT, unspecified, multicast, broadcast,
// documentation, NAT64, 6to4 and the IPv4-mapped forms of all of them) unless
// the address lies inside a prefix the Rules explicitly allow. It then dials
// the very address it checked, so a second DNS answer can never redirect the
// connection (no DNS rebinding).
//
// The Client checks a request's host and port before anything is sent, keeps
// one pooled keep-alive transport per rule set and caller-supplied pool key (a
// connection dialed under one rule set is never reused under another), never
// follows redirects, ignores proxy settings from the environment, requires
// TLS 1.2 or later and caps the response body.
//
// Every error is an *Error with a stable code and the host name. Its message
// never carries the URL path, the query string or a header value, any of
// which may hold a credential.
package egress
