package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/mcpgw/mcpgw/libs/egress"
	"github.com/mcpgw/mcpgw/services/adapter/internal/inject"
)

// DefaultMaxRedirects is how many redirects Send follows by default.
const DefaultMaxRedirects = 3

// anonymousPool is the pool key of requests sent without a credential, so
// they never share a connection with a binding's requests.
const anonymousPool = "anonymous"

// Doer sends one request through the guarded egress client; *egress.Client
// implements it.
type Doer interface {
	Do(ctx context.Context, req *http.Request, rules egress.Rules, opts ...egress.CallOption) (*egress.Response, error)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Egress sends the requests. Required.
	Egress Doer
	// MaxRedirects bounds the redirects followed (default
	// DefaultMaxRedirects; negative means none).
	MaxRedirects int
}

// Client sends built requests with their credentials. It is safe for
// concurrent use and keeps no per-call state: credentials travel with each
// call only.
type Client struct {
	egress       Doer
	maxRedirects int
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Egress == nil {
		return nil, errors.New("upstream: client needs an egress client")
	}
	switch {
	case cfg.MaxRedirects == 0:
		cfg.MaxRedirects = DefaultMaxRedirects
	case cfg.MaxRedirects < 0:
		cfg.MaxRedirects = 0
	}
	return &Client{egress: cfg.Egress, maxRedirects: cfg.MaxRedirects}, nil
}

// Error is a failure of Send that is not an egress error. Its message is a
// fixed phrase: never a URL, a query string or a header value.
type Error struct {
	Code    string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return "upstream: " + e.Message }

// Codes of Error.
const (
	CodeTooManyRedirects = "too_many_redirects"
	CodeBadRedirect      = "bad_redirect"
	CodeInject           = "inject"
	CodeBuild            = "build"
)

// Call is one call to send.
type Call struct {
	Request *Request
	// Rules are the tool's allowlist; every hop is checked against them.
	Rules egress.Rules
	// Credentials go onto the first request and onto redirects to the same
	// scheme, host and port only.
	Credentials []inject.Credential
	// PoolKey separates the connections of one binding from every other.
	PoolKey string
	// Scrub lists the forms of the credentials: a redirect to another host
	// whose target carries one of them is refused.
	Scrub [][]byte
}

// Reply is the final response and what it took to get it.
type Reply struct {
	Response *egress.Response
	// Redirects is the number of redirects followed.
	Redirects int
	// Host is the host (and port, when the URL names one) that answered.
	Host string
}

// Send sends the call's request and follows up to MaxRedirects redirects,
// each re-checked by the egress client against the call's rules. A 303, or
// a 301 or 302 answering anything but GET or HEAD, continues as a GET
// without body; 307 and 308 repeat the method and body. Errors are
// *egress.Error or *Error; neither carries the URL.
func (c *Client) Send(ctx context.Context, call Call) (*Reply, error) {
	orig := call.Request
	origHost, origPort := orig.Host()
	method, u, body, header := orig.Method, orig.URL, orig.Body, orig.Header
	withCreds := true
	for hop := 0; ; hop++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		hreq, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return nil, &Error{Code: CodeBuild, Message: "request cannot be built"}
		}
		hreq.Header = header.Clone()
		pool := anonymousPool
		if withCreds && len(call.Credentials) > 0 {
			if err := inject.Apply(hreq, call.Credentials); err != nil {
				return nil, &Error{Code: CodeInject, Message: "credential cannot be placed on the request"}
			}
			pool = call.PoolKey
		}
		resp, err := c.egress.Do(ctx, hreq, call.Rules, egress.WithPoolKey(pool))
		if err != nil {
			return nil, err
		}
		if !resp.IsRedirect() {
			return &Reply{Response: resp, Redirects: hop, Host: u.Host}, nil
		}
		if hop >= c.maxRedirects {
			return nil, &Error{Code: CodeTooManyRedirects, Message: "too many redirects"}
		}
		target, err := egress.RedirectTarget(resp)
		if err != nil {
			return nil, &Error{Code: CodeBadRedirect, Message: "redirect without a usable location"}
		}
		target.User = nil
		target.Fragment = ""
		th, tp := HostPort(target)
		withCreds = target.Scheme == orig.URL.Scheme && strings.EqualFold(th, origHost) && tp == origPort
		if !withCreds && containsAny(target.String(), call.Scrub) {
			return nil, &Error{Code: CodeBadRedirect, Message: "redirect to another host carries the credential"}
		}
		switch resp.StatusCode {
		case http.StatusSeeOther:
			if method != http.MethodHead {
				method = http.MethodGet
			}
			body = nil
		case http.StatusMovedPermanently, http.StatusFound:
			if method != http.MethodGet && method != http.MethodHead {
				method, body = http.MethodGet, nil
			}
		}
		header = header.Clone()
		if body == nil {
			header.Del("Content-Type")
		}
		u = target
	}
}

func containsAny(s string, forms [][]byte) bool {
	for _, f := range forms {
		if len(f) > 0 && strings.Contains(s, string(f)) {
			return true
		}
	}
	return false
}
