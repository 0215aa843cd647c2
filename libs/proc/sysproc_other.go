//go:build !linux

package proc

import "syscall"

// sysProcAttr returns nil: only Linux can tie the child's life to its
// parent's.
func sysProcAttr() *syscall.SysProcAttr { return nil }
