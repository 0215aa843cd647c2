package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/tools/client"
	"github.com/mcpgw/mcpgw/tools/demoapi"
)

// Demo names.
const (
	DemoAgent  = "demo-agent"
	DemoUser   = "demo-user"
	DemoTool   = "send_message"
	DemoSecret = "demo-messages-key"
	DemoScheme = "ApiKeyAuth"
)

// Client returns an operator API client authenticated with the admin token.
func (s *Stack) Client() (*client.Client, error) {
	return client.New(client.Config{BaseURL: s.EdgeURL, Token: s.AdminToken})
}

// retry runs f until it succeeds, a non-retryable error comes back, or 60 s
// pass: services may still be replaying CONTROL right after start.
func retry(ctx context.Context, what string, f func() error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var ae *client.APIError
		retryable := !errors.As(err, &ae) || ae.Status == http.StatusServiceUnavailable || ae.Status >= 500 && ae.Status != http.StatusNotImplemented
		if !retryable || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// seed creates the demo once: the demo API imported, approved with its
// loopback host, send_message selected, its key stored and bound, a grant
// for the demo agent and an agent key kept in StateDir/demo-agent.key.
func (s *Stack) seed(ctx context.Context) error {
	keyPath := s.path(fileDemoKey)
	if s.state.Demo.Seeded {
		v, err := bus.ReadSecretFile(keyPath)
		if err != nil {
			return fmt.Errorf("demo agent key: %w", err)
		}
		s.AgentKey = v
		s.Secrets["demo agent key"] = v
		return nil
	}
	c, err := s.Client()
	if err != nil {
		return err
	}
	host := "127.0.0.1:" + strconv.Itoa(s.state.Ports.DemoAPI)
	st := &s.state.Demo
	if st.SourceID == "" {
		var res *client.ImportResult
		err := retry(ctx, "import the demo API", func() (err error) {
			res, err = c.Import(ctx, Tenant, "Demo Messages API", "", bytes.NewReader(demoapi.OpenAPI(s.DemoURL)))
			return err
		})
		if err != nil {
			return err
		}
		st.SourceID = res.SourceID
		if err := retry(ctx, "approve", func() error {
			_, err := c.Approve(ctx, Tenant, res.SourceID, res.Version, []string{host}, []string{"127.0.0.1/32"})
			return err
		}); err != nil {
			return err
		}
		if err := retry(ctx, "select", func() error {
			_, err := c.Select(ctx, Tenant, res.SourceID, []string{DemoTool})
			return err
		}); err != nil {
			return err
		}
		if err := s.saveState(); err != nil {
			return err
		}
	}
	if st.BindingID == "" {
		var ref string
		if err := retry(ctx, "store the demo API key", func() (err error) {
			ref, err = c.PutSecret(ctx, Tenant, DemoSecret, s.Secrets["demo api key"])
			return err
		}); err != nil {
			return err
		}
		if err := retry(ctx, "bind the demo API key", func() (err error) {
			st.BindingID, err = c.CreateBinding(ctx, Tenant, client.Binding{
				Name: "demo messages key", Strategy: "api_key", Placement: client.Placement{In: "header", Name: "X-API-Key"},
				SecretRef: ref, Hosts: []string{host}, Environment: s.cfg.Environment, SourceID: st.SourceID, Scheme: DemoScheme,
			})
			return err
		}); err != nil {
			return err
		}
		if err := s.saveState(); err != nil {
			return err
		}
	}
	if st.GrantID == "" {
		if err := retry(ctx, "grant", func() (err error) {
			st.GrantID, err = c.AddGrant(ctx, Tenant, DemoTool, "agent", DemoAgent)
			return err
		}); err != nil {
			return err
		}
		if err := s.saveState(); err != nil {
			return err
		}
	}
	var key *client.AgentKey
	if err := retry(ctx, "issue the demo agent key", func() (err error) {
		key, err = c.CreateAgentKey(ctx, Tenant, DemoAgent, client.AgentKeyRequest{User: DemoUser, Environment: s.cfg.Environment, Surface: "mcp"})
		return err
	}); err != nil {
		return err
	}
	if err := secret.WriteFile(keyPath, key.Key); err != nil {
		return fmt.Errorf("save the demo agent key: %w", err)
	}
	s.AgentKey = key.Key
	s.Secrets["demo agent key"] = key.Key
	st.KeyID, st.Seeded = key.KeyID, true
	return s.saveState()
}

// DemoSourceID is the demo source's ID; DemoBindingID its binding's.
func (s *Stack) DemoSourceID() string  { return s.state.Demo.SourceID }
func (s *Stack) DemoBindingID() string { return s.state.Demo.BindingID }
