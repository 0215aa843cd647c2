package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/tools/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Canaries: neither may appear in any output.
const (
	tokenCanary  = "tok-canary-4f9a2c81e0"
	secretCanary = "sek-canary-77b1e0d93a"
)

// harness runs the CLI against a fake edge, from a working directory whose
// ./.mcpgw/admin.token holds the token.
type harness struct {
	edge      *fakeEdge
	work      string
	config    string
	env       cli.Env
	terminal  cli.Terminal
	noDefault bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{edge: newFakeEdge(t, tokenCanary), work: t.TempDir(), config: filepath.Join(t.TempDir(), "mcpgw")}
	h.env.Server = h.edge.URL()
	if err := os.Mkdir(filepath.Join(h.work, cli.StateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.work, cli.StateDir, cli.AdminTokenFile), tokenCanary+"\n", 0o600)
	return h
}

// result is one run's outcome.
type result struct {
	stdout, stderr string
	code           int
}

func (h *harness) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c, err := cli.New(cli.Config{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Terminal: h.terminal, Env: h.env, WorkDir: h.work, ConfigDir: h.config,
	})
	if err != nil {
		t.Fatal(err)
	}
	code := c.Run(context.Background(), args)
	res := result{stdout: out.String(), stderr: errOut.String(), code: code}
	assertNoSecret(t, res.stdout+res.stderr, tokenCanary)
	assertNoSecret(t, res.stdout+res.stderr, secretCanary)
	return res
}

// normalize replaces the run's random parts for golden files.
func (h *harness) normalize(s string) string {
	u, _ := url.Parse(h.edge.URL())
	return strings.NewReplacer(h.edge.URL(), "http://EDGE", u.Host, "EDGE", h.config, "$CONFIG", h.work, "$WORK",
		h.edge.brokerKey().Public().Fingerprint(), "FINGERPRINT").Replace(s)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// assertNoSecret fails if s holds canary raw, base64-, hex-, URL- or
// JSON-escaped.
func assertNoSecret(t *testing.T, s, canary string) {
	t.Helper()
	j, _ := json.Marshal(canary)
	forms := map[string]string{
		"raw":       canary,
		"base64":    base64.StdEncoding.EncodeToString([]byte(canary)),
		"base64url": base64.RawURLEncoding.EncodeToString([]byte(canary)),
		"hex":       hex.EncodeToString([]byte(canary)),
		"url":       url.QueryEscape(canary),
		"json":      strings.Trim(string(j), `"`),
	}
	for name, f := range forms {
		if strings.Contains(s, f) {
			t.Fatalf("output holds the secret %s (%s form):\n%s", canary, name, s)
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./cli -update to create it): %v", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (run go test ./cli -update after checking the change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	commands := [][]string{
		{}, {"import"}, {"map-auth"}, {"approve"}, {"select"},
		{"secret"}, {"secret", "put"},
		{"binding"}, {"binding", "create"}, {"binding", "slots"},
		{"grant"}, {"grant", "add"}, {"grant", "revoke"},
		{"agent"}, {"agent", "key"}, {"agent", "key", "create"}, {"agent", "key", "revoke"},
		{"audit"}, {"audit", "query"},
	}
	for _, c := range commands {
		name := strings.Join(append([]string{"mcpgw"}, c...), "_")
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			res := h.run(t, "", append(c, "--help")...)
			if res.code != cli.ExitOK || res.stderr != "" {
				t.Fatalf("help: exit %d, stderr %q", res.code, res.stderr)
			}
			golden(t, filepath.Join("testdata", "help", name+".golden"), res.stdout)
		})
	}
}

