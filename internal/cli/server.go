package cli

import (
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ferrycd/ferry/internal/app"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/delivery"
)

func newServerCmd(e *env) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Ferry server: delivery, the API and the panel in one process",
		Long: `Run the Ferry server.

Settings come from, lowest precedence first: built-in defaults, the YAML file given with
--config (env FERRY_CONFIG), FERRY_* environment variables, and flags. Unknown keys in the file
are an error. Settings that hold secrets also accept KEY_file (env FERRY_KEY_FILE, flag
--key-file), a path whose content is the value.`,
		Example: `  ferry server
  ferry server --listen 0.0.0.0:8080 --store postgres://ferry@db:5432/ferry
  FERRY_STORE_FILE=/run/secrets/store-url ferry server --config /etc/ferry/ferry.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				configPath, _ = e.lookupEnv("FERRY_CONFIG")
			}
			cfg, err := config.Load(configPath, cmd.Flags(), e.lookupEnv)
			if err != nil {
				return err
			}
			log := cfg.NewLogger(e.stderr)
			// controller-runtime and client-go log through a global logger; unset, it
			// prints a warning with a stack trace once delivery has run for 30 s.
			ctrllog.SetLogger(delivery.KubeLogger(log.With("component", "delivery").Handler()))
			ctx := cmd.Context()
			a, err := app.New(ctx, app.Options{Config: cfg, Logger: log})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file (env FERRY_CONFIG)")
	config.BindFlags(cmd.Flags(), config.Default())
	return cmd
}
