package bus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/errcode"
	_ "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1" // registers audit event types
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	_ "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1" // registers control event types
)

// Message is an event: a protobuf message with the shared metadata block.
type Message interface {
	proto.Message
	GetMeta() *commonv1.EventMeta
}

// Event is a verified event read from a stream.
type Event struct {
	Subject string
	// Seq is the stream sequence.
	Seq    uint64
	Signer Service
	Meta   *commonv1.EventMeta
	Msg    Message
}

// Name returns the event's short name, e.g. "BindingCreated".
func (e *Event) Name() string { return shortName(e.Meta.GetType()) }

func shortName(typ string) string {
	if i := strings.LastIndexByte(typ, '.'); i >= 0 {
		return typ[i+1:]
	}
	return typ
}

// NewID returns a random 128-bit ID from crypto/rand, hex-encoded, with a
// prefix (e.g. "evt_", "bnd_").
func NewID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the platform is unusable
	}
	return prefix + hex.EncodeToString(b[:])
}

// Expect is what a writer believes about an aggregate before appending:
// the last stream sequence on its subject filter (every message, junk
// included; 0 when empty) and its version (count of valid events).
type Expect struct {
	LastSeq uint64
	Version uint64
}

// Appended reports where an event landed.
type Appended struct {
	Seq     uint64
	Version uint64
	ID      string
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	JetStream jetstream.JetStream
	Identity  *Identity
	// Now defaults to time.Now.
	Now func() time.Time
}

// Publisher signs and appends events as one service. It is safe for
// concurrent use. An append returns only after JetStream acknowledged the
// event as stored.
type Publisher struct {
	js  jetstream.JetStream
	id  *Identity
	now func() time.Time
}

// NewPublisher returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.JetStream == nil || cfg.Identity == nil {
		return nil, errors.New("bus: publisher needs JetStream and Identity")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Publisher{js: cfg.JetStream, id: cfg.Identity, now: cfg.Now}, nil
}

// AppendControl appends ev to the aggregate (tenant, agg, id) with optimistic
// concurrency: it fails with errcode.Conflict unless the last message on the
// aggregate's subject filter has sequence expect.LastSeq. It sets the event's
// metadata (ID, type, time, aggregate, version = expect.Version+1); the caller
// sets tenant, actor and request ID. Only the aggregate's owner may append.
func (p *Publisher) AppendControl(ctx context.Context, agg Aggregate, id string, ev Message, expect Expect) (Appended, error) {
	owner, ok := AggregateOwner(agg)
	if !ok {
		return Appended{}, fmt.Errorf("append: unknown aggregate %q", agg)
	}
	if owner != p.id.Service {
		return Appended{}, fmt.Errorf("append: %s does not own aggregate %q", p.id.Service, agg)
	}
	meta := ev.GetMeta()
	if meta == nil {
		return Appended{}, errors.New("append: event has no metadata block")
	}
	typ := string(ev.ProtoReflect().Descriptor().FullName())
	subject, err := ControlSubject(meta.GetTenant(), string(agg), id, shortName(typ))
	if err != nil {
		return Appended{}, fmt.Errorf("append: %w", err)
	}
	filter, _ := AggregateFilter(meta.GetTenant(), string(agg), id)
	p.fill(meta, typ)
	meta.Aggregate, meta.AggregateId, meta.AggregateVersion = string(agg), id, expect.Version+1
	msg, err := p.signed(subject, typ, ev)
	if err != nil {
		return Appended{}, err
	}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamControl),
		jetstream.WithExpectLastSequenceForSubject(expect.LastSeq, filter))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return Appended{}, errcode.Wrap(errcode.Conflict, "aggregate changed concurrently", err)
		}
		return Appended{}, errcode.Wrap(errcode.Unavailable, "append control event", err)
	}
	if err := p.checkDuplicate(ctx, StreamControl, ack, msg); err != nil {
		return Appended{}, err
	}
	return Appended{Seq: ack.Sequence, Version: meta.AggregateVersion, ID: meta.Id}, nil
}