func TestOutputGolden(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"import_file", "", []string{"import", "testdata/petstore.yaml", "--name", "Petstore"}, 0},
		{"import_stdin_new_version", "openapi: 3.0.3\n", []string{"import", "-", "--name", "Petstore", "--source-id", "src_petstore"}, 0},
		{"import_json", "", []string{"import", "testdata/petstore.yaml", "--name", "Petstore", "-o", "json"}, 0},
		{"import_missing_name", "", []string{"import", "testdata/petstore.yaml"}, 2},
		{"import_url", "", []string{"import", "--url", "https://specs.petstore.example/openapi.yaml?token=t", "--allow-host", "specs.petstore.example", "--allow-prefix", "10.0.0.0/8", "--name", "Petstore"}, 0},
		{"import_url_json", "", []string{"import", "--url", "https://specs.petstore.example/openapi.yaml", "--allow-host", "specs.petstore.example", "--name", "Petstore", "-o", "json"}, 0},
		{"import_url_and_file", "", []string{"import", "testdata/petstore.yaml", "--url", "https://specs.petstore.example/openapi.yaml", "--name", "Petstore"}, 2},
		{"import_url_no_allow_host", "", []string{"import", "--url", "https://specs.petstore.example/openapi.yaml", "--name", "Petstore"}, 1},
		{"import_allow_host_without_url", "", []string{"import", "testdata/petstore.yaml", "--allow-host", "specs.petstore.example", "--name", "Petstore"}, 2},
		{"map_auth_api_key", "", []string{"map-auth", "src_petstore", "inferred:header:X-Sig", "--kind", "apiKey", "--in", "header", "--param", "X-Sig"}, 0},
		{"map_auth_json", "", []string{"map-auth", "src_petstore", "PartnerAuth", "--kind", "http-bearer", "-o", "json"}, 0},
		{"map_auth_missing_kind", "", []string{"map-auth", "src_petstore", "PartnerAuth"}, 2},
		{"map_auth_missing_param", "", []string{"map-auth", "src_petstore", "PartnerAuth", "--kind", "apiKey", "--in", "header"}, 1},
		{"approve_proposed_hosts", "", []string{"approve", "src_petstore", "1"}, 0},
		{"approve_hosts", "", []string{"approve", "src_petstore", "1", "--allow-host", "api.petstore.example", "--allow-host", "127.0.0.1:9000", "--allow-prefix", "127.0.0.1/32"}, 0},
		{"approve_bad_version", "", []string{"approve", "src_petstore", "v1"}, 2},
		{"select", "", []string{"select", "src_petstore", "list_pets", "create_pet"}, 0},
		{"select_json", "", []string{"select", "src_petstore", "list_pets", "-o", "json"}, 0},
		{"secret_put_stdin", secretCanary + "\n", []string{"secret", "put", "pets-key"}, 0},
		{"secret_put_json", secretCanary, []string{"secret", "put", "pets-key", "-o", "json"}, 0},
		{"secret_put_argument", "", []string{"secret", "put", "pets-key", "typed-by-mistake"}, 2},
		{"binding_create_api_key", "", []string{"binding", "create", "--name", "pets-key", "--strategy", "api_key", "--in", "header", "--param", "X-API-Key",
			"--secret-ref", "local://demo/pets-key#v1", "--host", "api.petstore.example", "--source-id", "src_petstore", "--scheme", "ApiKeyAuth", "--environment", "dev"}, 0},
		{"binding_create_bearer", "", []string{"binding", "create", "--name", "pets-oauth", "--strategy", "bearer",
			"--secret-ref", "local://demo/pets-token#v1", "--host", "api.petstore.example", "--host", "uploads.petstore.example", "--source-id", "src_petstore", "--scheme", "OAuth"}, 0},
		{"binding_create_missing_param", "", []string{"binding", "create", "--name", "k", "--strategy", "api_key",
			"--secret-ref", "local://demo/k#v1", "--host", "h", "--source-id", "s", "--scheme", "x"}, 2},
		{"binding_slots", "", []string{"binding", "slots", "src_petstore"}, 0},
		{"binding_slots_json", "", []string{"binding", "slots", "src_petstore", "-o", "json"}, 0},
		{"binding_slots_unknown", "", []string{"binding", "slots", "src_nope"}, 1},
		{"grant_add_agent", "", []string{"grant", "add", "list_pets", "--agent", "demo-agent"}, 0},
		{"grant_add_user", "", []string{"grant", "add", "list_pets", "--user", "alice", "-o", "json"}, 0},
		{"grant_add_both", "", []string{"grant", "add", "list_pets", "--user", "alice", "--agent", "demo-agent"}, 2},
		{"grant_revoke", "", []string{"grant", "revoke", "grt_agent_1"}, 0},
		{"grant_revoke_missing", "", []string{"grant", "revoke", "grt_missing"}, 1},
		{"agent_key_create", "", []string{"agent", "key", "create", "demo-agent", "--user", "demo-user", "--environment", "dev", "--surface", "mcp", "--expires-in", "30d"}, 0},
		{"agent_key_create_json", "", []string{"agent", "key", "create", "ci-bot", "--surface", "ci", "-o", "json"}, 0},
		{"agent_key_create_bad_expiry", "", []string{"agent", "key", "create", "ci-bot", "--expires-in", "soon"}, 2},
		{"agent_key_revoke", "", []string{"agent", "key", "revoke", "demo-agent", "key_1"}, 0},
		{"audit_query_request", "", []string{"audit", "query", "--request-id", "req_42"}, 0},
		{"audit_query_binding_json", "", []string{"audit", "query", "--binding-id", "bnd_pets", "--limit", "2", "-o", "json"}, 0},
		{"audit_query_empty", "", []string{"audit", "query", "--request-id", "req_none"}, 0},
		{"audit_query_neither", "", []string{"audit", "query"}, 2},
		{"unknown_command", "", []string{"grnt", "add"}, 2},
		{"unknown_output", "", []string{"grant", "revoke", "grt_1", "-o", "yaml"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.run(t, tt.stdin, tt.args...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
			}
			if tt.code != 0 {
				assertOneLine(t, res.stderr)
			}
			got := fmt.Sprintf("$ mcpgw %s\n--- stdout\n%s--- stderr\n%s--- exit %d\n", strings.Join(tt.args, " "), res.stdout, res.stderr, res.code)
			golden(t, filepath.Join("testdata", "output", tt.name+".golden"), h.normalize(got))
		})
	}
}

