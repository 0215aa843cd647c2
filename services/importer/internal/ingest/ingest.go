// Package ingest runs the importer's one command: import a description that
// the edge streamed into the upload bucket, or that the importer fetches
// from a URL the operator named (package fetch), as a new source or as a new
// version of one. It reads and checks the document, analyses it, stores the
// document, and appends the source version's events; a version becomes
// visible only with its commit event, so an import that fails anywhere
// leaves nothing visible, and a malformed description writes nothing at all.
//
// A new version of an existing source is proposed as a diff against the
// latest committed version (recorded on its start event and returned in the
// review), and its tools keep their names across versions. Tool names are
// unique within a tenant: a tool whose name another source of the tenant has
// approved takes its own source's slug as a prefix, while a tool already
// approved under a name keeps it (see proposal.Name).
//
// Errors returned by Import are *errcode.Error values whose message is safe
// to show the caller: it names what was wrong (and where, in a malformed
// description) but never carries the document, a URL or a secret.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	libcatalog "github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/services/importer/internal/catalog"
	"github.com/mcpgw/mcpgw/services/importer/internal/fetch"
	"github.com/mcpgw/mcpgw/services/importer/internal/proposal"
)

// Limits and defaults.
const (
	// DefaultMaxDocumentBytes is the largest description imported (50 MiB).
	DefaultMaxDocumentBytes = 50 << 20
	// DefaultMaxEventBytes bounds one encoded event (the CONTROL stream's
	// default message size).
	DefaultMaxEventBytes = 1 << 20
	// DefaultMaxReviewBytes bounds the review in a reply.
	DefaultMaxReviewBytes = 1<<20 - 64<<10
	// MaxNameBytes bounds a source's name.
	MaxNameBytes = 200
	// maxObjectName bounds an upload's object name.
	maxObjectName = 1024
	// eventOverhead is room for the metadata the publisher fills in and for
	// the signed headers, on top of an event's encoded size.
	eventOverhead = 8 << 10
)

// Config configures an Importer.
type Config struct {
	// Uploads is the bucket the edge streams descriptions into (read only).
	Uploads jetstream.ObjectStore
	// Sources is the importer's bucket of stored descriptions.
	Sources jetstream.ObjectStore
	// Control is the CONTROL stream, read for the last sequences of the
	// subjects Projection replays before an import plans its version.
	Control   jetstream.Stream
	Publisher *bus.Publisher
	// Projection replays catalog.Filters() into Catalog and Tools.
	Projection *bus.Projection
	// Catalog must be fed by Projection.
	Catalog *catalog.Catalog
	// Tools must be fed by Projection too, with the source and sourcepolicy
	// aggregates of every tenant: the committed versions a new version is
	// compared with, and the approvals that tool names are checked against.
	Tools ToolCatalog
	// MaxDocumentBytes bounds an upload (default DefaultMaxDocumentBytes).
	MaxDocumentBytes int64
	// Fetch configures imports from a URL. Its MaxBytes is capped at (and
	// defaults to) MaxDocumentBytes.
	Fetch fetch.Config
	// ToolNameBudget bounds generated tool names (analysis default when 0).
	ToolNameBudget int
	// MaxEventBytes bounds one encoded event (default DefaultMaxEventBytes).
	MaxEventBytes int
	// MaxReviewBytes bounds the review returned (default DefaultMaxReviewBytes).
	MaxReviewBytes int
	Logger         *slog.Logger
}

// ToolCatalog is the shared read model of sources, their committed tools
// and policy's approvals; *libcatalog.Catalog implements it.
type ToolCatalog interface {
	SourceIDs(tenant string) []string
	Source(tenant, id string) (libcatalog.Source, bool)
	Version(tenant, sourceID string, n uint32) (*libcatalog.Version, bool)
	BindingsOf(tenant, sourceID, scheme string) []libcatalog.Binding
}

// Importer runs imports. It is safe for concurrent use; imports of the same
// source are serialized within one Importer, and optimistic concurrency on
// the source aggregate keeps instances apart.
type Importer struct {
	cfg   Config
	log   *slog.Logger
	fetch *fetch.Fetcher
	locks keyedMutex
}

