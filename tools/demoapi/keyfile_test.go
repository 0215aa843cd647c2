package demoapi_test

import (
	"errors"
	"github.com/mcpgw/mcpgw/libs/secret"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/tools/demoapi"
)

func TestReadKeyFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // the key; empty when an error is expected
		wantErr string
	}{
		{"plain", canaryKey, 0o600, canaryKey, ""},
		{"trailing newline", canaryKey + "\n", 0o600, canaryKey, ""},
		{"trailing crlf", canaryKey + "\r\n", 0o600, canaryKey, ""},
		{"owner read only", canaryKey, 0o400, canaryKey, ""},
		{"group readable", canaryKey, 0o640, "", "mode 0600 or 0400"},
		{"other readable", canaryKey, 0o604, "", "mode 0600 or 0400"},
		{"group writable", canaryKey, 0o620, "", "mode 0600 or 0400"},
		{"empty", "", 0o600, "", "empty"},
		{"only a newline", "\n", 0o600, "", "empty"},
		{"too large", strings.Repeat("k", secret.MaxFileSize+1), 0o600, "", "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := demoapi.ReadKeyFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
				if tt.content != "" && strings.Contains(err.Error(), tt.content) {
					t.Errorf("error %q holds the file content", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadKeyFile: %v", err)
			}
			if string(got.Reveal()) != tt.want {
				t.Errorf("key = %q; want %q", got.Reveal(), tt.want)
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		_, err := demoapi.ReadKeyFile(filepath.Join(t.TempDir(), "absent"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v; want os.ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := demoapi.ReadKeyFile(dir); !errors.Is(err, secret.ErrPermissions) {
			t.Errorf("err = %v; want secret.ErrPermissions (not a regular file)", err)
		}
	})
}

func TestCheckListenAddr(t *testing.T) {
	tests := []struct {
		addr        string
		allowRemote bool
		wantErr     bool
	}{
		{"127.0.0.1:8090", false, false},
		{"127.0.0.2:0", false, false},
		{"[::1]:8090", false, false},
		{"localhost:8090", false, false},
		{"0.0.0.0:8090", false, true},
		{":8090", false, true},
		{"[::]:8090", false, true},
		{"192.0.2.10:8090", false, true},
		{"example.internal:8090", false, true},
		{"0.0.0.0:8090", true, false},
		{":8090", true, false},
		{"127.0.0.1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := demoapi.CheckListenAddr(tt.addr, tt.allowRemote)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckListenAddr(%q, %v) = %v; want error %v", tt.addr, tt.allowRemote, err, tt.wantErr)
			}
		})
	}
	if err := demoapi.CheckListenAddr("0.0.0.0:1", false); !errors.Is(err, demoapi.ErrNotLoopback) {
		t.Errorf("err = %v; want ErrNotLoopback", err)
	}
}
