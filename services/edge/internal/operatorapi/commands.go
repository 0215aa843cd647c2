package operatorapi

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

// Agent keys: "mgw_" and 32 random bytes, base64url; policy is told their
// SHA-256 and the first KeyPrefixLen characters (not enough to use them).
const (
	KeyPrefix    = "mgw_"
	KeyPrefixLen = 12
	// MaxKeyLifetime bounds expires_in_seconds.
	MaxKeyLifetime = 5 * 365 * 24 * time.Hour
)

// maxNameLen bounds free-text names from operators.
const maxNameLen = 200

// CommandResult answers commands that change an existing object.
type CommandResult struct {
	ID string `json:"id"`
	// Revision is the object's aggregate version after the command.
	Revision uint64 `json:"revision"`
}

// ImportResult answers an upload.
type ImportResult struct {
	SourceID string          `json:"source_id"`
	Version  uint32          `json:"version"`
	Review   json.RawMessage `json:"review"`
}

// Bounds of an import from a URL, checked again by the importer.
const (
	maxImportURL   = 8 << 10
	maxFetchAllows = 64
)

// upload streams a description into the upload bucket and imports it; with
// a url parameter and no body, it asks the importer to fetch the
// description from that URL instead (see importURL).
func (a *API) upload(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	name := strings.TrimSpace(q.Get("name"))
	if err := checkName("name", name); err != nil {
		return err
	}
	sourceID := q.Get("source_id")
	if sourceID != "" {
		if err := bus.CheckToken("source_id", sourceID); err != nil {
			return err
		}
	}
	if q.Has("url") {
		return a.importURL(w, r, c, name, sourceID, q)
	}
	if q.Has("allow_host") || q.Has("allow_prefix") {
		return errcode.New(errcode.InvalidArgument, "allow_host and allow_prefix need a url")
	}
	// Refuse an actor who may not import at all before accepting a body of
	// up to UploadLimit bytes; the real command is authorized again once the
	// upload's digest is known.
	if err := a.authorize(r.Context(), c, &rpcv1.ImportSource{Tenant: c.tenant, Name: name, SourceId: sourceID}); err != nil {
		return err
	}
	if r.ContentLength > a.uploadLimit {
		return errcode.Errorf(errcode.TooLarge, "description exceeds %d bytes", a.uploadLimit)
	}
	object := c.tenant + "/" + bus.NewID("")
	sum := sha256.New()
	body := io.TeeReader(http.MaxBytesReader(w, r.Body, a.uploadLimit), sum)
	pctx, cancel := c.ctx(r.Context(), a.importTimeout)
	info, err := a.uploads.Put(pctx, jetstream.ObjectMeta{Name: object, Description: "uploaded description"}, body)
	cancel()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errcode.Errorf(errcode.TooLarge, "description exceeds %d bytes", a.uploadLimit)
		}
		return errcode.Wrap(errcode.Unavailable, "upload could not be stored", err)
	}
	if info.Size == 0 {
		return errcode.New(errcode.InvalidArgument, "empty description")
	}
	cmd := &rpcv1.ImportSource{
		Tenant: c.tenant, Name: name, SourceId: sourceID,
		Upload: &controlv1.DocumentRef{Bucket: bus.BucketUploads, Object: object, Sha256: hex.EncodeToString(sum.Sum(nil)), Size: info.Size},
	}
	return a.runImport(w, r, c, cmd)
}

