package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/ferrycd/ferry/internal/delivery"
	"github.com/ferrycd/ferry/internal/delivery/source"
)

// errDiffers makes `ferry app diff` exit 1 when a sync would change something, as kubectl diff
// does; cli.Main prints it like any other error.
var errDiffers = errors.New("a sync would change the objects above")

func newAppDiffCmd(e *env, f *appFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "diff NAME",
		Short: "Show what a sync would change: a server-side dry-run of git against the live cluster",
		Long: `Fetch the revision the Application tracks (or is pinned to by a rollback), render it,
dry-run every object against the cluster and print a unified diff of the live and the resulting
objects; objects a sync would prune are listed too. Secret values are masked. Exits 0 when there
is nothing to change and 1 when there is, like kubectl diff. Nothing in the cluster changes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			a, app, err := f.load(ctx, e, args[0])
			if err != nil {
				return err
			}
			httpClient, err := rest.HTTPClientFor(a.cfg)
			if err != nil {
				return err
			}
			mapper, err := apiutil.NewDynamicRESTMapper(a.cfg, httpClient)
			if err != nil {
				return fmt.Errorf("discover the cluster's kinds: %w", err)
			}
			dir, err := os.MkdirTemp("", "ferry-diff-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			mirrors := source.NewMirrors(dir, source.Options{})
			defer mirrors.Close()
			rec := delivery.NewReconciler(a.c, mapper, mirrors, nil, &events.FakeRecorder{}, delivery.Options{})
			revision, diffs, err := rec.Diff(ctx, app)
			if err != nil {
				return fmt.Errorf("diff %s at %s: %w", a.key(args[0]), short(revision), err)
			}
			for _, d := range diffs {
				if err := printDiff(e.stdout, d); err != nil {
					return err
				}
			}
			if len(diffs) > 0 {
				return errDiffers
			}
			return nil
		},
	}
}

func printDiff(w io.Writer, d delivery.ObjectDiff) error {
	text, err := d.Unified()
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, text)
	return err
}
