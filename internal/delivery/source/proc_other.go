//go:build !unix

package source

import "os/exec"

// killProcessGroup leaves cmd alone where process groups do not exist; WaitDelay still
// bounds how long a helper can hold git's pipes.
func killProcessGroup(*exec.Cmd) {}
