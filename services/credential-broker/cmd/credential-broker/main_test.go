package main

import (
	"strings"
	"testing"
)

func TestRunRefusesBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-password", "x"}, "flag provided but not defined"},
		{"bad log format", []string{"-log-format", "xml"}, "log-format"},
		{"bad log level", []string{"-log-level", "loud"}, "log-level"},
		{"stray argument", []string{"serve"}, "unexpected arguments"},
		{"no state directory", []string{"-identity-file", "id", "-keyring-file", "kr", "-seal-key-file", "k"}, "state directory is required"},
		{"production without NATS user", []string{"-production", "-state-dir", t.TempDir()}, "NATS password file"},
		{"no seal key", []string{"-state-dir", t.TempDir(), "-identity-file", "id", "-keyring-file", "kr"}, "seal key file is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run(%q) = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}
