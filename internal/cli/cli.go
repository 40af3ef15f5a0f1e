// Package cli implements the ferry command line: one file per verb group, all built on cobra.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// env is how commands read the process environment; tests replace it.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// Main runs the ferry command line with args (without the program name) and returns the process
// exit code. Errors are printed to stderr as one line.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv}
	root := newRoot(e)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintf(stderr, "ferry: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Ferry runs an application's lifecycle: GitOps delivery, secrets, releases, incidents and errors",
		Long: `Ferry runs a company's application lifecycle from one binary: it keeps Kubernetes
clusters equal to git, injects Vault secrets at deploy time, tells the release chat, collects
incidents and application errors, and joins them all on the release.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.AddCommand(newServerCmd(e), newVersionCmd(e), newAppCmd(e), newNotifyCmd(e), newAPIKeyCmd(e), newUserCmd(e), newIncidentCmd(e), newProjectCmd(e), newIssueCmd(e), newBlackoutCmd(e), newExecCmd(e), newInstallBinaryCmd(e))
	return root
}

// oneLine keeps a failure to one line so that it reads well in a terminal and in a log.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
