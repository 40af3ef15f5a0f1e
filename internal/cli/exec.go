package cli

import (
	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/secrets/vaultexec"
)

// newExecCmd is `ferry exec`; the small ferry-exec binary serves the same command.
func newExecCmd(e *env) *cobra.Command {
	return vaultexec.Command(vaultexec.IO{Stdout: e.stdout, Stderr: e.stderr, LookupEnv: e.lookupEnv})
}