// importURL asks the importer to fetch a description from the url
// parameter, under the egress allowlist of the allow_host and allow_prefix
// parameters (the URL's host must be among the hosts), and imports it. The
// request must have no body. Errors never repeat the URL: it may carry a
// token in its query string.
func (a *API) importURL(w http.ResponseWriter, r *http.Request, c *call, name, sourceID string, q url.Values) error {
	if r.ContentLength > 0 {
		return errcode.New(errcode.InvalidArgument, "send either a body or a url, not both")
	}
	if r.ContentLength < 0 {
		var one [1]byte
		if n, _ := io.ReadFull(http.MaxBytesReader(w, r.Body, 1), one[:]); n > 0 {
			return errcode.New(errcode.InvalidArgument, "send either a body or a url, not both")
		}
	}
	if len(q["url"]) != 1 {
		return errcode.New(errcode.InvalidArgument, "name one url")
	}
	raw := q.Get("url")
	if len(raw) > maxImportURL {
		return errcode.Errorf(errcode.InvalidArgument, "url longer than %d bytes", maxImportURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return errcode.New(errcode.InvalidArgument, "url must be an absolute http or https URL")
	}
	if u.User != nil {
		return errcode.New(errcode.InvalidArgument, "url must not carry credentials (user:password@)")
	}
	hosts, prefixes := q["allow_host"], q["allow_prefix"]
	if len(hosts) > maxFetchAllows || len(prefixes) > maxFetchAllows {
		return errcode.Errorf(errcode.InvalidArgument, "at most %d allow_host and %d allow_prefix values", maxFetchAllows, maxFetchAllows)
	}
	for _, h := range hosts {
		if h == "" || len(h) > 262 || strings.IndexFunc(h, unicode.IsSpace) >= 0 || !utf8.ValidString(h) {
			return errcode.New(errcode.InvalidArgument, "invalid allow_host")
		}
	}
	for _, p := range prefixes {
		if _, err := netip.ParsePrefix(p); err != nil {
			return errcode.New(errcode.InvalidArgument, "invalid allow_prefix: a CIDR prefix such as 10.0.0.0/8")
		}
	}
	cmd := &rpcv1.ImportSource{Tenant: c.tenant, Name: name, SourceId: sourceID, Url: raw,
		FetchAllowedHosts: hosts, FetchAllowedPrefixes: prefixes}
	return a.runImport(w, r, c, cmd)
}

// runImport authorizes cmd, sends it to the importer and writes its result.
func (a *API) runImport(w http.ResponseWriter, r *http.Request, c *call, cmd *rpcv1.ImportSource) error {
	if err := a.authorize(r.Context(), c, cmd); err != nil {
		return err
	}
	var reply rpcv1.ImportReply
	if err := a.send(r.Context(), c, bus.ImporterImport, cmd, &reply, a.importTimeout); err != nil {
		return err
	}
	return writeImport(w, &reply)
}

// writeImport writes an importer's reply: its error, or 201 with the new
// version and its review.
func writeImport(w http.ResponseWriter, reply *rpcv1.ImportReply) error {
	if err := ingress.ReplyError(reply.GetError()); err != nil {
		return err
	}
	review := json.RawMessage(reply.GetReview())
	if len(review) == 0 || !json.Valid(review) {
		review = json.RawMessage("null")
	}
	ingress.WriteJSON(w, http.StatusCreated, ImportResult{SourceID: reply.GetSourceId(), Version: reply.GetVersion(), Review: review})
	return nil
}

// MapAuthRequest is the body of an auth mapping: the kind (apiKey,
// http-bearer or http-basic) and placement an operator gives a scheme of a
// source that no binding strategy serves, or whose kind is unknown.
type MapAuthRequest struct {
	Kind  string `json:"kind"`
	In    string `json:"in,omitempty"`
	Param string `json:"param,omitempty"`
}

// maxSchemeName bounds a scheme name in a path (an inferred scheme's name
// carries its parameter's).
const maxSchemeName = 512

// mapAuth asks the importer to propose a new version of a source in which
// the scheme named in the path has the body's kind and placement; it
// answers 201 with the new version and its review, like an import. The
// importer validates the kind and placement.
func (a *API) mapAuth(w http.ResponseWriter, r *http.Request, c *call) error {
	sourceID := r.PathValue("id")
	if err := bus.CheckToken("source id", sourceID); err != nil {
		return err
	}
	scheme := r.PathValue("scheme")
	if scheme == "" || len(scheme) > maxSchemeName || !utf8.ValidString(scheme) || strings.IndexFunc(scheme, unicode.IsControl) >= 0 {
		return errcode.New(errcode.InvalidArgument, "invalid auth scheme name")
	}
	var body MapAuthRequest
	if err := ingress.DecodeJSON(r, a.jsonLimit, &body); err != nil {
		return err
	}
	if body.Kind == "" {
		return errcode.New(errcode.InvalidArgument, "kind is required")
	}
	cmd := &rpcv1.MapAuth{Tenant: c.tenant, SourceId: sourceID, Scheme: scheme, Kind: body.Kind, In: body.In, Param: body.Param}
	if err := a.authorize(r.Context(), c, cmd); err != nil {
		return err
	}
	var reply rpcv1.ImportReply
	if err := a.send(r.Context(), c, bus.ImporterMapAuth, cmd, &reply, a.importTimeout); err != nil {
		return err
	}
	return writeImport(w, &reply)
}

// ApproveRequest is the body of an approval.
type ApproveRequest struct {
	AllowedHosts    []string `json:"allowed_hosts,omitempty"`
	AllowedPrefixes []string `json:"allowed_prefixes,omitempty"`
}

func (a *API) approve(w http.ResponseWriter, r *http.Request, c *call) error {
	sourceID := r.PathValue("id")
	if err := bus.CheckToken("source id", sourceID); err != nil {
		return err
	}
	v, err := strconv.ParseUint(r.PathValue("v"), 10, 32)
	if err != nil || v == 0 {
		return errcode.New(errcode.InvalidArgument, "version must be a positive integer")
	}
	var body ApproveRequest
	if err := a.decodeOptional(r, &body); err != nil {
		return err
	}
	reply, err := a.command(r.Context(), c, bus.PolicyApprove, &rpcv1.ApproveSourceVersion{
		Tenant: c.tenant, SourceId: sourceID, Version: uint32(v),
		AllowedHosts: body.AllowedHosts, AllowedPrefixes: body.AllowedPrefixes,
	})
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusOK, CommandResult{ID: orDefault(reply.GetId(), sourceID), Revision: reply.GetVersion()})
	return nil
}

