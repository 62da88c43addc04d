package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the peer if the runner dies, so no peer outlives it.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