// New returns an Importer.
func New(cfg Config) (*Importer, error) {
	if cfg.Uploads == nil || cfg.Sources == nil || cfg.Control == nil || cfg.Publisher == nil || cfg.Projection == nil || cfg.Catalog == nil || cfg.Tools == nil {
		return nil, errors.New("ingest: Uploads, Sources, Control, Publisher, Projection, Catalog and Tools are required")
	}
	if cfg.MaxDocumentBytes <= 0 {
		cfg.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.MaxReviewBytes <= 0 {
		cfg.MaxReviewBytes = DefaultMaxReviewBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Fetch.MaxBytes <= 0 || cfg.Fetch.MaxBytes > cfg.MaxDocumentBytes {
		cfg.Fetch.MaxBytes = cfg.MaxDocumentBytes
	}
	if cfg.Fetch.Logger == nil {
		cfg.Fetch.Logger = cfg.Logger
	}
	f, err := fetch.New(cfg.Fetch)
	if err != nil {
		return nil, err
	}
	return &Importer{cfg: cfg, log: cfg.Logger.With("component", "ingest"), fetch: f, locks: keyedMutex{m: map[string]*lockEntry{}}}, nil
}

// Command is one import, already authorized.
type Command struct {
	Tenant string
	// Name names a new source (required then); for a new version it renames
	// the source when set.
	Name string
	// SourceID is empty for a new source.
	SourceID string
	// Upload names the object in the upload bucket and its SHA-256 (hex).
	// Exactly one of Upload and URL is set.
	Upload *controlv1.DocumentRef
	// URL is fetched (see package fetch) when there is no upload. It may
	// carry a query string: it is never recorded or repeated in an error.
	URL string
	// FetchAllowedHosts and FetchAllowedPrefixes are the egress allowlist of
	// the fetch; the URL's host must match one of the hosts.
	FetchAllowedHosts, FetchAllowedPrefixes []string
	// Actor is recorded on every event.
	Actor                  *commonv1.Actor
	RequestID, TraceParent string
	// guard, when set, is checked against the read model before each
	// attempt at appending the version's start event: an error stops the
	// write before anything is written.
	guard func() error
}

// Result is a committed source version.
type Result struct {
	SourceID string
	Version  uint32
	// Review is the JSON encoding of the analysis result with the final
	// tool names, and for a new version of a source its "diff" object
	// (shortened, with a diagnostic saying so, when it exceeds the review
	// budget).
	Review []byte
	// Tools is the number of tools proposed.
	Tools int
}

// Import imports cmd's upload, or the document fetched from cmd's URL. It
// returns only after the version was committed and this process's read
// model has applied the commit.
func (im *Importer) Import(ctx context.Context, cmd Command) (Result, error) {
	if err := im.validate(&cmd); err != nil {
		return Result{}, err
	}
	if cmd.SourceID != "" {
		if s, ok := im.cfg.Catalog.Source(cmd.Tenant, cmd.SourceID); !ok || !s.Visible() {
			return Result{}, errcode.New(errcode.NotFound, "source not found")
		}
	}
	var (
		doc []byte
		err error
	)
	if cmd.URL != "" {
		doc, err = im.fetchURL(ctx, cmd)
	} else {
		doc, err = im.readUpload(ctx, cmd.Upload)
	}
	if err != nil {
		return Result{}, err
	}
	external, notes, err := im.remoteRefs(ctx, cmd, doc)
	if err != nil {
		return Result{}, err
	}
	res, err := analysis.Analyze(doc, analysis.Options{ToolNameBudget: im.cfg.ToolNameBudget, MaxDocumentBytes: im.cfg.MaxDocumentBytes, External: external})
	if err != nil {
		return Result{}, analysisError(err)
	}
	res.Diagnostics = append(res.Diagnostics, notes...)

	key := cmd.Tenant + "/" + cmd.SourceID
	if cmd.SourceID == "" {
		key = "" // a new source has a fresh ID: nothing to serialize against
	}
	unlock := im.locks.lock(key)
	defer unlock()
	sourceID, version, pl, err := im.write(ctx, cmd, res, doc)
	if err != nil {
		return Result{}, err
	}
	return Result{SourceID: sourceID, Version: version, Review: pl.review, Tools: len(pl.prop.Tools)}, nil
}

func (im *Importer) validate(cmd *Command) error {
	if err := bus.CheckToken("tenant", cmd.Tenant); err != nil {
		return err
	}
	cmd.Name = strings.TrimSpace(cmd.Name)
	if cmd.SourceID == "" && cmd.Name == "" {
		return errcode.New(errcode.InvalidArgument, "a new source needs a name")
	}
	if cmd.Name != "" {
		if len(cmd.Name) > MaxNameBytes || !utf8.ValidString(cmd.Name) || strings.IndexFunc(cmd.Name, unicode.IsControl) >= 0 {
			return errcode.Errorf(errcode.InvalidArgument, "invalid name: at most %d bytes of printable UTF-8", MaxNameBytes)
		}
	}
	if cmd.SourceID != "" {
		if err := bus.CheckToken("source ID", cmd.SourceID); err != nil {
			return err
		}
	}
	u := cmd.Upload
	if cmd.URL != "" {
		if u != nil {
			return errcode.New(errcode.InvalidArgument, "name either an upload or a URL, not both")
		}
		if _, err := fetch.ParseURL(cmd.URL); err != nil {
			return fetchError(err)
		}
		if _, err := fetch.Rules(cmd.FetchAllowedHosts, cmd.FetchAllowedPrefixes); err != nil {
			return fetchError(err)
		}
		return nil
	}
	if len(cmd.FetchAllowedHosts) > 0 || len(cmd.FetchAllowedPrefixes) > 0 {
		return errcode.New(errcode.InvalidArgument, "a fetch allowlist needs a URL")
	}
	if u == nil || u.GetObject() == "" {
		return errcode.New(errcode.InvalidArgument, "no upload or URL named")
	}
	if b := u.GetBucket(); b != "" && b != bus.BucketUploads {
		return errcode.Errorf(errcode.InvalidArgument, "uploads are read from bucket %q only", bus.BucketUploads)
	}
	if o := u.GetObject(); len(o) > maxObjectName || !utf8.ValidString(o) || strings.IndexFunc(o, unicode.IsControl) >= 0 {
		return errcode.New(errcode.InvalidArgument, "invalid upload object name")
	}
	if sum, err := hex.DecodeString(u.GetSha256()); err != nil || len(sum) != sha256.Size {
		return errcode.New(errcode.InvalidArgument, "upload SHA-256 must be 64 hex digits")
	}
	if int64(u.GetSize()) > im.cfg.MaxDocumentBytes {
		return im.tooLarge()
	}
	return nil
}

func (im *Importer) tooLarge() error {
	return errcode.Errorf(errcode.TooLarge, "description exceeds the limit of %d bytes", im.cfg.MaxDocumentBytes)
}

// readUpload reads the uploaded document, refusing one over the size limit
// or whose content does not match the SHA-256 (and size) the command names.
func (im *Importer) readUpload(ctx context.Context, ref *controlv1.DocumentRef) ([]byte, error) {
	info, err := im.cfg.Uploads.GetInfo(ctx, ref.GetObject())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, errcode.New(errcode.NotFound, "upload not found")
	}
	if err != nil {
		return nil, errcode.Wrap(errcode.Unavailable, "read upload", err)
	}
	if int64(info.Size) > im.cfg.MaxDocumentBytes {
		return nil, im.tooLarge()
	}
	if ref.GetSize() != 0 && ref.GetSize() != info.Size {
		return nil, errcode.New(errcode.InvalidArgument, "upload size does not match the command")
	}
	obj, err := im.cfg.Uploads.Get(ctx, ref.GetObject())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, errcode.New(errcode.NotFound, "upload not found")
	}
	if err != nil {
		return nil, errcode.Wrap(errcode.Unavailable, "read upload", err)
	}
	defer obj.Close()
	doc, err := io.ReadAll(io.LimitReader(obj, im.cfg.MaxDocumentBytes+1))
	if err != nil {
		if errors.Is(err, jetstream.ErrDigestMismatch) {
			return nil, errcode.Wrap(errcode.InvalidArgument, "upload is corrupt", err)
		}
		return nil, errcode.Wrap(errcode.Unavailable, "read upload", err)
	}
	if int64(len(doc)) > im.cfg.MaxDocumentBytes {
		return nil, im.tooLarge()
	}
	sum := sha256.Sum256(doc)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), ref.GetSha256()) {
		return nil, errcode.New(errcode.InvalidArgument, "upload does not match its SHA-256")
	}
	return doc, nil
}

