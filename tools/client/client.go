// Package client is the Go client of mcpgw's operator API (/api/v1), used by
// the mcpgw CLI, the local stack launcher and end-to-end tests. It seals
// upstream secrets to the credential broker's pinned public key before they
// leave the operator's machine, so the edge never sees them in clear. The
// admin token is held in a secret.Value and never printed.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// Config configures a Client.
type Config struct {
	// BaseURL of the edge, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is the operator's bearer token.
	Token secret.Value
	// HTTP defaults to a client with a 60 s timeout and no redirects.
	HTTP *http.Client
	// BrokerKey is the pinned sealing key of the credential broker. When nil,
	// PutSecret fetches the key from the server and requires it to match
	// BrokerKeyFingerprint (if set).
	BrokerKey            *seal.PublicKey
	BrokerKeyFingerprint string
}

// Client calls the operator API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token secret.Value
	http  *http.Client
	cfg   Config
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("client: base URL must be http(s)://host[:port]")
	}
	if cfg.Token.IsZero() {
		return nil, errors.New("client: a token is required")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{base: u, token: cfg.Token, http: cfg.HTTP, cfg: cfg}, nil
}

// APIError is an error the server answered with.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error formats the status, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string, out any) error {
	// path is already escaped (see tenantPath): set it as the raw path so
	// that its escapes are kept, not escaped a second time.
	u := *c.base
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	u.Path = p
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+string(c.token.Reveal()))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error.Message == "" {
			e.Error.Message = http.StatusText(resp.StatusCode)
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, method, path, nil, body, "application/json", out)
}

func tenantPath(tenant string, parts ...string) string {
	p := "/api/v1/tenants/" + url.PathEscape(tenant)
	for _, x := range parts {
		p += "/" + url.PathEscape(x)
	}
	return p
}

// ImportResult is the answer to an import.
type ImportResult struct {
	SourceID string          `json:"source_id"`
	Version  uint32          `json:"version"`
	Review   json.RawMessage `json:"review"`
}

