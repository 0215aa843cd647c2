package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Durable consumers the audit service reads through. They are created with
// the streams, by the admin user, so the audit service needs no right to
// create consumers on AUDIT.
const (
	DurableAuditEvents  = "audit_writer"
	DurableAuditControl = "audit_control"
)

// ProvisionConfig sizes what Provision creates.
type ProvisionConfig struct {
	// Replicas of every stream and bucket (1 locally).
	Replicas int
	// NonceTTL is how long RPC nonces are remembered; it must exceed the
	// request window (default 2 × DefaultRequestWindow).
	NonceTTL time.Duration
	// MaxMsgSize of stream messages (default 1 MiB).
	MaxMsgSize int32
	// UploadTTL bounds how long uploaded descriptions are kept (default 24h).
	UploadTTL time.Duration
}

// Provision creates or updates, idempotently and with file storage, the
// CONTROL and AUDIT streams, every KV and Object Store bucket, and the audit
// service's durable consumers. Only the launcher's admin user (locally) or
// deploy/ (in production) runs it: services may not create streams.
// CONTROL and AUDIT deny message deletion and purging.
func Provision(ctx context.Context, js jetstream.JetStream, cfg ProvisionConfig) error {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = 2 * DefaultRequestWindow
	}
	if cfg.MaxMsgSize <= 0 {
		cfg.MaxMsgSize = 1 << 20
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = 24 * time.Hour
	}
	streams := []jetstream.StreamConfig{
		{
			Name: StreamControl, Subjects: []string{ControlPrefix + ".>"},
			Description: "mcpgw control-plane events (source of truth)",
			Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Replicas: cfg.Replicas, MaxMsgSize: cfg.MaxMsgSize, Duplicates: 10 * time.Minute,
			DenyDelete: true, DenyPurge: true,
		},
		{
			Name: StreamAudit, Subjects: []string{AuditPrefix + ".>"},
			Description: "mcpgw audit events",
			Storage:     jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Replicas: cfg.Replicas, MaxMsgSize: cfg.MaxMsgSize, Duplicates: 10 * time.Minute,
			DenyDelete: true, DenyPurge: true,
		},
	}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	kvs := []jetstream.KeyValueConfig{{Bucket: BucketPolicyState, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, History: 1}}
	for _, s := range Services {
		kvs = append(kvs, jetstream.KeyValueConfig{
			Bucket: NonceBucket(s), TTL: cfg.NonceTTL, Storage: jetstream.FileStorage,
			Replicas: cfg.Replicas, History: 1, Description: "RPC nonces accepted by " + string(s),
		})
	}
	for _, kc := range kvs {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("provision bucket %s: %w", kc.Bucket, err)
		}
	}
	objs := []jetstream.ObjectStoreConfig{
		{Bucket: BucketUploads, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.UploadTTL, Description: "uploaded descriptions awaiting import"},
		{Bucket: BucketSources, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Description: "imported descriptions"},
	}
	for _, oc := range objs {
		if _, err := js.CreateOrUpdateObjectStore(ctx, oc); err != nil {
			return fmt.Errorf("provision object store %s: %w", oc.Bucket, err)
		}
	}
	durables := []struct {
		stream string
		cfg    jetstream.ConsumerConfig
	}{
		{StreamAudit, jetstream.ConsumerConfig{Durable: DurableAuditEvents, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: 30 * time.Second, MaxAckPending: 10000}},
		{StreamControl, jetstream.ConsumerConfig{Durable: DurableAuditControl, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: 30 * time.Second, MaxAckPending: 10000}},
	}
	for _, d := range durables {
		if _, err := js.CreateOrUpdateConsumer(ctx, d.stream, d.cfg); err != nil {
			return fmt.Errorf("provision consumer %s: %w", d.cfg.Durable, err)
		}
	}
	return nil
}

// ErrNotProvisioned is returned when a service finds a stream or bucket
// missing: it never creates one itself.
var ErrNotProvisioned = errors.New("stream or bucket not provisioned: start the stack with the launcher or apply deploy/")