// fetchURL fetches cmd's URL under its allowlist.
func (im *Importer) fetchURL(ctx context.Context, cmd Command) ([]byte, error) {
	d, err := im.fetch.Fetch(ctx, fetch.Request{URL: cmd.URL, AllowedHosts: cmd.FetchAllowedHosts, AllowedPrefixes: cmd.FetchAllowedPrefixes})
	if err != nil {
		return nil, fetchError(err)
	}
	if int64(len(d.Body)) > im.cfg.MaxDocumentBytes {
		return nil, im.tooLarge()
	}
	return d.Body, nil
}

// fetchError maps a fetch refusal or failure to a caller-facing error; a
// *fetch.Error's message names the host at most, never the URL.
func fetchError(err error) error {
	var fe *fetch.Error
	if !errors.As(err, &fe) {
		return errcode.New(errcode.Unavailable, "the description could not be fetched")
	}
	// A host or address outside the allowlist is the command's own fault:
	// InvalidArgument, not PermissionDenied (which is about the actor).
	code := errcode.InvalidArgument
	switch fe.Code {
	case fetch.CodeTooLarge:
		code = errcode.TooLarge
	case fetch.CodeTimeout, fetch.CodeUnreachable, fetch.CodeCanceled:
		code = errcode.Unavailable
	case fetch.CodeStatus:
		if fe.Status >= 500 {
			code = errcode.Unavailable
		}
	}
	return errcode.New(code, fe.Error())
}