func assertOneLine(t *testing.T, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.HasPrefix(stderr, "mcpgw: ") {
		t.Fatalf("stderr is not one error line: %q", stderr)
	}
}

func TestJSONOutputIsValid(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{
		{"import", "testdata/petstore.yaml", "--name", "Petstore"},
		{"approve", "src_petstore", "1"},
		{"select", "src_petstore", "list_pets"},
		{"secret", "put", "pets-key"},
		{"binding", "create", "--name", "b", "--strategy", "basic", "--secret-ref", "r", "--host", "h", "--source-id", "s", "--scheme", "x"},
		{"grant", "add", "t", "--agent", "a"},
		{"grant", "revoke", "g"},
		{"agent", "key", "create", "a"},
		{"agent", "key", "revoke", "a", "k"},
		{"audit", "query", "--request-id", "req_42"},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			res := h.run(t, "value", append(args, "-o", "json")...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(res.stdout), &v); err != nil {
				t.Fatalf("stdout is not a JSON object: %v\n%s", err, res.stdout)
			}
		})
	}
}

func TestImportUploadsTheDocument(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		want        func(t *testing.T) []byte
	}{
		{"file", "", []string{"import", "testdata/petstore.yaml", "--name", "Pet Store"}, func(t *testing.T) []byte {
			b, err := os.ReadFile("testdata/petstore.yaml")
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"stdin", "openapi: 3.1.0\ninfo: {title: x, version: '1'}\npaths: {}\n", []string{"import", "-", "--name", "Pet Store"}, func(*testing.T) []byte {
			return []byte("openapi: 3.1.0\ninfo: {title: x, version: '1'}\npaths: {}\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if res := h.run(t, tt.stdin, tt.args...); res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			reqs := h.edge.Requests()
			if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/tenants/demo/sources" {
				t.Fatalf("requests = %+v", reqs)
			}
			if q, _ := url.ParseQuery(reqs[0].RawQuery); q.Get("name") != "Pet Store" {
				t.Fatalf("query = %q", reqs[0].RawQuery)
			}
			if !bytes.Equal(reqs[0].Body, tt.want(t)) {
				t.Fatalf("uploaded %q", reqs[0].Body)
			}
		})
	}
}

func TestImportURLSendsNoBody(t *testing.T) {
	h := newHarness(t)
	specURL := "https://specs.petstore.example/v1/openapi.yaml?token=t&x=1"
	res := h.run(t, "ignored stdin", "import", "--url", specURL, "--allow-host", "specs.petstore.example", "--allow-host", "*.cdn.petstore.example",
		"--allow-prefix", "10.0.0.0/8", "--name", "Pet Store", "--source-id", "src_petstore")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	reqs := h.edge.Requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/v1/tenants/demo/sources" || len(reqs[0].Body) != 0 {
		t.Fatalf("requests = %+v", reqs)
	}
	q, err := url.ParseQuery(reqs[0].RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("name") != "Pet Store" || q.Get("url") != specURL || q.Get("source_id") != "src_petstore" ||
		!slices.Equal(q["allow_host"], []string{"specs.petstore.example", "*.cdn.petstore.example"}) || !slices.Equal(q["allow_prefix"], []string{"10.0.0.0/8"}) {
		t.Fatalf("query = %v", q)
	}
}

