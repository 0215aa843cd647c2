package mcp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
	"github.com/mcpgw/mcpgw/services/edge/internal/limit"
)

// fakeBus answers authenticate for any credential and nothing else.
type fakeBus struct{ keys *testenv.Keys }

func (f fakeBus) Call(_ context.Context, verb bus.Verb, _, reply proto.Message) error {
	if verb.Subject() != bus.PolicyAuthenticate.Subject() {
		return errors.New("unexpected verb " + verb.Name)
	}
	now := time.Now()
	sc, err := reqctx.Sign(f.keys.ID[bus.Policy], &commonv1.Context{Tenant: "t1", IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute))})
	if err != nil {
		return err
	}
	reply.(*rpcv1.AuthenticateReply).Context = sc
	return nil
}

type discardAudit struct{}

func (discardAudit) PublishAudit(context.Context, bus.AuditKind, bus.Message) (bus.Appended, error) {
	return bus.Appended{}, nil
}

func newTestHandler(t *testing.T, perCredential int) *Handler {
	t.Helper()
	keys := testenv.NewKeys(t)
	caller := fakeBus{keys: keys}
	auth, err := authn.New(authn.Config{Caller: caller, Keyring: keys.Keyring})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limit.New(limit.Config{Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	gate, err := ingress.NewGate(ingress.GateConfig{Authenticator: auth, Limiter: lim, Auditor: discardAudit{}, ResourceMetadataURL: "http://127.0.0.1/.well-known/oauth-protected-resource"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Gate: gate, Caller: caller, MaxSessionsPerCredential: perCredential})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func initialize(t *testing.T, h *Handler, credential string) string {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	r := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+credential)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	id := w.Header().Get(mcpserver.HeaderKeySessionID)
	if w.Code != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d %s", w.Code, w.Body)
	}
	if _, err := h.sessions.Validate(id); err != nil {
		t.Fatal("session advertised before it was registered")
	}
	return id
}

func TestReplacedSessionIsForgottenEverywhere(t *testing.T) {
	h := newTestHandler(t, 1)
	first := initialize(t, h, "cred")
	second := initialize(t, h, "cred")
	if first == second {
		t.Fatal("same session twice")
	}
	if _, err := h.sessions.Validate(first); err == nil {
		t.Fatal("replaced session still valid")
	}
	err := h.server.SendNotificationToSpecificClient(first, mcpgo.MethodNotificationToolsListChanged, nil)
	if !errors.Is(err, mcpserver.ErrSessionNotFound) {
		t.Fatalf("mcp-go still knows the replaced session: %v", err)
	}
	if h.sessions.count() != 1 {
		t.Fatalf("%d sessions", h.sessions.count())
	}
}