// SelectionRequest is the body of a selection: the enabled tools of a
// source.
type SelectionRequest struct {
	Tools []string `json:"tools"`
}

func (a *API) selection(w http.ResponseWriter, r *http.Request, c *call) error {
	sourceID := r.PathValue("id")
	if err := bus.CheckToken("source id", sourceID); err != nil {
		return err
	}
	var body SelectionRequest
	if err := ingress.DecodeJSON(r, a.jsonLimit, &body); err != nil {
		return err
	}
	if body.Tools == nil {
		return errcode.New(errcode.InvalidArgument, "tools is required (use [] to select none)")
	}
	reply, err := a.command(r.Context(), c, bus.PolicySelect, &rpcv1.SelectOperations{Tenant: c.tenant, SourceId: sourceID, Tools: body.Tools})
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusOK, CommandResult{ID: orDefault(reply.GetId(), sourceID), Revision: reply.GetVersion()})
	return nil
}

// SecretRequest is the body of a secret: its value sealed by the client to
// the broker's public key (seal.InfoSecret, AAD seal.SecretAAD(tenant,
// name)), base64. The edge never sees the value in clear.
type SecretRequest struct {
	Name        string `json:"name"`
	SealedValue string `json:"sealed_value"`
}

// SecretResult answers a secret write.
type SecretResult struct {
	SecretRef string `json:"secret_ref"`
}

func (a *API) putSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	var body SecretRequest
	if err := ingress.DecodeJSON(r, a.jsonLimit, &body); err != nil {
		return err
	}
	if err := checkName("name", body.Name); err != nil {
		return err
	}
	sealed, err := decodeBase64(body.SealedValue)
	if err != nil || len(sealed) < seal.Overhead {
		return errcode.New(errcode.InvalidArgument, "sealed_value must be a base64 sealed message")
	}
	reply, err := a.command(r.Context(), c, bus.BrokerPutSecret, &rpcv1.PutSecret{Tenant: c.tenant, Name: body.Name, SealedValue: sealed})
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusCreated, SecretResult{SecretRef: reply.GetId()})
	return nil
}