func TestSecretPutSealsTheSecret(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		terminal *fakeTerminal
		file     string
		want     string
	}{
		{"stdin with newline", secretCanary + "\n", nil, "", secretCanary},
		{"stdin with CRLF", secretCanary + "\r\n", nil, "", secretCanary},
		{"stdin without newline", secretCanary, nil, "", secretCanary},
		{"stdin keeps inner newlines", "user:" + secretCanary + "\nline2\n", nil, "", "user:" + secretCanary + "\nline2"},
		{"prompt", "", &fakeTerminal{answers: []string{secretCanary, secretCanary}}, "", secretCanary},
		{"file", "", nil, secretCanary + "\n", secretCanary},
		{"file beats a terminal", "", &fakeTerminal{}, secretCanary, secretCanary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			args := []string{"secret", "put", "pets-key", "--tenant", "acme"}
			if tt.terminal != nil {
				h.terminal = tt.terminal
			}
			if tt.file != "" {
				p := filepath.Join(t.TempDir(), "secret")
				writeFile(t, p, tt.file, 0o600)
				args = append(args, "--from-file", p)
			}
			res := h.run(t, tt.stdin, args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if res.stdout != "local://acme/pets-key#v1\n" {
				t.Fatalf("stdout = %q, want the secret reference only", res.stdout)
			}
			got, ok := h.edge.Secret("acme", "pets-key")
			if !ok || string(got) != tt.want {
				t.Fatalf("the broker opened %q, want %q", got, tt.want)
			}
			for _, r := range h.edge.Requests() {
				assertNoSecret(t, string(r.Body)+r.RawQuery+r.Path, secretCanary)
			}
			if tt.terminal != nil && tt.file == "" && len(tt.terminal.prompts) != 2 {
				t.Fatalf("prompts = %q, want two", tt.terminal.prompts)
			}
			if tt.file != "" && tt.terminal != nil && len(tt.terminal.prompts) != 0 {
				t.Fatalf("prompted despite --from-file")
			}
			pins, err := os.ReadFile(filepath.Join(h.config, cli.PinsFile))
			if err != nil {
				t.Fatalf("no pins written: %v", err)
			}
			assertNoSecret(t, string(pins), secretCanary)
			assertNoSecret(t, string(pins), tokenCanary)
		})
	}
}

// fakeTerminal answers prompts from a list.
type fakeTerminal struct {
	answers []string
	prompts []string
}

func (f *fakeTerminal) ReadSecret(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return nil, errors.New("end of input")
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func TestSecretPutRefusals(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		terminal *fakeTerminal
		args     []string
		file     *os.FileMode
		code     int
		want     string
	}{
		{"secret as argument", "", nil, []string{"secret", "put", "pets-key", secretCanary}, nil, 2, "never taken as an argument"},
		{"secret as second argument after a flag", "", nil, []string{"secret", "put", "--tenant", "acme", "pets-key", "x" + secretCanary}, nil, 2, "never taken as an argument"},
		{"secret as an unknown flag's value", "", nil, []string{"secret", "put", "pets-key", "--value=" + secretCanary}, nil, 2, "unknown flag --value"},
		{"secret in a shorthand group", "", nil, []string{"secret", "put", "pets-key", "-s" + secretCanary}, nil, 2, "unknown flag -s"},
		{"secret in place of the subcommand", "", nil, []string{"secret", secretCanary}, nil, 2, "unknown command"},
		{"bad name", "x", nil, []string{"secret", "put", "Pets Key"}, nil, 2, "NAME must match"},
		{"empty stdin", "", nil, []string{"secret", "put", "pets-key"}, nil, 1, "the secret is empty"},
		{"newline only", "\n", nil, []string{"secret", "put", "pets-key"}, nil, 1, "the secret is empty"},
		{"prompt entries differ", "", &fakeTerminal{answers: []string{secretCanary, secretCanary + "x"}}, []string{"secret", "put", "pets-key"}, nil, 1, "the two entries differ"},
		{"file readable by others", "", nil, []string{"secret", "put", "pets-key"}, modePtr(0o644), 1, "mode 0600 or 0400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.terminal != nil {
				h.terminal = tt.terminal
			}
			args := tt.args
			if tt.file != nil {
				p := filepath.Join(t.TempDir(), "secret")
				writeFile(t, p, secretCanary, *tt.file)
				args = append(args, "--from-file", p)
			}
			res := h.run(t, tt.stdin, args...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", res.code, res.stderr, tt.code, tt.want)
			}
			assertOneLine(t, res.stderr)
			if res.stdout != "" {
				t.Fatalf("stdout = %q", res.stdout)
			}
			for _, r := range h.edge.Requests() {
				if strings.HasSuffix(r.Path, "/secrets") {
					t.Fatalf("a secret was sent: %+v", r)
				}
			}
		})
	}
}

