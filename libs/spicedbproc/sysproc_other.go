//go:build !linux

package spicedbproc

import "syscall"

// sysProcAttr returns nil: only Linux can tie the process's life to its
// parent's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