// Placement says where a binding puts its credential.
type Placement struct {
	In     string `json:"in"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
}

// BindingRequest is the body of a credential binding.
type BindingRequest struct {
	Name        string     `json:"name"`
	Strategy    string     `json:"strategy"`
	Placement   *Placement `json:"placement,omitempty"`
	SecretRef   string     `json:"secret_ref"`
	Hosts       []string   `json:"hosts"`
	Environment string     `json:"environment"`
	SourceID    string     `json:"source_id"`
	Scheme      string     `json:"scheme"`
}

// BindingResult answers a binding.
type BindingResult struct {
	BindingID string `json:"binding_id"`
}

func (a *API) createBinding(w http.ResponseWriter, r *http.Request, c *call) error {
	var body BindingRequest
	if err := ingress.DecodeJSON(r, a.jsonLimit, &body); err != nil {
		return err
	}
	if err := checkName("name", body.Name); err != nil {
		return err
	}
	cmd := &rpcv1.CreateBinding{
		Tenant: c.tenant, Name: body.Name, Strategy: body.Strategy, SecretRef: body.SecretRef,
		Hosts: body.Hosts, Environment: body.Environment, SourceId: body.SourceID, Scheme: body.Scheme,
	}
	if body.Placement != nil {
		cmd.Placement = &controlv1.Placement{In: body.Placement.In, Name: body.Placement.Name, Prefix: body.Placement.Prefix}
	}
	reply, err := a.command(r.Context(), c, bus.BrokerCreate, cmd)
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusCreated, BindingResult{BindingID: reply.GetId()})
	return nil
}

// GrantRequest is the body of a grant.
type GrantRequest struct {
	Tool        string `json:"tool"`
	SubjectType string `json:"subject_type"`
	SubjectID   string `json:"subject_id"`
}

// GrantResult answers a grant.
type GrantResult struct {
	GrantID string `json:"grant_id"`
}

func (a *API) addGrant(w http.ResponseWriter, r *http.Request, c *call) error {
	var body GrantRequest
	if err := ingress.DecodeJSON(r, a.jsonLimit, &body); err != nil {
		return err
	}
	if body.Tool == "" || body.SubjectType == "" || body.SubjectID == "" {
		return errcode.New(errcode.InvalidArgument, "tool, subject_type and subject_id are required")
	}
	reply, err := a.command(r.Context(), c, bus.PolicyGrant, &rpcv1.AddGrant{
		Tenant: c.tenant, Tool: body.Tool, SubjectType: body.SubjectType, SubjectId: body.SubjectID,
	})
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusCreated, GrantResult{GrantID: reply.GetId()})
	return nil
}

func (a *API) revokeGrant(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if err := bus.CheckToken("grant id", id); err != nil {
		return err
	}
	reply, err := a.command(r.Context(), c, bus.PolicyRevokeGrant, &rpcv1.RevokeGrant{Tenant: c.tenant, GrantId: id})
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusOK, CommandResult{ID: orDefault(reply.GetId(), id), Revision: reply.GetVersion()})
	return nil
}

// KeyRequest is the body of an agent key: the attributes the key is issued
// with (policy asserts them on every use; the surface is the verified one).
type KeyRequest struct {
	User             string `json:"user"`
	Environment      string `json:"environment"`
	Surface          string `json:"surface"`
	Workload         string `json:"workload"`
	ExpiresInSeconds int64  `json:"expires_in_seconds,omitempty"`
}

// KeyResult is the only response that ever contains an agent key.
type KeyResult struct {
	KeyID  string `json:"key_id"`
	Key    string `json:"key"`
	Prefix string `json:"prefix"`
}

func (a *API) issueKey(w http.ResponseWriter, r *http.Request, c *call) error {
	agent := r.PathValue("agent")
	if err := bus.CheckToken("agent id", agent); err != nil {
		return err
	}
	var body KeyRequest
	if err := ingress.DecodeJSON(r, a.jsonLimit, &body); err != nil {
		return err
	}
	if body.ExpiresInSeconds < 0 || time.Duration(body.ExpiresInSeconds)*time.Second > MaxKeyLifetime {
		return errcode.New(errcode.InvalidArgument, "expires_in_seconds must be between 0 (no expiry) and five years")
	}
	key, err := NewAgentKey()
	if err != nil {
		return err
	}
	hash := sha256.Sum256([]byte(key))
	cmd := &rpcv1.IssueAgentKey{
		Tenant: c.tenant, AgentId: agent, User: body.User, Environment: body.Environment,
		Surface: body.Surface, Workload: body.Workload, KeyHash: hash[:], Prefix: key[:KeyPrefixLen],
	}
	if body.ExpiresInSeconds > 0 {
		cmd.ExpiresAt = timestamppb.New(a.now().Add(time.Duration(body.ExpiresInSeconds) * time.Second))
	}
	reply, err := a.command(r.Context(), c, bus.PolicyIssueKey, cmd)
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusCreated, KeyResult{KeyID: reply.GetId(), Key: key, Prefix: key[:KeyPrefixLen]})
	return nil
}

// NewAgentKey returns a fresh agent key: KeyPrefix and 32 random bytes,
// unpadded base64url.
func NewAgentKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errcode.Wrap(errcode.Internal, "generate key", err)
	}
	k := KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	clear(b[:])
	return k, nil
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, c *call) error {
	agent, keyID := r.PathValue("agent"), r.PathValue("key")
	if err := bus.CheckToken("agent id", agent); err != nil {
		return err
	}
	if err := bus.CheckToken("key id", keyID); err != nil {
		return err
	}
	reply, err := a.command(r.Context(), c, bus.PolicyRevokeKey, &rpcv1.RevokeAgentKey{Tenant: c.tenant, KeyId: keyID})
	if err != nil {
		return err
	}
	ingress.WriteJSON(w, http.StatusOK, CommandResult{ID: orDefault(reply.GetId(), keyID), Revision: reply.GetVersion()})
	return nil
}

// Audit query bounds.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditResult answers an audit query: rows newest first, each in the
// protobuf JSON form of mcpgw.rpc.v1.AuditRow (field names as in the proto).
type AuditResult struct {
	Rows []json.RawMessage `json:"rows"`
}

func (a *API) audit(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	requestID, bindingID := q.Get("request_id"), q.Get("binding_id")
	if requestID != "" {
		if err := bus.CheckToken("request_id", requestID); err != nil {
			return err
		}
	}
	if bindingID != "" {
		if err := bus.CheckToken("binding_id", bindingID); err != nil {
			return err
		}
	}
	limit := uint64(DefaultAuditLimit)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 || n > MaxAuditLimit {
			return errcode.Errorf(errcode.InvalidArgument, "limit must be between 1 and %d", MaxAuditLimit)
		}
		limit = n
	}
	cmd := &rpcv1.QueryAudit{Tenant: c.tenant, RequestId: requestID, BindingId: bindingID, Limit: uint32(limit)}
	if err := a.authorize(r.Context(), c, cmd); err != nil {
		return err
	}
	var reply rpcv1.QueryAuditReply
	if err := a.send(r.Context(), c, bus.AuditQuery, cmd, &reply, a.timeout); err != nil {
		return err
	}
	if err := ingress.ReplyError(reply.GetError()); err != nil {
		return err
	}
	res := AuditResult{Rows: make([]json.RawMessage, 0, len(reply.GetRows()))}
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for _, row := range reply.GetRows() {
		b, err := opts.Marshal(row)
		if err != nil {
			return errcode.Wrap(errcode.Internal, "encode audit row", err)
		}
		res.Rows = append(res.Rows, b)
	}
	ingress.WriteJSON(w, http.StatusOK, res)
	return nil
}

// slots answers GET /api/v1/tenants/{t}/sources/{id}/slots with the
// protobuf JSON form of mcpgw.rpc.v1.ListSlotsReply (proto field names):
// the binding slots of the source's approved (or latest) version.
func (a *API) slots(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	if err := bus.CheckToken("source ID", id); err != nil {
		return err
	}
	cmd := &rpcv1.ListSlots{Tenant: c.tenant, SourceId: id}
	if err := a.authorize(r.Context(), c, cmd); err != nil {
		return err
	}
	var reply rpcv1.ListSlotsReply
	if err := a.send(r.Context(), c, bus.BrokerSlots, cmd, &reply, a.timeout); err != nil {
		return err
	}
	if err := ingress.ReplyError(reply.GetError()); err != nil {
		return err
	}
	reply.Error = nil
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(&reply)
	if err != nil {
		return errcode.Wrap(errcode.Internal, "encode slots", err)
	}
	ingress.WriteJSON(w, http.StatusOK, json.RawMessage(b))
	return nil
}

// SealingKey is one service's public HPKE key as the CLI pins it.
type SealingKey struct {
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
}

// SealingKeys answers GET /api/v1/keys.
type SealingKeys struct {
	Broker SealingKey `json:"broker"`
	Policy SealingKey `json:"policy"`
}

func (a *API) sealingKeys(w http.ResponseWriter, _ *http.Request, _ *call) error {
	var out SealingKeys
	for _, k := range []struct {
		s   bus.Service
		dst *SealingKey
	}{{bus.Broker, &out.Broker}, {bus.Policy, &out.Policy}} {
		raw, ok := a.keys.SealKey(k.s)
		if !ok {
			return errcode.Errorf(errcode.Unavailable, "no sealing key configured for %s", k.s)
		}
		pub, err := seal.ParsePublicKeyBytes(raw)
		if err != nil {
			return errcode.Wrap(errcode.Internal, "sealing key", err)
		}
		*k.dst = SealingKey{Key: pub.String(), Fingerprint: pub.Fingerprint()}
	}
	ingress.WriteJSON(w, http.StatusOK, out)
	return nil
}

// decodeOptional decodes a JSON body when there is one.
func (a *API) decodeOptional(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, a.jsonLimit+1))
	if err != nil {
		return errcode.Wrap(errcode.InvalidArgument, "unreadable request body", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return ingress.DecodeJSON(r, a.jsonLimit, v)
}

// checkName accepts printable UTF-8 text without surrounding spaces.
func checkName(field, s string) error {
	ok := s != "" && len(s) <= maxNameLen && utf8.ValidString(s) && strings.TrimSpace(s) == s
	for _, c := range s {
		if !unicode.IsPrint(c) {
			ok = false
		}
	}
	if !ok {
		return errcode.Errorf(errcode.InvalidArgument, "%s is required: printable text of at most %d bytes", field, maxNameLen)
	}
	return nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
