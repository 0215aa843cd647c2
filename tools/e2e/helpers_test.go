package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/tools/client"
	"github.com/mcpgw/mcpgw/tools/devstack"
)

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type stackOpts struct {
	stateDir string
	edgeAddr string
	binDir   string
}

// startStack brings the whole system up as real processes in a temporary
// state directory; it is stopped at cleanup.
func startStack(t *testing.T, o stackOpts) *devstack.Stack {
	t.Helper()
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	if o.edgeAddr == "" {
		o.edgeAddr = freeAddr(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s, err := devstack.Start(ctx, devstack.Config{
		Root: testenv.Root(t), StateDir: o.stateDir, EdgeAddr: o.edgeAddr, BinDir: o.binDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// recorder keeps every HTTP response body and request ID a client saw.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
	reqIDs []string
}

func (r *recorder) add(b []byte, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, b)
	if id != "" {
		r.reqIDs = append(r.reqIDs, id)
	}
}

func (r *recorder) lastRequestID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqIDs) == 0 {
		return ""
	}
	return r.reqIDs[len(r.reqIDs)-1]
}

func (r *recorder) all() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Join(r.bodies, []byte("\n"))
}

type recordingTransport struct {
	rec  *recorder
	base http.RoundTripper
}

type teeBody struct {
	io.ReadCloser
	buf  bytes.Buffer
	done func([]byte)
	once sync.Once
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.buf.Write(p[:n])
	if err == io.EOF {
		b.once.Do(func() { b.done(b.buf.Bytes()) })
	}
	return n, err
}

func (b *teeBody) Close() error {
	b.once.Do(func() { b.done(b.buf.Bytes()) })
	return b.ReadCloser.Close()
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	id := resp.Header.Get("X-Request-Id")
	resp.Body = &teeBody{ReadCloser: resp.Body, done: func(b []byte) { rt.rec.add(append([]byte(nil), b...), id) }}
	return resp, nil
}

func recordingHTTP(rec *recorder) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &recordingTransport{rec: rec, base: http.DefaultTransport.(*http.Transport).Clone()}}
}

// mcpClient connects an MCP client with an agent key. legacy pins the
// session-based 2025-11-25 protocol; otherwise the client speaks the
// sessionless 2026-07-28 protocol.
func mcpClient(t *testing.T, s *devstack.Stack, key secret.Value, legacy bool) (*mcpclient.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	tr, err := transport.NewStreamableHTTP(s.MCPURL(),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + string(key.Reveal())}),
		transport.WithHTTPBasicClient(recordingHTTP(rec)))
	if err != nil {
		t.Fatal(err)
	}
	var opts []mcpclient.ClientOption
	version := mcp.ProtocolVersion20260728
	if legacy {
		version = mcp.ProtocolVersion20251125
		opts = append(opts, mcpclient.WithProtocolVersion(version))
	}
	c := mcpclient.NewClient(tr, opts...)
	ctx := ctxT(t, 30*time.Second)
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start mcp client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "e2e-agent", Version: "1.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if legacy && c.GetSessionId() == "" {
		t.Fatal("session-based client got no session")
	}
	return c, rec
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func call(t *testing.T, c *mcpclient.Client, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	return c.CallTool(ctxT(t, 30*time.Second), req)
}

func toolNames(t *testing.T, c *mcpclient.Client) []string {
	t.Helper()
	res, err := c.ListTools(ctxT(t, 30*time.Second), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var out []string
	for _, tl := range res.Tools {
		out = append(out, tl.Name)
	}
	return out
}

// opClient is an operator API client whose responses are recorded.
func opClient(t *testing.T, s *devstack.Stack) (*client.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	c, err := client.New(client.Config{BaseURL: s.EdgeURL, Token: s.AdminToken, HTTP: recordingHTTP(rec)})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// auditRows polls the audit trail of a request until pred holds.
func auditRows(t *testing.T, c *client.Client, tenant string, q client.AuditQuery, pred func([]client.AuditRow) bool) []client.AuditRow {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var rows []client.AuditRow
	var err error
	for time.Now().Before(deadline) {
		rows, err = c.Audit(ctxT(t, 20*time.Second), tenant, q)
		if err == nil && pred(rows) {
			return rows
		}
		time.Sleep(250 * time.Millisecond) // polling interval of a bounded wait
	}
	t.Fatalf("audit rows for %+v never matched (last err %v): %s", q, err, mustJSON(rows))
	return nil
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func str(r client.AuditRow, k string) string {
	v, _ := r[k].(string)
	return v
}

func hasRow(rows []client.AuditRow, kind string, kv ...string) bool {
	for _, r := range rows {
		if str(r, "kind") != kind {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if str(r, kv[i]) != kv[i+1] {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// encodings returns the forms a secret must never appear in.
func encodings(v []byte) map[string][]byte {
	js, _ := json.Marshal(string(v))
	return map[string][]byte{
		"raw":        v,
		"base64":     []byte(base64.StdEncoding.EncodeToString(v)),
		"base64url":  []byte(base64.RawURLEncoding.EncodeToString(v)),
		"url":        []byte(url.QueryEscape(string(v))),
		"json":       js[1 : len(js)-1],
		"base64-mid": []byte(base64.StdEncoding.EncodeToString(append([]byte("x"), v...))[4:]),
	}
}

// assertAbsent fails when any encoding of any secret appears in data.
func assertAbsent(t *testing.T, where string, data []byte, secrets map[string]secret.Value) {
	t.Helper()
	for name, s := range secrets {
		v := s.Reveal()
		if len(v) < 8 {
			continue
		}
		for enc, needle := range encodings(v) {
			if len(needle) >= 8 && bytes.Contains(data, needle) {
				t.Errorf("%s (%s) found in %s", name, enc, where)
			}
		}
	}
}

func readDirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !info.Mode().IsRegular() || info.Size() > 64<<20 {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			out[p] = b
		}
		return nil
	})
	return out
}

func cmdline(pid int) []byte {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return bytes.ReplaceAll(b, []byte{0}, []byte(" "))
}

func environ(pid int) []byte {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return b
}

func isUniformError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unknown or not permitted tool")
}