// analysisError maps an analysis refusal to a caller-facing error that says
// what is wrong and where.
func analysisError(err error) error {
	var (
		syn *analysis.SyntaxError
		inv *analysis.InvalidError
		lim *analysis.LimitError
		uns *analysis.UnsupportedFormatError
	)
	switch {
	case errors.As(err, &syn), errors.As(err, &inv):
		return errcode.Wrap(errcode.InvalidArgument, "malformed description: "+err.Error(), err)
	case errors.As(err, &lim):
		return errcode.Wrap(errcode.TooLarge, "description refused: "+lim.Error(), err)
	case errors.As(err, &uns):
		return errcode.Wrap(errcode.InvalidArgument, uns.Error()+": OpenAPI 3.0 and 3.1 descriptions are imported", err)
	}
	return errcode.Wrap(errcode.InvalidArgument, "malformed description", err)
}

// plan is what one attempt at writing a version proposes.
type plan struct {
	prop *proposal.Proposal
	// diff is the start event's copy of fullDiff, shortened to fit.
	diff, fullDiff *controlv1.SourceDiff
	review         []byte
}

// plan names the tools of res for the target (stable across versions,
// unique within the tenant), maps them to the proposal, compares it with the
// latest committed version, and checks that every event fits in the CONTROL
// stream and the review in a reply. It writes nothing.
func (im *Importer) plan(cmd Command, t target, res *analysis.Result) (*plan, error) {
	nc := proposal.NameContext{Slug: t.slug, Budget: im.cfg.ToolNameBudget, Taken: im.takenNames(cmd.Tenant, t.id)}
	base := im.base(cmd.Tenant, t.id)
	if base != nil {
		nc.Previous = base.Tools
	}
	nc.Approved = im.approvedTools(cmd.Tenant, t.id)
	named := proposal.Name(res, nc)
	prop, err := proposal.Build(named)
	if err != nil {
		return nil, errcode.Wrap(errcode.InvalidArgument, "description refused: "+err.Error(), err)
	}
	pl := &plan{prop: prop}
	if base != nil {
		if pl.fullDiff, err = proposal.Diff(*base, prop); err != nil {
			return nil, errcode.Wrap(errcode.Internal, "compare with the previous version", err)
		}
	}
	if pl.diff, err = im.checkSizes(cmd, named, prop, pl.fullDiff); err != nil {
		return nil, err
	}
	slots := libcatalog.SlotsOf(prop.Tools, func(scheme string) []libcatalog.Binding {
		return im.cfg.Tools.BindingsOf(cmd.Tenant, t.id, scheme)
	})
	if pl.review, err = proposal.ReviewWithSlots(named, pl.fullDiff, slots, im.cfg.MaxReviewBytes); err != nil {
		return nil, errcode.Wrap(errcode.TooLarge, "the review of this description does not fit a reply", err)
	}
	return pl, nil
}

