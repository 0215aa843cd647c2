package chproc

import "syscall"

// sysProcAttr makes the kernel kill the server if the process that started
// it dies without stopping it, so no server outlives a crashed test or
// launcher.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
