// Command ferry-exec is `ferry exec` alone: the binary the secrets injection webhook copies into
// Pods (as /ferry/bin/ferry, so the injected command reads "ferry exec -- …"). It links only
// the Vault resolver, not the rest of Ferry, so an injected container starts in milliseconds
// more than it would without Ferry rather than tens of them. See docs/secrets.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/secrets/vaultexec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "ferry exec alone: run a command with the Vault references in its environment resolved",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(vaultexec.Command(vaultexec.IO{Stdout: os.Stdout, Stderr: os.Stderr}))
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "ferry: %s\n", strings.Join(strings.Fields(err.Error()), " "))
		os.Exit(1)
	}
}