// base is the latest committed version of a source, or nil.
func (im *Importer) base(tenant, sourceID string) *proposal.Base {
	s, ok := im.cfg.Tools.Source(tenant, sourceID)
	if !ok {
		return nil
	}
	var latest uint32
	for n, v := range s.Versions {
		if v.Committed && n > latest {
			latest = n
		}
	}
	if latest == 0 {
		return nil
	}
	v, ok := im.cfg.Tools.Version(tenant, sourceID, latest)
	if !ok {
		return nil
	}
	return &proposal.Base{Version: latest, Tools: v.Tools, Hosts: v.ProposedHosts}
}

// approvedTools are the tools of a source's approved version that policy
// approved, by name; nil when it has none.
func (im *Importer) approvedTools(tenant, sourceID string) map[string]*controlv1.ToolSpec {
	s, ok := im.cfg.Tools.Source(tenant, sourceID)
	if !ok || s.Approval == nil {
		return nil
	}
	v, ok := im.cfg.Tools.Version(tenant, sourceID, s.Approval.Version)
	if !ok {
		return nil
	}
	out := map[string]*controlv1.ToolSpec{}
	for name := range s.Approval.Digests {
		if spec := v.Tools[name]; spec != nil {
			out[name] = spec
		}
	}
	return out
}

// takenNames are the tool names that policy approved in the tenant's other
// sources: the same set policy's approval refuses a collision with.
func (im *Importer) takenNames(tenant, sourceID string) map[string]bool {
	taken := map[string]bool{}
	for _, id := range im.cfg.Tools.SourceIDs(tenant) {
		if id == sourceID {
			continue
		}
		if s, ok := im.cfg.Tools.Source(tenant, id); ok && s.Approval != nil {
			for name := range s.Approval.Digests {
				taken[name] = true
			}
		}
	}
	return taken
}

// diffFraming is room for the diff field's tag and length on the start
// event.
const diffFraming = 8

// checkSizes refuses, before anything is written, a description whose
// events would not fit in the CONTROL stream, and returns the diff as the
// start event can carry it (shortened when the full one does not fit).
func (im *Importer) checkSizes(cmd Command, res *analysis.Result, p *proposal.Proposal, diff *controlv1.SourceDiff) (*controlv1.SourceDiff, error) {
	started := &controlv1.SourceVersionStarted{SourceId: bus.NewID("src_"), Version: 1 << 31, Name: strings.Repeat("n", MaxNameBytes),
		Slug: strings.Repeat("s", proposal.MaxSlug), Format: string(res.Format), Title: title(res),
		Document: &controlv1.DocumentRef{Bucket: bus.BucketSources, Object: objectName(cmd.Tenant, bus.NewID("src_"), 1<<31),
			Sha256: strings.Repeat("0", 64), Size: 1 << 62}, ProposedHosts: p.Hosts}
	n := proto.Size(started) + eventOverhead
	if n > im.cfg.MaxEventBytes {
		return nil, errcode.Errorf(errcode.TooLarge, "the description names too many servers to propose (%d hosts)", len(p.Hosts))
	}
	if diff != nil {
		room := im.cfg.MaxEventBytes - n - diffFraming
		diff = proposal.TrimDiff(diff, room)
		if proto.Size(diff) > room {
			return nil, errcode.Errorf(errcode.TooLarge, "the description names too many servers to propose (%d hosts)", len(p.Hosts))
		}
	}
	for _, t := range p.Tools {
		n := proto.Size(&controlv1.ToolProposed{SourceId: bus.NewID("src_"), Version: 1 << 31, Tool: t}) + eventOverhead
		if n > im.cfg.MaxEventBytes {
			return nil, errcode.Errorf(errcode.TooLarge, "tool %q is too large to propose (%d bytes; the limit is %d)", t.GetName(), n, im.cfg.MaxEventBytes)
		}
	}
	return diff, nil
}