// PublishAudit signs and appends an audit event of kind. It returns after
// JetStream acknowledged it; a duplicate acknowledgement is accepted only
// when the stored message is this one.
func (p *Publisher) PublishAudit(ctx context.Context, kind AuditKind, ev Message) (Appended, error) {
	info, ok := LookupAuditKind(kind)
	if !ok {
		return Appended{}, fmt.Errorf("audit: unknown kind %q", kind)
	}
	typ := string(ev.ProtoReflect().Descriptor().FullName())
	if info.Owner != p.id.Service || info.Type != typ {
		return Appended{}, fmt.Errorf("audit: %s may not publish %s as %s", p.id.Service, typ, kind)
	}
	meta := ev.GetMeta()
	if meta == nil {
		return Appended{}, errors.New("audit: event has no metadata block")
	}
	subject, err := AuditSubject(meta.GetTenant(), kind)
	if err != nil {
		return Appended{}, fmt.Errorf("audit: %w", err)
	}
	p.fill(meta, typ)
	msg, err := p.signed(subject, typ, ev)
	if err != nil {
		return Appended{}, err
	}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamAudit))
	if err != nil {
		return Appended{}, errcode.Wrap(errcode.Unavailable, "append audit event", err)
	}
	if err := p.checkDuplicate(ctx, StreamAudit, ack, msg); err != nil {
		return Appended{}, err
	}
	return Appended{Seq: ack.Sequence, ID: meta.Id}, nil
}

func (p *Publisher) fill(meta *commonv1.EventMeta, typ string) {
	if meta.Id == "" {
		meta.Id = NewID("evt_")
	}
	meta.Type = typ
	if meta.Time == nil {
		meta.Time = timestamppb.New(p.now())
	}
}

func (p *Publisher) signed(subject, _ string, ev Message) (*nats.Msg, error) {
	return SignEvent(p.id, subject, ev)
}

// SignEvent encodes ev and signs it as id for subject, exactly as a
// Publisher does, without filling or checking its metadata. Publishers use
// it; tests use it to act as a (possibly compromised) service.
func SignEvent(id *Identity, subject string, ev Message) (*nats.Msg, error) {
	typ := string(ev.ProtoReflect().Descriptor().FullName())
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	meta := ev.GetMeta()
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(HeaderMsgID, meta.GetId())
	msg.Header.Set(HeaderType, typ)
	msg.Header.Set(HeaderSigner, string(id.Service))
	msg.Header.Set(HeaderSignature, encodeSig(id.Sign(eventSigningInput(subject, meta.GetId(), typ, id.Service, data))))
	if meta.GetRequestId() != "" {
		msg.Header.Set(HeaderRequestID, meta.GetRequestId())
	}
	msg.Header.Set(HeaderTenant, meta.GetTenant())
	if meta.GetTraceParent() != "" {
		msg.Header.Set(HeaderTrace, meta.GetTraceParent())
	}
	return msg, nil
}

// checkDuplicate makes a "duplicate" acknowledgement safe: someone who
// published our (random) message ID first would otherwise make us report
// success for an event that was never stored.
func (p *Publisher) checkDuplicate(ctx context.Context, stream string, ack *jetstream.PubAck, msg *nats.Msg) error {
	if !ack.Duplicate {
		return nil
	}
	s, err := p.js.Stream(ctx, stream)
	if err != nil {
		return errcode.Wrap(errcode.Unavailable, "check duplicate acknowledgement", err)
	}
	stored, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		return errcode.Wrap(errcode.Unavailable, "check duplicate acknowledgement", err)
	}
	if stored.Subject != msg.Subject || !bytes.Equal(stored.Data, msg.Data) ||
		stored.Header.Get(HeaderSignature) != msg.Header.Get(HeaderSignature) {
		return errcode.New(errcode.IDTaken, "event ID was already used by another message")
	}
	return nil
}

