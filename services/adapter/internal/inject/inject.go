// Package inject puts resolved upstream credentials onto an HTTP request,
// where each binding's placement says, and lists every form a credential
// could be echoed in so responses can be scrubbed.
//
// A Credential holds its value as a secret.Value and redacts itself when
// printed or logged. Injection replaces any header, query parameter or
// cookie of the same name, so nothing an argument supplied can stand in for
// or sit beside the injected credential. Apply does no I/O.
package inject

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// Strategies whose placement is fixed by the scheme.
const (
	StrategyAPIKey = "api_key"
	StrategyBearer = "bearer"
	StrategyBasic  = "basic"
)

// Credential is one binding's resolved credential for one call.
type Credential struct {
	BindingID string
	Strategy  string
	Placement *controlv1.Placement
	// Hosts the binding manager confirmed for this credential.
	Hosts    []string
	Value    secret.Value
	Username string
}

// String redacts the value.
func (c Credential) String() string {
	return fmt.Sprintf("credential(%s, %s)", c.BindingID, c.Strategy)
}

// LogValue redacts the value.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("binding_id", c.BindingID), slog.String("strategy", c.Strategy))
}

// FromMaterial converts resolved material into Credentials and clears the
// material's plaintext values.
func FromMaterial(m *rpcv1.ResolvedMaterial) []Credential {
	out := make([]Credential, 0, len(m.GetMaterials()))
	for _, mm := range m.GetMaterials() {
		out = append(out, Credential{
			BindingID: mm.GetBindingId(), Strategy: mm.GetStrategy(), Placement: mm.GetPlacement(),
			Hosts: mm.GetHosts(), Value: secret.New(mm.GetValue()), Username: mm.GetUsername(),
		})
		clear(mm.Value)
	}
	return out
}

// Wipe clears every credential's value.
func Wipe(creds []Credential) {
	for _, c := range creds {
		c.Value.Wipe()
	}
}

// Apply adds every credential to req, replacing any header, query
// parameter or cookie of the same name. A value that cannot travel where its
// placement says (a line break in a header) or a strategy without a usable
// placement is an error that names the binding, never the value.
func Apply(req *http.Request, creds []Credential) error {
	for _, c := range creds {
		if err := apply(req, c); err != nil {
			return err
		}
	}
	return nil
}

func apply(req *http.Request, c Credential) error {
	v := c.Value.Reveal()
	defer clear(v)
	if len(v) == 0 {
		return fmt.Errorf("binding %s: empty credential", c.BindingID)
	}
	switch c.Strategy {
	case StrategyBasic:
		if strings.ContainsAny(c.Username, ":\r\n\x00") {
			return fmt.Errorf("binding %s: username cannot be used for basic auth", c.BindingID)
		}
		raw := append([]byte(c.Username+":"), v...)
		enc := base64.StdEncoding.EncodeToString(raw)
		clear(raw)
		req.Header.Set("Authorization", "Basic "+enc)
		return nil
	}
	p := c.Placement
	if p == nil || p.GetName() == "" {
		if c.Strategy == StrategyAPIKey {
			return fmt.Errorf("binding %s: api key without a placement", c.BindingID)
		}
		// Bearer tokens (also minted ones) default to the Authorization header.
		p = &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Bearer "}
	}
	prefix := p.GetPrefix()
	if prefix == "" && c.Strategy == StrategyBearer && http.CanonicalHeaderKey(p.GetName()) == "Authorization" {
		prefix = "Bearer "
	}
	value := prefix + string(v)
	switch strings.ToLower(p.GetIn()) {
	case "header", "":
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("binding %s: credential cannot travel in a header", c.BindingID)
		}
		req.Header.Set(p.GetName(), value)
	case "query":
		setQuery(req.URL, p.GetName(), value)
	case "cookie":
		if strings.ContainsAny(value, "\r\n\x00;, \"\\") {
			return fmt.Errorf("binding %s: credential cannot travel in a cookie", c.BindingID)
		}
		setCookie(req, p.GetName(), value)
	default:
		return fmt.Errorf("binding %s: unsupported placement %q", c.BindingID, p.GetIn())
	}
	return nil
}

// setQuery replaces the query parameter name in u, keeping the other
// parameters as they were encoded.
func setQuery(u *url.URL, name, value string) {
	var kept []string
	for _, pair := range strings.Split(u.RawQuery, "&") {
		if pair == "" {
			continue
		}
		n, _, _ := strings.Cut(pair, "=")
		if un, err := url.QueryUnescape(n); err == nil && un == name || n == name {
			continue
		}
		kept = append(kept, pair)
	}
	kept = append(kept, url.QueryEscape(name)+"="+url.QueryEscape(value))
	u.RawQuery = strings.Join(kept, "&")
}

// setCookie replaces the cookie name in req's Cookie header.
func setCookie(req *http.Request, name, value string) {
	var kept []string
	for _, line := range req.Header.Values("Cookie") {
		for _, pair := range strings.Split(line, ";") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			if n, _, _ := strings.Cut(pair, "="); n == name {
				continue
			}
			kept = append(kept, pair)
		}
	}
	kept = append(kept, name+"="+value)
	req.Header.Set("Cookie", strings.Join(kept, "; "))
}

// Forms returns every form in which the credentials could appear in a
// response: raw, base64 (standard and URL alphabets, padded or not), URL-
// and path-escaped, JSON-escaped, and the Basic pair encoded. Empty values
// give nothing. The caller clears the returned slices when done.
func Forms(creds []Credential) [][]byte {
	var out [][]byte
	add := func(b []byte) {
		if len(b) == 0 {
			return
		}
		for _, have := range out {
			if bytes.Equal(have, b) {
				return
			}
		}
		out = append(out, b)
	}
	for _, c := range creds {
		v := c.Value.Reveal()
		if len(v) == 0 {
			continue
		}
		vals := [][]byte{v}
		if c.Strategy == StrategyBasic {
			vals = append(vals, append([]byte(c.Username+":"), v...))
		}
		for _, x := range vals {
			add(bytes.Clone(x))
			add([]byte(base64.StdEncoding.EncodeToString(x)))
			add([]byte(base64.RawStdEncoding.EncodeToString(x)))
			add([]byte(base64.URLEncoding.EncodeToString(x)))
			add([]byte(base64.RawURLEncoding.EncodeToString(x)))
			add([]byte(url.QueryEscape(string(x))))
			add([]byte(url.PathEscape(string(x))))
			if j, err := json.Marshal(string(x)); err == nil && len(j) >= 2 {
				add(j[1 : len(j)-1])
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if enc.Encode(string(x)) == nil {
				if j := bytes.TrimRight(buf.Bytes(), "\n"); len(j) >= 2 {
					add(bytes.Clone(j[1 : len(j)-1]))
				}
			}
			clear(buf.Bytes())
		}
		for _, x := range vals {
			clear(x)
		}
	}
	return out
}
