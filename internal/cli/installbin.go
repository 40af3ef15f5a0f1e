package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// newInstallBinaryCmd is what the injection webhook's init container runs: it copies ferry to
// a path in a shared in-memory volume, so the application's container can start through
// `ferry exec` without Ferry being in its image. It copies ferry-exec, the small binary that
// is only `ferry exec`, when one lies beside this binary (as in Ferry's image): a third of the
// size in the Pod's memory, and a faster start of every injected container.
func newInstallBinaryCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:    "install-binary DEST",
		Short:  "Copy this ferry binary to DEST (used by the secrets injection init container)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("install-binary: find this binary: %w", err)
			}
			src := filepath.Join(filepath.Dir(self), "ferry-exec")
			if _, err := os.Stat(src); err != nil {
				src = self
			}
			if err := copyExecutable(src, args[0]); err != nil {
				return fmt.Errorf("install-binary: %w", err)
			}
			_, _ = fmt.Fprintf(e.stdout, "installed %s as %s\n", src, args[0])
			return nil
		},
	}
}

// copyExecutable copies src to dst with mode 0755, through a temporary file in dst's
// directory so that dst is never seen half written.
func copyExecutable(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".ferry-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Chmod(0o755); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