// Verifier checks that stored or delivered events were signed by the
// service that owns their subject. It is safe for concurrent use.
type Verifier struct {
	keys *Keyring
}

// NewVerifier returns a Verifier over a keyring.
func NewVerifier(keys *Keyring) (*Verifier, error) {
	if keys == nil {
		return nil, errors.New("bus: verifier needs a keyring")
	}
	return &Verifier{keys: keys}, nil
}

// VerifyControl verifies and decodes a CONTROL message: the subject is well
// formed, the signer owns the aggregate, the signature is valid, and the
// signed metadata agrees with the subject and headers.
func (v *Verifier) VerifyControl(subject string, hdr nats.Header, data []byte) (*Event, error) {
	t, err := ParseControlSubject(subject)
	if err != nil {
		return nil, err
	}
	owner, ok := AggregateOwner(Aggregate(t.Aggregate))
	if !ok {
		return nil, errcode.Errorf(errcode.BadSignature, "unknown aggregate %q", t.Aggregate)
	}
	ev, err := v.verify(subject, owner, "mcpgw.control.v1.", hdr, data)
	if err != nil {
		return nil, err
	}
	m := ev.Meta
	if m.GetTenant() != t.Tenant || m.GetAggregate() != t.Aggregate || m.GetAggregateId() != t.ID ||
		shortName(m.GetType()) != t.Event || m.GetAggregateVersion() == 0 {
		return nil, errcode.New(errcode.BadSignature, "event metadata does not match its subject")
	}
	return ev, nil
}

// VerifyAudit verifies and decodes an AUDIT message.
func (v *Verifier) VerifyAudit(subject string, hdr nats.Header, data []byte) (*Event, error) {
	t, err := ParseAuditSubject(subject)
	if err != nil {
		return nil, err
	}
	info, ok := LookupAuditKind(t.Kind)
	if !ok {
		return nil, errcode.Errorf(errcode.BadSignature, "unknown audit kind %q", t.Kind)
	}
	ev, err := v.verify(subject, info.Owner, "mcpgw.audit.v1.", hdr, data)
	if err != nil {
		return nil, err
	}
	if ev.Meta.GetTenant() != t.Tenant || ev.Meta.GetType() != info.Type {
		return nil, errcode.New(errcode.BadSignature, "event metadata does not match its subject")
	}
	return ev, nil
}

func (v *Verifier) verify(subject string, owner Service, typePrefix string, hdr nats.Header, data []byte) (*Event, error) {
	signer := Service(hdr.Get(HeaderSigner))
	if signer != owner {
		return nil, errcode.Errorf(errcode.BadSignature, "%q may not publish on this subject", signer)
	}
	typ, msgID := hdr.Get(HeaderType), hdr.Get(HeaderMsgID)
	if !strings.HasPrefix(typ, typePrefix) || msgID == "" {
		return nil, errcode.New(errcode.BadSignature, "missing type or message ID")
	}
	if !v.keys.Verify(signer, eventSigningInput(subject, msgID, typ, signer, data), decodeSig(hdr.Get(HeaderSignature))) {
		return nil, errcode.New(errcode.BadSignature, "invalid event signature")
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return nil, errcode.Errorf(errcode.BadSignature, "unknown event type %q", typ)
	}
	pm := mt.New().Interface()
	if err := proto.Unmarshal(data, pm); err != nil {
		return nil, errcode.Wrap(errcode.BadSignature, "undecodable event", err)
	}
	msg, ok := pm.(Message)
	if !ok || msg.GetMeta() == nil {
		return nil, errcode.New(errcode.BadSignature, "event without metadata")
	}
	if msg.GetMeta().GetId() != msgID || msg.GetMeta().GetType() != typ {
		return nil, errcode.New(errcode.BadSignature, "event metadata does not match its headers")
	}
	return &Event{Subject: subject, Signer: signer, Meta: msg.GetMeta(), Msg: msg}, nil
}