// Import uploads a description (streamed) as a new source, or as a new
// version of sourceID when it is set.
func (c *Client) Import(ctx context.Context, tenant, name, sourceID string, doc io.Reader) (*ImportResult, error) {
	q := url.Values{"name": {name}}
	if sourceID != "" {
		q.Set("source_id", sourceID)
	}
	var out ImportResult
	if err := c.do(ctx, http.MethodPost, tenantPath(tenant, "sources"), q, doc, "application/octet-stream", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImportURL asks the server to fetch a description from rawURL and import
// it, as a new source or (with sourceID) a new version of one. allowHosts
// are the host patterns the fetch may connect to (the URL's host must match
// one of them); allowPrefixes are CIDR prefixes that let it reach
// loopback or private addresses. Remote $refs in the description are
// refused by the server even when allowHosts names their host. rawURL is
// sent in the request's query string; errors never repeat it.
func (c *Client) ImportURL(ctx context.Context, tenant, name, sourceID, rawURL string, allowHosts, allowPrefixes []string) (*ImportResult, error) {
	q := url.Values{"name": {name}, "url": {rawURL}}
	if sourceID != "" {
		q.Set("source_id", sourceID)
	}
	if len(allowHosts) > 0 {
		q["allow_host"] = allowHosts
	}
	if len(allowPrefixes) > 0 {
		q["allow_prefix"] = allowPrefixes
	}
	var out ImportResult
	if err := c.do(ctx, http.MethodPost, tenantPath(tenant, "sources"), q, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuthMapping is the kind (apiKey, http-bearer or http-basic) and
// placement an operator gives an auth scheme that no binding strategy
// serves, or whose kind is unknown. An apiKey names In (header, query or
// cookie) and Param; bearer and basic go in the Authorization header.
type AuthMapping struct {
	Kind  string `json:"kind"`
	In    string `json:"in,omitempty"`
	Param string `json:"param,omitempty"`
}

// MapAuth maps the auth scheme named scheme of a source: the server
// proposes a new version of the source whose tools carry the mapped
// requirement, answered like an import. Agents see nothing of it until the
// version is approved.
func (c *Client) MapAuth(ctx context.Context, tenant, sourceID, scheme string, m AuthMapping) (*ImportResult, error) {
	var out ImportResult
	if err := c.doJSON(ctx, http.MethodPost, tenantPath(tenant, "sources", sourceID, "auth", scheme), m, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CommandResult is the answer to a command that changed an object: its ID
// and the aggregate's revision after the command.
type CommandResult struct {
	ID       string `json:"id"`
	Revision uint64 `json:"revision"`
}

// Approve approves a source version and confirms its host allowlist (empty:
// the hosts the import proposed).
func (c *Client) Approve(ctx context.Context, tenant, sourceID string, version uint32, hosts, prefixes []string) (*CommandResult, error) {
	var out CommandResult
	in := map[string]any{"allowed_hosts": hosts, "allowed_prefixes": prefixes}
	err := c.doJSON(ctx, http.MethodPost, tenantPath(tenant, "sources", sourceID, "versions", strconv.FormatUint(uint64(version), 10), "approve"), in, &out)
	return &out, err
}

// Select sets the enabled tools of a source.
func (c *Client) Select(ctx context.Context, tenant, sourceID string, tools []string) (*CommandResult, error) {
	var out CommandResult
	err := c.doJSON(ctx, http.MethodPut, tenantPath(tenant, "sources", sourceID, "selection"), map[string]any{"tools": tools}, &out)
	return &out, err
}

// Keys are the server's public sealing keys (base64url) and fingerprints.
// On the wire: {"broker": {"key", "fingerprint"}, "policy": {…}}.
type Keys struct {
	Broker            string
	BrokerFingerprint string
	Policy            string
	PolicyFingerprint string
}

type keyJSON struct {
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
}

type keysJSON struct {
	Broker keyJSON `json:"broker"`
	Policy keyJSON `json:"policy"`
}

// MarshalJSON encodes the wire form.
func (k Keys) MarshalJSON() ([]byte, error) {
	return json.Marshal(keysJSON{Broker: keyJSON{k.Broker, k.BrokerFingerprint}, Policy: keyJSON{k.Policy, k.PolicyFingerprint}})
}

// UnmarshalJSON decodes the wire form.
func (k *Keys) UnmarshalJSON(b []byte) error {
	var w keysJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*k = Keys{Broker: w.Broker.Key, BrokerFingerprint: w.Broker.Fingerprint, Policy: w.Policy.Key, PolicyFingerprint: w.Policy.Fingerprint}
	return nil
}

// Keys fetches the public sealing keys.
func (c *Client) Keys(ctx context.Context) (*Keys, error) {
	var out Keys
	if err := c.doJSON(ctx, http.MethodGet, "/api/v1/keys", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) brokerKey(ctx context.Context) (*seal.PublicKey, error) {
	if c.cfg.BrokerKey != nil {
		return c.cfg.BrokerKey, nil
	}
	k, err := c.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch broker key: %w", err)
	}
	pub, err := seal.ParsePublicKey(k.Broker)
	if err != nil {
		return nil, fmt.Errorf("broker key: %w", err)
	}
	if c.cfg.BrokerKeyFingerprint != "" && pub.Fingerprint() != c.cfg.BrokerKeyFingerprint {
		return nil, fmt.Errorf("broker key fingerprint %s does not match the pinned %s", pub.Fingerprint(), c.cfg.BrokerKeyFingerprint)
	}
	return pub, nil
}

// PutSecret seals value to the broker's key and stores it under name. It
// returns the secret reference; the value is never readable back.
func (c *Client) PutSecret(ctx context.Context, tenant, name string, value secret.Value) (string, error) {
	pub, err := c.brokerKey(ctx)
	if err != nil {
		return "", err
	}
	plain := value.Reveal()
	sealed, err := seal.Seal(pub, []byte(seal.InfoSecret), seal.SecretAAD(tenant, name), plain)
	clear(plain)
	if err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	var out struct {
		SecretRef string `json:"secret_ref"`
	}
	err = c.doJSON(ctx, http.MethodPost, tenantPath(tenant, "secrets"),
		map[string]any{"name": name, "sealed_value": base64.StdEncoding.EncodeToString(sealed)}, &out)
	return out.SecretRef, err
}

// Placement says where a binding puts the credential.
type Placement struct {
	In     string `json:"in,omitempty"`
	Name   string `json:"name,omitempty"`
	Prefix string `json:"prefix,omitempty"`
}

// Binding is a credential binding to create.
type Binding struct {
	Name        string    `json:"name"`
	Strategy    string    `json:"strategy"`
	Placement   Placement `json:"placement"`
	SecretRef   string    `json:"secret_ref"`
	Hosts       []string  `json:"hosts"`
	Environment string    `json:"environment,omitempty"`
	SourceID    string    `json:"source_id"`
	Scheme      string    `json:"scheme"`
}

// CreateBinding creates a credential binding and returns its ID.
func (c *Client) CreateBinding(ctx context.Context, tenant string, b Binding) (string, error) {
	var out struct {
		BindingID string `json:"binding_id"`
	}
	err := c.doJSON(ctx, http.MethodPost, tenantPath(tenant, "bindings"), b, &out)
	return out.BindingID, err
}

// AddGrant lets an agent or user invoke a tool and returns the grant ID.
func (c *Client) AddGrant(ctx context.Context, tenant, tool, subjectType, subjectID string) (string, error) {
	var out struct {
		GrantID string `json:"grant_id"`
	}
	err := c.doJSON(ctx, http.MethodPost, tenantPath(tenant, "grants"),
		map[string]any{"tool": tool, "subject_type": subjectType, "subject_id": subjectID}, &out)
	return out.GrantID, err
}

// RevokeGrant removes a grant.
func (c *Client) RevokeGrant(ctx context.Context, tenant, grantID string) error {
	return c.doJSON(ctx, http.MethodDelete, tenantPath(tenant, "grants", grantID), nil, nil)
}

// AgentKeyRequest describes the attributes an agent key is issued with.
type AgentKeyRequest struct {
	User             string `json:"user,omitempty"`
	Environment      string `json:"environment,omitempty"`
	Surface          string `json:"surface,omitempty"`
	Workload         string `json:"workload,omitempty"`
	ExpiresInSeconds int64  `json:"expires_in_seconds,omitempty"`
}

// AgentKey is a newly issued key: Key is shown this once.
type AgentKey struct {
	KeyID  string       `json:"key_id"`
	Prefix string       `json:"prefix"`
	Key    secret.Value `json:"-"`
}

// CreateAgentKey issues an agent key. The key is returned once, as a
// secret.Value.
func (c *Client) CreateAgentKey(ctx context.Context, tenant, agent string, r AgentKeyRequest) (*AgentKey, error) {
	var out struct {
		KeyID  string `json:"key_id"`
		Key    string `json:"key"`
		Prefix string `json:"prefix"`
	}
	if err := c.doJSON(ctx, http.MethodPost, tenantPath(tenant, "agents", agent, "keys"), r, &out); err != nil {
		return nil, err
	}
	k := &AgentKey{KeyID: out.KeyID, Prefix: out.Prefix, Key: secret.New([]byte(out.Key))}
	out.Key = ""
	return k, nil
}

// RevokeAgentKey revokes an agent key.
func (c *Client) RevokeAgentKey(ctx context.Context, tenant, agent, keyID string) error {
	return c.doJSON(ctx, http.MethodDelete, tenantPath(tenant, "agents", agent, "keys", keyID), nil, nil)
}

// AuditRow is one audit row.
type AuditRow map[string]any

// AuditQuery selects audit rows: one of RequestID or BindingID.
type AuditQuery struct {
	RequestID, BindingID string
	Limit                int
}

// Audit queries the audit trail of a tenant.
func (c *Client) Audit(ctx context.Context, tenant string, q AuditQuery) ([]AuditRow, error) {
	v := url.Values{}
	if q.RequestID != "" {
		v.Set("request_id", q.RequestID)
	}
	if q.BindingID != "" {
		v.Set("binding_id", q.BindingID)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Rows []AuditRow `json:"rows"`
	}
	if err := c.do(ctx, http.MethodGet, tenantPath(tenant, "audit"), v, nil, "", &out); err != nil {
		return nil, err
	}
	return out.Rows, nil
}

// SlotBinding is an active binding filling a slot.
type SlotBinding struct {
	BindingID   string   `json:"binding_id"`
	Name        string   `json:"name,omitempty"`
	Environment string   `json:"environment,omitempty"`
	Hosts       []string `json:"hosts,omitempty"`
}

// Slot is one auth scheme a source's tools need bound.
type Slot struct {
	Scheme        string        `json:"scheme"`
	Kind          string        `json:"kind"`
	In            string        `json:"in,omitempty"`
	Param         string        `json:"param,omitempty"`
	Inferred      bool          `json:"inferred,omitempty"`
	Tools         []string      `json:"tools,omitempty"`
	Strategy      string        `json:"strategy,omitempty"`
	BlockedReason string        `json:"blocked_reason,omitempty"`
	Bindings      []SlotBinding `json:"bindings,omitempty"`
}

// Slots is the answer to a slots query.
type Slots struct {
	Version  uint32 `json:"version"`
	Approved bool   `json:"approved,omitempty"`
	Slots    []Slot `json:"slots"`
}

// Slots lists the binding slots of a source: what must be bound before its
// tools can run.
func (c *Client) Slots(ctx context.Context, tenant, sourceID string) (*Slots, error) {
	var out Slots
	if err := c.doJSON(ctx, http.MethodGet, tenantPath(tenant, "sources", sourceID, "slots"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
