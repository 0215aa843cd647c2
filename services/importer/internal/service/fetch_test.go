package service_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/services/importer/internal/ingest"
	"github.com/mcpgw/mcpgw/tools/demoapi"
)

// urlSecret stands for a token in a description URL's query string: no
// reply, event or log line may repeat it.
const urlSecret = "url-query-s3cr3t"

// specServer serves descriptions by path on 127.0.0.1 and records the paths
// asked for.
type specServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newSpecServer(t *testing.T, docs map[string][]byte) *specServer {
	t.Helper()
	s := &specServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *specServer) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

// urlCommand is an authorized import of url under an allowlist.
func (f *fixture) urlCommand(name, url string, hosts, prefixes []string) *rpcv1.ImportSource {
	cmd := &rpcv1.ImportSource{Tenant: tenant, Name: name, Url: url, FetchAllowedHosts: hosts, FetchAllowedPrefixes: prefixes}
	cmd.Authorization = f.authorization(cmd, nil)
	return cmd
}

func TestImportFromURL(t *testing.T) {
	f := newFixture(t, 1)
	doc := demoapi.OpenAPI("http://127.0.0.1:8090")
	docs := map[string][]byte{"/openapi.json": doc}
	srv := newSpecServer(t, docs)
	// A description with a remote $ref to a host the allowlist does not name
	// (written before any request, once the server's address is known).
	docs["/remote-ref.yaml"] = []byte(`openapi: 3.0.3
info: {title: Remote, version: "1"}
paths:
  /items:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "` + strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + `/other.yaml#/Item"}
`)
	base := srv.URL // http://127.0.0.1:port
	allowHosts, allowLoopback := []string{"127.0.0.1"}, []string{"127.0.0.1/32"}

	t.Run("imported like an upload", func(t *testing.T) {
		reply := f.call(f.urlCommand("Demo by URL", base+"/openapi.json?token="+urlSecret, allowHosts, allowLoopback))
		if reply.GetError() != nil {
			t.Fatalf("import failed: %v", reply.GetError())
		}
		r := decodeReview(t, reply)
		if r.Title != "Demo Messages API" || len(r.Operations) != 2 {
			t.Fatalf("review = %q with %d operations", r.Title, len(r.Operations))
		}
		if hasInfo(r, ingest.RemoteRefNote) {
			t.Fatalf("review notes a remote $ref the description does not have: %v", r.Diagnostics)
		}
		started := f.startedEvent(reply.GetSourceId(), 1)
		sum := sha256.Sum256(doc)
		ref := started.GetDocument()
		if ref.GetSha256() != hex.EncodeToString(sum[:]) || ref.GetSize() != uint64(len(doc)) || ref.GetBucket() != bus.BucketSources {
			t.Fatalf("document ref = %v, want sha %x size %d", ref, sum, len(doc))
		}
		obs, err := f.n.JS.ObjectStore(f.ctx, bus.BucketSources)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := obs.GetBytes(f.ctx, ref.GetObject())
		if err != nil || !bytes.Equal(stored, doc) {
			t.Fatalf("stored document differs (%d bytes, %v)", len(stored), err)
		}
		evs := f.sourceEvents(reply.GetSourceId())
		if _, ok := evs[len(evs)-1].Msg.(*controlv1.SourceVersionCommitted); !ok {
			t.Fatalf("last event is %T, want the commit", evs[len(evs)-1].Msg)
		}
	})

	t.Run("refused", func(t *testing.T) {
		objects := f.storedObjects()
		events := len(f.control())
		upload := f.upload(doc)
		tests := []struct {
			name string
			cmd  *rpcv1.ImportSource
			code errcode.Code
			msg  string
		}{
			{"loopback without the prefix", f.urlCommand("x", base+"/openapi.json?token="+urlSecret, allowHosts, nil),
				errcode.InvalidArgument, "special-purpose address"},
			{"host not allowlisted", f.urlCommand("x", base+"/openapi.json?token="+urlSecret, []string{"specs.example.com"}, allowLoopback),
				errcode.InvalidArgument, "not in the fetch allowlist"},
			{"credentials in the URL", f.urlCommand("x", strings.Replace(base, "http://", "http://u:"+urlSecret+"@", 1)+"/openapi.json", allowHosts, allowLoopback),
				errcode.InvalidArgument, "must not carry credentials"},
			{"upload and URL", func() *rpcv1.ImportSource {
				cmd := &rpcv1.ImportSource{Tenant: tenant, Name: "x", Upload: upload, Url: base + "/openapi.json", FetchAllowedHosts: allowHosts}
				cmd.Authorization = f.authorization(cmd, nil)
				return cmd
			}(), errcode.InvalidArgument, "not both"},
			{"allowlist without a URL", func() *rpcv1.ImportSource {
				cmd := &rpcv1.ImportSource{Tenant: tenant, Name: "x", Upload: upload, FetchAllowedHosts: allowHosts}
				cmd.Authorization = f.authorization(cmd, nil)
				return cmd
			}(), errcode.InvalidArgument, "needs a URL"},
			{"not found", f.urlCommand("x", base+"/missing.json?token="+urlSecret, allowHosts, allowLoopback),
				errcode.InvalidArgument, "status 404"},
			{"remote $ref to a host not allowlisted", f.urlCommand("x", base+"/remote-ref.yaml?token="+urlSecret, allowHosts, allowLoopback),
				errcode.InvalidArgument, "external reference"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				reply := f.call(tc.cmd)
				wantError(t, reply, tc.code, tc.msg)
				if strings.Contains(reply.GetError().GetMessage(), urlSecret) {
					t.Fatalf("error repeats the URL's secret: %q", reply.GetError().GetMessage())
				}
			})
		}
		if got := f.storedObjects(); got != objects {
			t.Fatalf("refusals stored %d objects", got-objects)
		}
		if got := len(f.control()); got != events {
			t.Fatalf("refusals appended %d events", got-events)
		}
		for _, p := range srv.requested() {
			if p == "/other.yaml" {
				t.Fatal("the importer fetched a remote $ref")
			}
		}
	})

	for _, m := range f.control() {
		if bytes.Contains(m.data, []byte(urlSecret)) {
			t.Fatalf("event %s carries the URL's secret", m.subject)
		}
	}
	if bytes.Contains(f.logs.Bytes(), []byte(urlSecret)) {
		t.Fatal("the importer logged the URL's secret")
	}
}

