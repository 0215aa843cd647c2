package spicedbproc

import "syscall"

// sysProcAttr makes the kernel kill spicedb if the process that started
// it dies without stopping it, so no spicedb outlives a crashed test or
// launcher.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
