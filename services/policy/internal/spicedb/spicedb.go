// Package spicedb is policy's client of SpiceDB: it writes the schema,
// touches and deletes tool#invoker relationships, checks the invoke
// permission and looks up the tools a subject may invoke. Object IDs are
// "<tenant>/<id>", so no relationship or answer crosses tenants. Reads are
// at least as fresh as this client's latest write (fully consistent before
// any write). The preshared key is sent only over TLS, or in plaintext to a
// loopback address; it never appears in a log or error.
package spicedb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"io"
	"net"
	"strings"
	"sync"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/policy/internal/decide"
)

// Object types, relation and permission of the schema (deploy/spicedb).
const (
	TypeTool       = "tool"
	TypeAgent      = "agent"
	TypeUser       = "user"
	RelInvoker     = "invoker"
	PermInvoke     = "invoke"
	maxLookupItems = 10_000
)

// Subject is an agent or user of a tenant.
type Subject struct {
	// Type is TypeAgent or TypeUser.
	Type string
	ID   string
}

// Grant is one tool#invoker relationship.
type Grant struct {
	Tenant  string
	Tool    string
	Subject Subject
}

// ObjectID returns the SpiceDB object ID of id in tenant: "<tenant>/<id>".
func ObjectID(tenant, id string) string { return tenant + "/" + id }

// Dial connects to SpiceDB at addr ("host:port") with key as bearer token:
// in plaintext only when the host is a loopback address (or "localhost") or
// the caller allows plaintext explicitly (a private container network,
// never in production), over TLS with the system roots otherwise.
func Dial(addr string, key secret.Value, allowPlaintext bool) (*authzed.Client, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("spicedb address: %w", err)
	}
	if key.IsZero() {
		return nil, errors.New("spicedb: preshared key is empty")
	}
	var opts []grpc.DialOption
	loop := Loopback(host) || allowPlaintext
	if loop {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	}
	opts = append(opts, grpc.WithPerRPCCredentials(bearer{key: key, secure: !loop}))
	c, err := authzed.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("spicedb client: %w", err)
	}
	return c, nil
}

// Loopback reports whether host names the local machine: "localhost" or a
// loopback IP address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer sends the preshared key as "authorization: Bearer <key>". It
// redacts itself when printed.
type bearer struct {
	key    secret.Value
	secure bool
}

// GetRequestMetadata returns the authorization header.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	k := b.key.Reveal()
	defer clear(k)
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}

// RequireTransportSecurity is true unless the server is on loopback.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// String redacts the key.
func (b bearer) String() string { return "bearer(" + secret.Redacted + ")" }

// Client wraps an authzed client with policy's operations. It is safe for
// concurrent use.
type Client struct {
	c *authzed.Client

	mu    sync.Mutex
	token *v1.ZedToken
}

// New wraps c; the caller closes c.
func New(c *authzed.Client) (*Client, error) {
	if c == nil {
		return nil, errors.New("spicedb: client is required")
	}
	return &Client{c: c}, nil
}

func (c *Client) consistency() *v1.Consistency {
	c.mu.Lock()
	t := c.token
	c.mu.Unlock()
	if t == nil {
		return &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	}
	return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: t}}
}

func (c *Client) wrote(t *v1.ZedToken) {
	if t == nil {
		return
	}
	c.mu.Lock()
	c.token = t
	c.mu.Unlock()
}

// WriteSchema writes the schema.
func (c *Client) WriteSchema(ctx context.Context, schema string) error {
	resp, err := c.c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema})
	if err != nil {
		return fmt.Errorf("write schema: %w", err)
	}
	c.wrote(resp.GetWrittenAt())
	return nil
}

// HasSchema reports whether SpiceDB holds a schema. A memory datastore
// that restarted holds none.
func (c *Client) HasSchema(ctx context.Context) (bool, error) {
	_, err := c.c.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read schema: %w", err)
	}
	return true, nil
}

// Empty reports whether SpiceDB holds no tool relationship at all (the
// memory datastore after a restart). The schema must have been written.
func (c *Client) Empty(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
		Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: TypeTool},
		OptionalLimit:      1,
	})
	if err != nil {
		return false, fmt.Errorf("read relationships: %w", err)
	}
	_, err = stream.Recv()
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read relationships: %w", err)
	}
	return false, nil
}

func relationship(g Grant) *v1.Relationship {
	return &v1.Relationship{
		Resource: &v1.ObjectReference{ObjectType: TypeTool, ObjectId: ObjectID(g.Tenant, g.Tool)},
		Relation: RelInvoker,
		Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: g.Subject.Type, ObjectId: ObjectID(g.Tenant, g.Subject.ID)}},
	}
}

// Touch creates the relationship unless it exists (idempotent).
func (c *Client) Touch(ctx context.Context, g Grant) error {
	return c.write(ctx, v1.RelationshipUpdate_OPERATION_TOUCH, g)
}

// Delete removes the relationship if it exists (idempotent).
func (c *Client) Delete(ctx context.Context, g Grant) error {
	return c.write(ctx, v1.RelationshipUpdate_OPERATION_DELETE, g)
}

func (c *Client) write(ctx context.Context, op v1.RelationshipUpdate_Operation, g Grant) error {
	resp, err := c.c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{{Operation: op, Relationship: relationship(g)}},
	})
	if err != nil {
		return fmt.Errorf("write relationship: %w", err)
	}
	c.wrote(resp.GetWrittenAt())
	return nil
}

// Check asks whether subject may invoke tool of tenant.
func (c *Client) Check(ctx context.Context, tenant, tool string, subject Subject) (decide.Permissionship, error) {
	resp, err := c.c.CheckPermission(ctx, &v1.CheckPermissionRequest{
		Consistency: c.consistency(),
		Resource:    &v1.ObjectReference{ObjectType: TypeTool, ObjectId: ObjectID(tenant, tool)},
		Permission:  PermInvoke,
		Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subject.Type, ObjectId: ObjectID(tenant, subject.ID)}},
	})
	if err != nil {
		return decide.NoPermission, fmt.Errorf("check permission: %w", err)
	}
	switch resp.GetPermissionship() {
	case v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION:
		return decide.HasPermission, nil
	case v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION:
		return decide.ConditionalPermission, nil
	default:
		return decide.NoPermission, nil
	}
}

// Lookup returns the names of the tools of tenant that subject may invoke
// without condition, in the order SpiceDB sends them.
func (c *Client) Lookup(ctx context.Context, tenant string, subject Subject) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.LookupResources(ctx, &v1.LookupResourcesRequest{
		Consistency:        c.consistency(),
		ResourceObjectType: TypeTool,
		Permission:         PermInvoke,
		Subject:            &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subject.Type, ObjectId: ObjectID(tenant, subject.ID)}},
	})
	if err != nil {
		return nil, fmt.Errorf("lookup resources: %w", err)
	}
	prefix := tenant + "/"
	var out []string
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("lookup resources: %w", err)
		}
		if r.GetPermissionship() != v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION {
			continue
		}
		name, ok := strings.CutPrefix(r.GetResourceObjectId(), prefix)
		if !ok {
			continue
		}
		out = append(out, name)
		if len(out) > maxLookupItems {
			return nil, fmt.Errorf("lookup resources: more than %d tools", maxLookupItems)
		}
	}
}
