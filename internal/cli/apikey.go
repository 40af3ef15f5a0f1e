package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/config"
	"github.com/ferrycd/ferry/internal/store"
)

// apiKeyStoreFlags are the settings of config.Settings that say where the store is: the only ones
// the apikey commands show, though the configuration file and the environment may set any.
var apiKeyStoreFlags = []string{"data-dir", "store", "store-file"}

func newAPIKeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list and revoke the API keys that senders and scripts present",
		Long: `Create, list and revoke API keys.

These commands work on the store directly, not through the API, so that the first admin key
can be made before any key exists. They find the store as ferry server does: the file given
with --config (env FERRY_CONFIG), FERRY_* environment variables, and --store, --store-file or
--data-dir. Run them where the server's configuration is, or point them at the same store.`,
		Example: `  ferry apikey create alertmanager --scope write
  ferry apikey create ci --scope read --expires 720h
  ferry apikey list -o json
  ferry apikey revoke 3`,
	}
	open := bindStoreFlags(e, cmd)
	cmd.AddCommand(newAPIKeyCreateCmd(e, open), newAPIKeyListCmd(e, open), newAPIKeyRevokeCmd(e, open))
	return cmd
}

// apiKeyStore opens the store the command's flags, environment and configuration name.
type apiKeyStore func(context.Context) (*store.DB, error)

// bindStoreFlags gives cmd and its subcommands the flags that say where the store is, and
// returns the function that opens it as ferry server would: the file given with --config
// (env FERRY_CONFIG), FERRY_* environment variables, then the flags.
func bindStoreFlags(e *env, cmd *cobra.Command) apiKeyStore {
	var configPath string
	settings := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	config.BindFlags(settings, config.Default())
	cmd.PersistentFlags().StringVar(&configPath, "config", "", "YAML configuration file (env FERRY_CONFIG)")
	for _, name := range apiKeyStoreFlags {
		cmd.PersistentFlags().AddFlag(settings.Lookup(name))
	}
	return func(ctx context.Context) (*store.DB, error) {
		if configPath == "" {
			configPath, _ = e.lookupEnv("FERRY_CONFIG")
		}
		cfg, err := config.Load(configPath, settings, e.lookupEnv)
		if err != nil {
			return nil, err
		}
		// The server makes the data directory too; a key may be created before it first runs.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		return store.Open(ctx, cfg.Store, store.Options{})
	}
}

// withAPIKeyStore runs fn on the store and closes it.
func withAPIKeyStore(ctx context.Context, open apiKeyStore, fn func(*store.DB) error) (err error) {
	db, err := open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	return fn(db)
}

func newAPIKeyCreateCmd(e *env, open apiKeyStore) *cobra.Command {
	var (
		scopes  []string
		expires time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a key and print its secret, once",
		Long: `Create an API key named NAME and print its secret on stdout, once: Ferry stores only
a hash of it. Scopes nest: admin includes write, which includes read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var parsed []apikey.Scope
			for _, s := range scopes {
				sc, err := apikey.ParseScope(s)
				if err != nil {
					return fmt.Errorf("--scope: %w", err)
				}
				parsed = append(parsed, sc)
			}
			var until *time.Time
			switch {
			case expires < 0:
				return fmt.Errorf("--expires %s: %w: want a positive duration, or 0 for never", expires, apikey.ErrInvalid)
			case expires > 0:
				t := time.Now().Add(expires)
				until = &t
			}
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				secret, hash, prefix := apikey.Generate()
				k, err := db.CreateAPIKey(cmd.Context(), args[0], parsed, hash, prefix, until)
				if err != nil {
					return err
				}
				// The secret alone goes to stdout, so that KEY=$(ferry apikey create ...) works.
				if _, err := fmt.Fprintln(e.stdout, secret); err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stderr, "Created API key %d %q with scopes %s, %s.\n"+
					"Save the key printed above now: Ferry keeps only a hash of it and cannot show it again.\n",
					k.ID, k.Name, apiKeyScopes(k.Scopes), apiKeyExpiry(k.ExpiresAt))
				return err
			})
		},
	}
	cmd.Flags().StringSliceVar(&scopes, "scope", []string{string(apikey.ScopeRead)}, "what the key may do: read, write or admin")
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the key works, such as 720h (default: until revoked)")
	return cmd
}

func newAPIKeyListCmd(e *env, open apiKeyStore) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the keys, revoked and expired ones included, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				keys, err := db.ListAPIKeys(cmd.Context())
				if err != nil {
					return err
				}
				if output != outputTable {
					return printObject(e.stdout, output, keys)
				}
				rows := make([][]string, 0, len(keys))
				for _, k := range keys {
					rows = append(rows, []string{strconv.FormatInt(k.ID, 10), k.Name, k.Prefix, apiKeyScopes(k.Scopes),
						apiKeyTime(&k.CreatedAt), apiKeyTime(k.LastUsedAt), apiKeyTime(k.ExpiresAt), apiKeyTime(k.RevokedAt)})
				}
				return printTable(e.stdout, []string{"ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "EXPIRES", "REVOKED"}, rows)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newAPIKeyRevokeCmd(e *env, open apiKeyStore) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID|PREFIX",
		Short: "Revoke a key, by the ID or prefix that list shows; running servers refuse it within 5 s",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				k, err := db.RevokeAPIKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "revoked API key %d %q (%s) at %s; running servers refuse it within %s\n",
					k.ID, k.Name, k.Prefix, apiKeyTime(k.RevokedAt), apikey.CacheTTL)
				return err
			})
		},
	}
}

func apiKeyScopes(scopes []apikey.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

func apiKeyExpiry(t *time.Time) string {
	if t == nil {
		return "valid until revoked"
	}
	return "expiring " + apiKeyTime(t)
}

// apiKeyTime formats an optional time for a table; nil is empty, which prints as "-".
func apiKeyTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Local().Format(time.DateTime)
}
