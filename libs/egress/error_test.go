package egress_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/egress"
)

const canary = "sk_live_CANARY_7f3a9c2e51"

// canaryForms are the ways a leaked canary could appear.
var canaryForms = []string{
	canary,
	url.QueryEscape(canary),
	base64.StdEncoding.EncodeToString([]byte(canary)),
	base64.RawURLEncoding.EncodeToString([]byte(canary)),
}

func assertNoCanary(t *testing.T, where, s string) {
	t.Helper()
	for _, f := range canaryForms {
		if strings.Contains(s, f) {
			t.Fatalf("%s leaks the canary: %s", where, s)
		}
	}
}

// errorTexts returns every message reachable from err: its own in all verbs
// and that of every error it wraps.
func errorTexts(err error) []string {
	out := []string{fmt.Sprintf("%v|%+v|%s|%q|%#v", err, err, err, err, err)}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		out = append(out, e.Error(), fmt.Sprintf("%+v|%#v", e, e))
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func TestErrorsNeverCarryTheURLOrHeaders(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := newEnvWithLog(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("mode") {
		case "slow":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "big":
			_, _ = io.WriteString(w, strings.Repeat(canary, 100))
		case "garbage":
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 " + canary + " OK\r\nX: " + canary + "\r\n\r\n")
			_ = buf.Flush()
			_ = conn.Close()
		case "reset":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}
	}))

	// A port on 127.0.0.1 that nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()

	tlsSrv := httptest.NewUnstartedServer(okHandler("x"))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsPort := tlsSrv.Listener.Addr().(*net.TCPAddr).Port

	e.resolver.set("internal.test", "10.0.0.1")
	e.resolver.set("closed.test", "127.0.0.1")
	e.resolver.set("example.com", "127.0.0.1")
	rules := mustRules(t, []string{"api.test", "internal.test", "missing.test", "closed.test", "example.com"}, loopbackOnly())
	secretPath := "/v1/" + canary + "/items?api_key=" + canary + "&mode="

	tests := []struct {
		name   string
		url    string
		header string
		want   egress.ErrorCode
	}{
		{name: "host not allowed", url: "http://nope.test" + secretPath, want: egress.CodeHostNotAllowed},
		{name: "address blocked", url: "http://internal.test" + secretPath, want: egress.CodeAddressBlocked},
		{name: "dns", url: "http://missing.test" + secretPath, want: egress.CodeDNS},
		{name: "connect", url: fmt.Sprintf("http://closed.test:%d%s", closedPort, secretPath), want: egress.CodeConnect},
		{name: "timeout", url: e.srv.url("api.test", secretPath+"slow"), want: egress.CodeTimeout},
		{name: "too large", url: e.srv.url("api.test", secretPath+"big"), want: egress.CodeResponseTooLarge},
		{name: "malformed response", url: e.srv.url("api.test", secretPath+"garbage"), want: egress.CodeProtocol},
		{name: "connection reset", url: e.srv.url("api.test", secretPath+"reset"), want: egress.CodeProtocol},
		{name: "tls", url: fmt.Sprintf("https://example.com:%d%s", tlsPort, secretPath), want: egress.CodeTLS},
		{name: "scheme", url: "ftp://api.test" + secretPath, want: egress.CodeInvalidRequest},
		{name: "user info", url: "http://" + canary + ":" + canary + "@api.test" + secretPath, want: egress.CodeInvalidRequest},
		{name: "invalid header value", url: e.srv.url("api.test", secretPath), header: canary + "\r\nX-Injected: " + canary, want: egress.CodeProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := get(t, tt.url)
			req.Header.Set("X-Api-Key", canary)
			req.Header.Set("Authorization", "Bearer "+canary)
			if tt.header != "" {
				req.Header["X-Api-Key"] = []string{tt.header}
			}
			_, err := e.client.Do(context.Background(), req, rules)
			if codeOf(err) != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			for _, s := range errorTexts(err) {
				assertNoCanary(t, "error", s)
			}
		})
	}
	assertNoCanary(t, "log", e.logs.String())
	if !strings.Contains(e.logs.String(), "egress address blocked") {
		t.Fatalf("refusal not logged; logs:\n%s", e.logs.String())
	}
}

func TestResponseRedactsItself(t *testing.T) {
	e := newEnvWithLog(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Echo", canary)
		_, _ = io.WriteString(w, `{"token":"`+canary+`"}`)
	}))
	resp, err := e.do(t, e.srv.url("api.test", "/"), e.rules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Body), canary) {
		t.Fatal("body not returned to the caller")
	}
	for _, s := range []string{fmt.Sprint(resp), fmt.Sprintf("%+v", resp), fmt.Sprintf("%#v", resp), resp.String()} {
		assertNoCanary(t, "formatted response", s)
	}
	e.logger.Info("response", slog.Any("resp", resp))
	assertNoCanary(t, "logged response", e.logs.String())
	if !strings.Contains(e.logs.String(), `"status":200`) {
		t.Fatalf("response log value lacks the status: %s", e.logs.String())
	}
}

func TestRedirectTargetErrorsHideTheLocation(t *testing.T) {
	e := newEnvWithLog(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Location"] = []string{r.URL.Query().Get("loc")}
		w.WriteHeader(http.StatusFound)
	}))
	for _, loc := range []string{"http://%zz/" + canary, "mailto:" + canary, "//" + canary + "%"} {
		t.Run(loc, func(t *testing.T) {
			resp, err := e.do(t, e.srv.url("api.test", "/?loc="+url.QueryEscape(loc)), e.rules)
			if err != nil {
				t.Fatal(err)
			}
			_, err = egress.RedirectTarget(resp)
			if codeOf(err) != egress.CodeNotRedirect {
				t.Fatalf("err = %v, want %s", err, egress.CodeNotRedirect)
			}
			for _, s := range errorTexts(err) {
				assertNoCanary(t, "redirect error", s)
			}
		})
	}
}

type loggedEnv struct {
	*env
	logs   *logBuffer
	logger *slog.Logger
}

func newEnvWithLog(t *testing.T, h http.Handler) *loggedEnv {
	t.Helper()
	logs := &logBuffer{}
	logger := logs.logger()
	e := newEnv(t, h, egress.Config{
		Logger:           logger,
		Timeout:          300 * time.Millisecond,
		MaxResponseBytes: 1024,
		TLSConfig:        &tls.Config{RootCAs: x509.NewCertPool()},
	})
	return &loggedEnv{env: e, logs: logs, logger: logger}
}
