// Command ferry is Ferry's single binary: the server and the command-line client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferrycd/ferry/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