func TestImportRemoteRef(t *testing.T) {
	f := newFixture(t, 1)
	schemas := newSpecServer(t, map[string][]byte{"/schemas.yaml": []byte(
		"Pet:\n  type: object\n  required: [name]\n  properties:\n    name: {type: string}\n    species: {type: string, enum: [cat, dog]}\n")})
	ref := schemas.URL + "/schemas.yaml"
	docs := map[string][]byte{"/pets.yaml": []byte(`openapi: 3.0.3
info: {title: Remote Pets, version: "1"}
servers: [{url: "https://pets.example"}]
paths:
  /pets:
    post:
      operationId: addPet
      requestBody:
        content:
          application/json:
            schema: {$ref: "` + ref + `?token=` + urlSecret + `#/Pet"}
      responses:
        "201": {description: created}
`)}
	descriptions := newSpecServer(t, docs)
	hostOf := func(raw string) string { return strings.TrimPrefix(raw, "http://") }
	url := descriptions.URL + "/pets.yaml"
	loopback := []string{"127.0.0.1/32"}

	t.Run("refused without the allowlist", func(t *testing.T) {
		objects, events := f.storedObjects(), len(f.control())
		reply := f.call(f.urlCommand("Remote pets", url, []string{hostOf(descriptions.URL)}, loopback))
		wantError(t, reply, errcode.InvalidArgument, `external reference "`+ref+`" is not allowed`)
		if msg := reply.GetError().GetMessage(); strings.Contains(msg, urlSecret) {
			t.Fatalf("error repeats the ref's query string: %q", msg)
		}
		if len(schemas.requested()) != 0 {
			t.Fatalf("the importer fetched %v from a host not allowlisted", schemas.requested())
		}
		if got := f.storedObjects(); got != objects {
			t.Fatalf("refusal stored %d objects", got-objects)
		}
		if got := len(f.control()); got != events {
			t.Fatalf("refusal appended %d events", got-events)
		}
	})

	t.Run("resolved from an allowlisted host", func(t *testing.T) {
		reply := f.call(f.urlCommand("Remote pets", url, []string{hostOf(descriptions.URL), hostOf(schemas.URL)}, loopback))
		if reply.GetError() != nil {
			t.Fatalf("import failed: %v", reply.GetError())
		}
		r := decodeReview(t, reply)
		if len(r.Operations) != 1 {
			t.Fatalf("review has %d operations, want 1", len(r.Operations))
		}
		var input struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(r.Operations[0].InputSchema, &input); err != nil {
			t.Fatal(err)
		}
		if input.Properties["name"] == nil || !bytes.Contains(input.Properties["species"], []byte("dog")) {
			t.Fatalf("input schema lacks the remote Pet's properties: %s", r.Operations[0].InputSchema)
		}
		note := ingest.RemoteRefNote + hostOf(schemas.URL) + "/schemas.yaml"
		if !slices.ContainsFunc(r.Diagnostics, func(d analysis.Diagnostic) bool { return d.Level == analysis.LevelInfo && d.Message == note }) {
			t.Fatalf("review lacks %q: %v", note, r.Diagnostics)
		}
		if got := schemas.requested(); !slices.Equal(got, []string{"/schemas.yaml"}) {
			t.Fatalf("schema server was asked for %v", got)
		}
		if bytes.Contains(reply.GetReview(), []byte(urlSecret)) {
			t.Fatal("the review repeats the ref's query string")
		}
	})

	for _, m := range f.control() {
		if bytes.Contains(m.data, []byte(urlSecret)) {
			t.Fatalf("event %s carries the ref's query string", m.subject)
		}
	}
}
