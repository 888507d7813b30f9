//go:build unix

package plugin

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the plug-in in a process group of its own, so that
// killing it kills the children it started too, and a terminal's Ctrl-C
// reaches redraft, which closes it, rather than the plug-in directly.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the plug-in's process group with SIGKILL.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