func modePtr(m os.FileMode) *os.FileMode { return &m }

func TestBrokerKeyPinning(t *testing.T) {
	h := newHarness(t)

	res := h.run(t, "one", "secret", "put", "first")
	if res.code != 0 || !strings.Contains(res.stderr, "Pinned the broker key") {
		t.Fatalf("first use: exit %d, stderr %q", res.code, res.stderr)
	}
	res = h.run(t, "two", "secret", "put", "second")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("pinned key: exit %d, stderr %q", res.code, res.stderr)
	}
	if got, _ := h.edge.Secret("demo", "second"); string(got) != "two" {
		t.Fatalf("second secret = %q", got)
	}

	t.Run("changed key refused", func(t *testing.T) {
		h.edge.rotate(t)
		before := len(h.edge.Requests())
		res := h.run(t, secretCanary, "secret", "put", "third")
		if res.code != 1 || !strings.Contains(res.stderr, "the broker key of ") || !strings.Contains(res.stderr, "changed") {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		assertOneLine(t, res.stderr)
		for _, r := range h.edge.Requests()[before:] {
			if strings.HasSuffix(r.Path, "/secrets") {
				t.Fatal("a secret was sent to a changed key")
			}
		}
	})

	t.Run("broker key file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "broker.pub")
		writeFile(t, p, h.edge.brokerKey().Public().String()+"\n", 0o644)
		calls := h.edge.KeysCalls()
		res := h.run(t, secretCanary, "secret", "put", "fourth", "--broker-key-file", p)
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		if h.edge.KeysCalls() != calls {
			t.Fatal("the server's key was fetched despite --broker-key-file")
		}
		if got, _ := h.edge.Secret("demo", "fourth"); string(got) != secretCanary {
			t.Fatalf("secret = %q", got)
		}
	})

	t.Run("local stack key file by default", func(t *testing.T) {
		h := newHarness(t)
		writeFile(t, filepath.Join(h.work, cli.StateDir, cli.BrokerKeyFile), h.edge.brokerKey().Public().String()+"\n", 0o644)
		res := h.run(t, secretCanary, "secret", "put", "fifth")
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		if h.edge.KeysCalls() != 0 {
			t.Fatal("the server's key was fetched despite ./.mcpgw/broker.seal.pub")
		}
		if _, err := os.Stat(filepath.Join(h.config, cli.PinsFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("pins written: %v", err)
		}
	})

	t.Run("wrong key file", func(t *testing.T) {
		other, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "broker.pub")
		writeFile(t, p, other.Public().String(), 0o644)
		res := h.run(t, secretCanary, "secret", "put", "sixth", "--broker-key-file", p)
		if res.code != 1 || !strings.Contains(res.stderr, "does not open") {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
	})

	t.Run("no config dir", func(t *testing.T) {
		h := newHarness(t)
		h.config = ""
		res := h.run(t, secretCanary, "secret", "put", "seventh")
		if res.code != 1 || !strings.Contains(res.stderr, "--broker-key-file") {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
	})
}

func TestTokenSources(t *testing.T) {
	other := "tok-other-2b9d"
	tests := []struct {
		name  string
		setup func(t *testing.T, h *harness) []string
		code  int
		want  string
	}{
		{"default admin token file", func(*testing.T, *harness) []string { return nil }, 0, ""},
		{"token file flag", func(t *testing.T, h *harness) []string {
			p := filepath.Join(t.TempDir(), "tok")
			writeFile(t, p, tokenCanary, 0o400)
			writeFile(t, filepath.Join(h.work, cli.StateDir, cli.AdminTokenFile), other, 0o600)
			return []string{"--token-file", p}
		}, 0, ""},
		{"MCPGW_TOKEN_FILE", func(t *testing.T, h *harness) []string {
			p := filepath.Join(t.TempDir(), "tok")
			writeFile(t, p, tokenCanary, 0o600)
			h.env.TokenFile = p
			h.env.Token = secret.New([]byte(other))
			return nil
		}, 0, ""},
		{"MCPGW_TOKEN", func(t *testing.T, h *harness) []string {
			h.env.Token = secret.New([]byte(tokenCanary + "\n"))
			writeFile(t, filepath.Join(h.work, cli.StateDir, cli.AdminTokenFile), other, 0o600)
			return nil
		}, 0, ""},
		{"token file readable by others", func(t *testing.T, h *harness) []string {
			writeFile(t, filepath.Join(h.work, cli.StateDir, cli.AdminTokenFile), tokenCanary, 0o644)
			return nil
		}, 1, "chmod 600"},
		{"no token anywhere", func(t *testing.T, h *harness) []string {
			if err := os.Remove(filepath.Join(h.work, cli.StateDir, cli.AdminTokenFile)); err != nil {
				t.Fatal(err)
			}
			return nil
		}, 1, "no operator token"},
		{"wrong token", func(t *testing.T, h *harness) []string {
			h.env.Token = secret.New([]byte(other))
			return nil
		}, 1, "server refused (401 unauthenticated): invalid operator token (check the operator token"},
		{"token as a flag", func(*testing.T, *harness) []string { return []string{"--token", tokenCanary} }, 2, "the token is never a flag value"},
		{"token as a flag with =", func(*testing.T, *harness) []string { return []string{"--token=" + tokenCanary} }, 2, "the token is never a flag value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			extra := tt.setup(t, h)
			res := h.run(t, "", append([]string{"grant", "revoke", "grt_1"}, extra...)...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", res.code, res.stderr, tt.code, tt.want)
			}
			if tt.code == 0 {
				reqs := h.edge.Requests()
				if len(reqs) != 1 || reqs[0].Auth != "Bearer "+tokenCanary {
					t.Fatalf("requests = %d, auth of the last = %q", len(reqs), reqs[len(reqs)-1].Auth)
				}
			}
		})
	}
}

