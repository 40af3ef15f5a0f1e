package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/auth"
	"github.com/ferrycd/ferry/internal/store"
)

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and change the panel's local users",
		Long: `Create, list and change the users who log in to the panel. Roles nest: viewer reads,
operator also syncs, rolls back and acts on incidents and issues, admin also manages settings
and keys.

Like the apikey commands, these work on the store directly: run them where the server's
configuration is (--config, FERRY_* variables, --store, --store-file or --data-dir). A
password is read from stdin with --password-stdin, or generated and printed once.`,
		Example: `  ferry user create alice --role operator
  echo "$PASSWORD" | ferry user create bob --role viewer --password-stdin
  ferry user passwd alice
  ferry user role alice admin
  ferry user disable bob`,
	}
	open := bindStoreFlags(e, cmd)
	cmd.AddCommand(newUserCreateCmd(e, open), newUserListCmd(e, open), newUserPasswdCmd(e, open),
		newUserRoleCmd(e, open), newUserDisableCmd(e, open), newUserDeleteCmd(e, open))
	return cmd
}

// password reads a password from stdin with --password-stdin, or generates one, and returns
// its hash, with the password to print once when it was generated ("" when it was read).
func password(cmd *cobra.Command, fromStdin bool) (hash []byte, generated string, err error) {
	var pw string
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	} else {
		raw := make([]byte, 18)
		_, _ = rand.Read(raw)
		pw = base64.RawURLEncoding.EncodeToString(raw)
		generated = pw
	}
	hash, err = auth.HashPassword(pw)
	return hash, generated, err
}

func newUserCreateCmd(e *env, open apiKeyStore) *cobra.Command {
	var (
		role      string
		fromStdin bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user; a generated password goes to stdout, once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			if err := auth.ValidateName(args[0]); err != nil {
				return err
			}
			hash, generated, err := password(cmd, fromStdin)
			if err != nil {
				return err
			}
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				u, err := db.CreateUser(cmd.Context(), args[0], r, hash)
				if err != nil {
					return err
				}
				if generated != "" {
					if _, err := fmt.Fprintln(e.stdout, generated); err != nil {
						return err
					}
				}
				_, err = fmt.Fprintf(e.stderr, "Created user %s with role %s.\n", u.Name, u.Role)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", string(auth.RoleViewer), "viewer, operator or admin")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin instead of generating one")
	return cmd
}

func newUserListCmd(e *env, open apiKeyStore) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the users, disabled ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				users, err := db.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				if output != outputTable {
					return printObject(e.stdout, output, users)
				}
				rows := make([][]string, 0, len(users))
				for _, u := range users {
					rows = append(rows, []string{strconv.FormatInt(u.ID, 10), u.Name, string(u.Role),
						apiKeyTime(&u.CreatedAt), apiKeyTime(u.DisabledAt)})
				}
				return printTable(e.stdout, []string{"ID", "NAME", "ROLE", "CREATED", "DISABLED"}, rows)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newUserPasswdCmd(e *env, open apiKeyStore) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password and end their sessions; a generated one goes to stdout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, generated, err := password(cmd, fromStdin)
			if err != nil {
				return err
			}
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				if err := db.SetUserPassword(cmd.Context(), args[0], hash); err != nil {
					return err
				}
				if generated != "" {
					if _, err := fmt.Fprintln(e.stdout, generated); err != nil {
						return err
					}
				}
				_, err := fmt.Fprintf(e.stderr, "Set the password of %s; their sessions ended.\n", args[0])
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin instead of generating one")
	return cmd
}

func newUserRoleCmd(e *env, open apiKeyStore) *cobra.Command {
	return userChange(e, open, "role NAME ROLE", "Change a user's role (viewer, operator or admin)",
		func(ctx context.Context, db *store.DB, args []string) (string, error) {
			r, err := auth.ParseRole(args[1])
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("user %s is now %s", args[0], r), db.SetUserRole(ctx, args[0], r)
		})
}

func newUserDisableCmd(e *env, open apiKeyStore) *cobra.Command {
	return userChange(e, open, "disable NAME", "Disable a user: no login, sessions ended; the name stays taken",
		func(ctx context.Context, db *store.DB, args []string) (string, error) {
			return fmt.Sprintf("user %s disabled; their sessions ended", args[0]), db.DisableUser(ctx, args[0])
		})
}

func newUserDeleteCmd(e *env, open apiKeyStore) *cobra.Command {
	return userChange(e, open, "delete NAME", "Delete a user and their sessions",
		func(ctx context.Context, db *store.DB, args []string) (string, error) {
			return fmt.Sprintf("user %s deleted", args[0]), db.DeleteUser(ctx, args[0])
		})
}

// userChange is a command that changes one user in the store with change, which returns
// what to print when it succeeds. The words of use after the command name are its arguments.
func userChange(e *env, open apiKeyStore, use, short string,
	change func(ctx context.Context, db *store.DB, args []string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(len(strings.Fields(use)) - 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPIKeyStore(cmd.Context(), open, func(db *store.DB) error {
				msg, err := change(cmd.Context(), db, args)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(e.stdout, msg)
				return err
			})
		},
	}
}
