package egress

import (
	"net/http"
	"net/url"
)

// IsRedirect reports whether the response is a redirect Do returned
// unfollowed (301, 302, 303, 307 or 308).
func (r *Response) IsRedirect() bool {
	if r == nil {
		return false
	}
	switch r.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// RedirectTarget returns where a redirect response points: its Location
// resolved against the URL of the request that produced it. It follows
// nothing and checks no rules; the caller decides whether to go on and sends
// a new request through Do, which checks the target like any other request
// (and must decide itself whether credentials may go along, which they may
// only for the same host). A response that is not a redirect, a missing or
// unparsable Location, or a target that is not http or https is an *Error
// with CodeNotRedirect; its message never contains the Location.
func RedirectTarget(resp *Response) (*url.URL, error) {
	if !resp.IsRedirect() {
		return nil, newError(CodeNotRedirect, "", "response is not a redirect", nil)
	}
	host := ""
	if resp.url != nil {
		host = resp.url.Hostname()
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, newError(CodeNotRedirect, host, "redirect without location", nil)
	}
	base := resp.url
	if base == nil {
		base = &url.URL{}
	}
	target, err := base.Parse(loc)
	if err != nil {
		return nil, newError(CodeNotRedirect, host, "unparsable location", nil)
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, newError(CodeNotRedirect, host, "location is not an http or https url", nil)
	}
	return target, nil
}
