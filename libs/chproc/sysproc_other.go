//go:build !linux

package chproc

import "syscall"

// sysProcAttr returns nil: only Linux can tie the server's life to its
// parent's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
