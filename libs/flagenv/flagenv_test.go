package flagenv_test

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/flagenv"
)

func lookup(env map[string]string) flagenv.Lookup {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		wantDur time.Duration
		wantErr string
	}{
		{name: "default", want: "nats://127.0.0.1:4222", wantDur: time.Second},
		{name: "env", env: map[string]string{"MCPGW_NATS_URL": "nats://env:4222", "MCPGW_BATCH_WAIT": "3s"}, want: "nats://env:4222", wantDur: 3 * time.Second},
		{name: "flag wins", env: map[string]string{"MCPGW_NATS_URL": "nats://env:4222"}, args: []string{"-nats-url", "nats://flag:4222"}, want: "nats://flag:4222", wantDur: time.Second},
		{name: "bad env value", env: map[string]string{"MCPGW_BATCH_WAIT": "secret-looking-value"}, wantErr: "MCPGW_BATCH_WAIT"},
		{name: "positional", args: []string{"extra"}, wantErr: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var c flagenv.Common
			c.Register(fs, "test", false)
			wait := fs.Duration("batch-wait", time.Second, "")
			err := flagenv.Parse(fs, tc.args, lookup(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "secret-looking-value") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || c.NATSURL != tc.want || *wait != tc.wantDur {
				t.Fatalf("got %q %v %v", c.NATSURL, *wait, err)
			}
		})
	}
}

func TestProductionAndLogger(t *testing.T) {
	if !flagenv.Production(lookup(map[string]string{"MCPGW_ENV": "production"})) || flagenv.Production(lookup(nil)) {
		t.Fatal("MCPGW_ENV not honoured")
	}
	var buf bytes.Buffer
	c := flagenv.Common{LogLevel: "warn", LogFormat: "json"}
	log, err := c.Logger(&buf, "edge")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"service":"edge"`) {
		t.Fatalf("log output %q", buf.String())
	}
	for _, bad := range []flagenv.Common{{LogLevel: "loud", LogFormat: "text"}, {LogLevel: "info", LogFormat: "xml"}} {
		if _, err := bad.Logger(&buf, "x"); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if flagenv.EnvName("clickhouse-password-file") != "MCPGW_CLICKHOUSE_PASSWORD_FILE" {
		t.Fatal("EnvName")
	}
}
