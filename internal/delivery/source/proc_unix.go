//go:build unix

package source

import (
	"os/exec"
	"syscall"
)

// killProcessGroup runs cmd in a process group of its own and makes cancellation kill the
// whole group: git leaves the network to helpers (git-remote-https, ssh) that would
// otherwise outlive it and keep its pipes open.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