// maxTitleBytes bounds the description's title recorded on the start event.
const maxTitleBytes = 256

// title is the description's title, cut to maxTitleBytes on a character
// boundary.
func title(res *analysis.Result) string {
	t := strings.ToValidUTF8(res.Title, "\uFFFD")
	if len(t) <= maxTitleBytes {
		return t
	}
	cut := maxTitleBytes
	for cut > 0 && !utf8.RuneStart(t[cut]) {
		cut--
	}
	return t[:cut]
}

// target is the source version an import writes.
type target struct {
	id, name, slug string
	version        uint32
	expect         bus.Expect
}

func (im *Importer) target(ctx context.Context, cmd Command) (target, error) {
	if cmd.SourceID == "" {
		return target{id: bus.NewID("src_"), name: cmd.Name, slug: proposal.Slug(cmd.Name), version: 1}, nil
	}
	exp, err := im.expect(ctx, cmd.Tenant, cmd.SourceID)
	if err != nil {
		return target{}, err
	}
	s, ok := im.cfg.Catalog.Source(cmd.Tenant, cmd.SourceID)
	if !ok || !s.Visible() {
		return target{}, errcode.New(errcode.NotFound, "source not found")
	}
	t := target{id: s.ID, name: s.Name, slug: s.Slug, version: s.Latest + 1, expect: exp}
	if cmd.Name != "" {
		t.name = cmd.Name
	}
	if t.slug == "" {
		t.slug = proposal.Slug(t.name)
	}
	return t, nil
}

// expect reads a consistent expectation of an aggregate: the projection
// moves an aggregate's last sequence before it applies the event and its
// version after, so the expectation is read again once that sequence is
// fully applied, until two reads agree.
func (im *Importer) expect(ctx context.Context, tenant, id string) (bus.Expect, error) {
	for {
		e := im.cfg.Projection.Expect(tenant, bus.AggSource, id)
		if err := im.cfg.Projection.WaitFor(ctx, e.LastSeq); err != nil {
			return bus.Expect{}, errcode.Wrap(errcode.Unavailable, "read model not caught up", err)
		}
		if im.cfg.Projection.Expect(tenant, bus.AggSource, id) == e {
			return e, nil
		}
	}
}

// refresh waits until the read models have applied everything CONTROL
// holds on the subjects the projection replays (catalog.Filters): the last
// message of the whole stream may be one the projection never sees, so it
// waits for the last message of each of those subjects.
func (im *Importer) refresh(ctx context.Context) error {
	var last uint64
	for _, filter := range catalog.Filters() {
		msg, err := im.cfg.Control.GetLastMsgForSubject(ctx, filter)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return errcode.Wrap(errcode.Unavailable, "read control stream", err)
		}
		last = max(last, msg.Sequence)
	}
	if err := im.cfg.Projection.WaitFor(ctx, last); err != nil {
		return errcode.Wrap(errcode.Unavailable, "read model not caught up", err)
	}
	return nil
}

// objectName is where a version's document is stored in the sources bucket.
func objectName(tenant, sourceID string, version uint32) string {
	return fmt.Sprintf("%s/%s/v%d", tenant, sourceID, version)
}