// TestSecretsScrubbedFromServerErrors checks that a server which reflects
// the token or the secret in an error message does not get it printed.
func TestSecretsScrubbedFromServerErrors(t *testing.T) {
	tests := []struct {
		name, echo, stdin string
		args              []string
	}{
		{"token", "Bearer " + tokenCanary, "", []string{"grant", "revoke", "grt_1"}},
		{"secret", "value " + secretCanary + " for pets-key", secretCanary, []string{"secret", "put", "pets-key", "--broker-key-file", "PUB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := filepath.Join(t.TempDir(), "broker.pub")
			writeFile(t, p, h.edge.brokerKey().Public().String(), 0o644)
			for i, a := range tt.args {
				if a == "PUB" {
					tt.args[i] = p
				}
			}
			h.edge.setEcho(tt.echo)
			res := h.run(t, tt.stdin, tt.args...)
			if res.code != 1 || !strings.Contains(res.stderr, secret.Redacted) {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			assertOneLine(t, res.stderr)
		})
	}
}

func TestServerUnreachable(t *testing.T) {
	h := newHarness(t)
	h.edge.srv.Close()
	res := h.run(t, "", "grant", "revoke", "grt_1")
	if res.code != 1 || !strings.Contains(res.stderr, "connection refused") || !strings.Contains(res.stderr, "is the edge running?") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	assertOneLine(t, res.stderr)
}

func TestServerFlagAndEnv(t *testing.T) {
	h := newHarness(t)
	h.env.Server = "http://127.0.0.1:1"
	res := h.run(t, "", "grant", "revoke", "grt_1", "--server", h.edge.URL()+"/")
	if res.code != 0 {
		t.Fatalf("--server did not win over MCPGW_SERVER: %s", res.stderr)
	}
	res = h.run(t, "", "grant", "revoke", "grt_1", "--server", "ftp://127.0.0.1")
	if res.code != 1 || !strings.Contains(res.stderr, "base URL") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestPathSegmentsEscapedOnce checks that IDs reach the server as sent,
// escaped once.
func TestPathSegmentsEscapedOnce(t *testing.T) {
	h := newHarness(t)
	res := h.run(t, "", "agent", "key", "revoke", "demo agent", "key/1%")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	reqs := h.edge.Requests()
	if want := "/api/v1/tenants/demo/agents/demo%20agent/keys/key%2F1%25"; reqs[0].Path != want {
		t.Fatalf("path = %q, want %q", reqs[0].Path, want)
	}
}

func TestTerminalEscapesNeutralized(t *testing.T) {
	h := newHarness(t)
	res := h.run(t, "", "audit", "query", "--request-id", "req_42")
	if strings.ContainsRune(res.stdout, 0x1b) {
		t.Fatalf("an escape character reached the terminal: %q", res.stdout)
	}
	if !strings.Contains(res.stdout, `\u001b[31m`) {
		t.Fatalf("the escape was not shown escaped: %q", res.stdout)
	}
}
