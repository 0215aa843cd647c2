package proc

import "syscall"

// sysProcAttr makes the kernel kill the child if the thread that started it
// dies without stopping it, so no child outlives a crashed test or launcher.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