// write plans the version against the read model caught up with CONTROL,
// appends its start event (planning again and retrying once, after a
// refresh, when another writer moved the aggregate), stores the document,
// proposes every tool and commits. The start event comes first, so that
// only the writer that won the version's number stores its document. A
// refused plan writes nothing.
func (im *Importer) write(ctx context.Context, cmd Command, res *analysis.Result, doc []byte) (string, uint32, *plan, error) {
	meta := func() *commonv1.EventMeta {
		return &commonv1.EventMeta{Tenant: cmd.Tenant, Actor: cmd.Actor, RequestId: cmd.RequestID, TraceParent: cmd.TraceParent}
	}
	var (
		t   target
		pl  *plan
		app bus.Appended
		err error
	)
	// The approvals of every source of the tenant up to now name what is
	// taken.
	if err := im.refresh(ctx); err != nil {
		return "", 0, nil, err
	}
	// An upload's content was checked against its SHA-256; a fetched
	// document's is computed here.
	sum := sha256.Sum256(doc)
	for attempt := 0; ; attempt++ {
		if t, err = im.target(ctx, cmd); err != nil {
			return "", 0, nil, err
		}
		if cmd.guard != nil {
			if err := cmd.guard(); err != nil {
				return "", 0, nil, err
			}
		}
		if pl, err = im.plan(cmd, t, res); err != nil {
			return "", 0, nil, err
		}
		started := &controlv1.SourceVersionStarted{
			Meta: meta(), SourceId: t.id, Version: t.version, Name: t.name, Slug: t.slug,
			Format: string(res.Format), Title: title(res), ProposedHosts: pl.prop.Hosts,
			Document: &controlv1.DocumentRef{Bucket: bus.BucketSources, Object: objectName(cmd.Tenant, t.id, t.version),
				Sha256: hex.EncodeToString(sum[:]), Size: uint64(len(doc))},
			Diff: pl.diff,
		}
		app, err = im.cfg.Publisher.AppendControl(ctx, bus.AggSource, t.id, started, t.expect)
		if err == nil {
			break
		}
		if errcode.CodeOf(err) != errcode.Conflict || attempt > 0 {
			return "", 0, nil, errcode.Wrap(errcode.CodeOf(err), "import failed; nothing was committed", err)
		}
		if err := im.refresh(ctx); err != nil {
			return "", 0, nil, err
		}
	}
	p := pl.prop
	log := im.log.With("tenant", cmd.Tenant, "source_id", t.id, "version", t.version, "request_id", cmd.RequestID)
	fail := func(step string, err error) (string, uint32, *plan, error) {
		log.Warn("import interrupted; version left uncommitted", "step", step, "code", errcode.CodeOf(err))
		code := errcode.Unavailable
		if errcode.CodeOf(err) == errcode.Conflict {
			code = errcode.Conflict
		}
		return "", 0, nil, errcode.Wrap(code, fmt.Sprintf("import failed; version %d was not committed", t.version), err)
	}
	if _, err := im.cfg.Sources.Put(ctx, jetstream.ObjectMeta{Name: objectName(cmd.Tenant, t.id, t.version)}, bytes.NewReader(doc)); err != nil {
		return fail("store document", err)
	}
	next := bus.Expect{LastSeq: app.Seq, Version: app.Version}
	for _, spec := range p.Tools {
		ev := &controlv1.ToolProposed{Meta: meta(), SourceId: t.id, Version: t.version, Tool: spec}
		if app, err = im.cfg.Publisher.AppendControl(ctx, bus.AggSource, t.id, ev, next); err != nil {
			return fail("propose tool", err)
		}
		next = bus.Expect{LastSeq: app.Seq, Version: app.Version}
	}
	commit := &controlv1.SourceVersionCommitted{Meta: meta(), SourceId: t.id, Version: t.version,
		ToolCount: uint32(len(p.Tools)), ToolsDigest: p.ToolsDigest}
	if app, err = im.cfg.Publisher.AppendControl(ctx, bus.AggSource, t.id, commit, next); err != nil {
		return fail("commit", err)
	}
	if err := im.cfg.Projection.WaitFor(ctx, app.Seq); err != nil {
		// The commit is durable; a later writer refreshes before it appends.
		log.Warn("committed version not yet applied locally", "err", err)
	}
	attrs := []any{"tools", len(p.Tools), "unsupported", p.Unsupported, "format", string(res.Format)}
	if d := pl.fullDiff; d != nil {
		attrs = append(attrs, "base_version", d.GetBaseVersion(), "added", len(d.GetAddedOperations()),
			"removed", len(d.GetRemovedOperations()), "changed", len(d.GetChangedOperations()))
	}
	log.Info("source version committed", attrs...)
	return t.id, t.version, pl, nil
}

// keyedMutex serializes work per key; the empty key is never locked.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	if key == "" {
		return func() {}
	}
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &lockEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
