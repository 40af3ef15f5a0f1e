// Command controlplane runs Ferry's local Kubernetes control plane (internal/testenv) for
// `make demo` until it gets SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ferrycd/ferry/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], logger); err != nil {
		logger.Error("controlplane", "err", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, logger *slog.Logger) (err error) {
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", filepath.Join(os.TempDir(), "ferry-demo.kubeconfig"), "write the admin kubeconfig to `PATH`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	cp, err := testenv.Start(ctx, testenv.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		logger.Info("stopping control plane")
		if stopErr := cp.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop control plane: %w", stopErr)
		}
	}()

	data, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	if err := os.WriteFile(*kubeconfig, data, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	// The credentials die with the plane; a stale file would only mislead.
	defer os.Remove(*kubeconfig)

	fmt.Printf("KUBECONFIG=%s\n", *kubeconfig)
	fmt.Printf("API %s\n", cp.URL)
	logger.Info("control plane ready; stop with Ctrl-C", "logs", cp.Dir,
		"api_ready", cp.Timings.APIReady, "node_ready", cp.Timings.NodeReady)
	<-ctx.Done()
	return nil
}
