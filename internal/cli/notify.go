package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/notify"
)

// defaultServer is where the CLI finds ferry server when neither --server nor FERRY_SERVER
// says otherwise: the server's default listen address.
const defaultServer = "http://127.0.0.1:8080"

func newNotifyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Send test messages to chat channels and list deliveries",
	}
	var f apiFlags
	f.bind(cmd)
	api := func() *apiClient { return f.client(e) }
	cmd.AddCommand(newNotifyTestCmd(e, api), newNotifyListCmd(e, api), newNotifyChannelsCmd(e, api))
	return cmd
}

func newNotifyTestCmd(e *env, api func() *apiClient) *cobra.Command {
	return &cobra.Command{
		Use:   "test CHANNEL",
		Short: "Send a test message to a channel through the outbox and wait for the outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n notify.Notification
			status, err := api().do(cmd.Context(), http.MethodPost, "/api/v1/notifications/test",
				map[string]string{"channel": args[0]}, &n)
			if err != nil {
				return err
			}
			switch status {
			case http.StatusOK:
				_, err = fmt.Fprintf(e.stdout, "sent a test message to %s (notification %d)\n", args[0], n.ID)
				return err
			case http.StatusAccepted:
				return fmt.Errorf("test message to %s not delivered yet (notification %d, %d failed attempts): %s",
					args[0], n.ID, n.Attempts, n.LastError)
			}
			return fmt.Errorf("test message to %s failed: %s", args[0], n.LastError)
		},
	}
}

func newNotifyListCmd(e *env, api func() *apiClient) *cobra.Command {
	var (
		status, channel, output string
		limit                   int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent notifications, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"status": status, "channel": channel} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			var page notify.Page
			if _, err := api().do(cmd.Context(), http.MethodGet, "/api/v1/notifications?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, page)
			}
			rows := make([][]string, 0, len(page.Notifications))
			for _, n := range page.Notifications {
				rows = append(rows, []string{strconv.FormatInt(n.ID, 10), n.Channel, n.Event.Type,
					n.Event.Application, string(n.Status), strconv.Itoa(n.Attempts),
					n.CreatedAt.Local().Format(time.DateTime), oneLine(n.LastError)})
			}
			return printTable(e.stdout, []string{"ID", "CHANNEL", "EVENT", "APPLICATION", "STATUS", "FAILURES", "CREATED", "LAST ERROR"}, rows)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only notifications with this status: pending, sent or failed")
	cmd.Flags().StringVar(&channel, "channel", "", "only notifications for this channel")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many to list (at most 500)")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newNotifyChannelsCmd(e *env, api func() *apiClient) *cobra.Command {
	return &cobra.Command{
		Use:   "channels",
		Short: "List the configured channels",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var body struct {
				Channels []notify.ChannelInfo `json:"channels"`
			}
			if _, err := api().do(cmd.Context(), http.MethodGet, "/api/v1/notifications/channels", nil, &body); err != nil {
				return err
			}
			rows := make([][]string, 0, len(body.Channels))
			for _, c := range body.Channels {
				rows = append(rows, []string{c.Name, c.Type})
			}
			return printTable(e.stdout, []string{"NAME", "TYPE"}, rows)
		},
	}
}

// errNoAPIKey reports a request that ferry server refused for want of an API key, made
// without one.
var errNoAPIKey = errors.New("ferry server wants an API key: set FERRY_API_KEY or --api-key " +
	"(ferry apikey create makes one)")

// apiFlags are the connection flags of the command groups that talk to ferry server's API.
type apiFlags struct {
	server, key string
}

// bind adds --server and --api-key to cmd and its subcommands.
func (f *apiFlags) bind(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "", "address of ferry server (default $FERRY_SERVER, then "+defaultServer+")")
	pf.StringVar(&f.key, "api-key", "", "API key to present to ferry server (default $FERRY_API_KEY)")
}

// client returns a client for the server and key the flags, else the environment, name.
func (f *apiFlags) client(e *env) *apiClient {
	c := newAPIClient(e, f.server)
	if f.key != "" {
		c.key = f.key
	}
	return c
}

// apiClient calls ferry server's JSON API.
type apiClient struct {
	base   string
	key    string // sent as Authorization: Key <key> when set
	client *http.Client
}

// newAPIClient returns a client of the server at server, else $FERRY_SERVER, else the
// default address, presenting the API key in $FERRY_API_KEY if there is one.
func newAPIClient(e *env, server string) *apiClient {
	if server == "" {
		server, _ = e.lookupEnv("FERRY_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	key, _ := e.lookupEnv("FERRY_API_KEY")
	return &apiClient{base: strings.TrimSuffix(server, "/"), key: strings.TrimSpace(key),
		client: &http.Client{Timeout: 2 * time.Minute}}
}

// serverError is an answer of ferry server that is not a success, with the server's
// message: from Ferry's API ({"error":{"message":...}}) or from its Alerta-compatible one
// ({"status":"error","message":...,"code":N}).
type serverError struct {
	Code    int // the HTTP status
	Message string
}

func (e *serverError) Error() string { return e.Message }

// do sends a request with body as JSON and decodes a 2xx or 502 answer into out. Other
// answers are errors carrying the server's message, a *serverError when it sent one; a
// 401 to a request made without an API key also wraps errNoAPIKey.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("server %s: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Key "+c.key)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, fmt.Errorf("reach ferry server at %s (set --server or FERRY_SERVER): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusBadGateway {
		err := errorAnswer(resp, data)
		if resp.StatusCode == http.StatusUnauthorized && c.key == "" {
			err = fmt.Errorf("%w; the server said: %w", errNoAPIKey, err)
		}
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer of %s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return resp.StatusCode, nil
}

// errorAnswer reads the server's message from an error answer in either of its formats.
func errorAnswer(resp *http.Response, data []byte) error {
	var answer struct {
		Error   json.RawMessage `json:"error"`   // Ferry's
		Status  string          `json:"status"`  // Alerta's: "error"
		Message string          `json:"message"` // Alerta's
	}
	if json.Unmarshal(data, &answer) == nil {
		var ferry struct {
			Message string `json:"message"`
		}
		if len(answer.Error) > 0 && json.Unmarshal(answer.Error, &ferry) == nil && ferry.Message != "" {
			return &serverError{Code: resp.StatusCode, Message: ferry.Message}
		}
		if answer.Status == "error" && answer.Message != "" {
			return &serverError{Code: resp.StatusCode, Message: answer.Message}
		}
	}
	return fmt.Errorf("%s %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status)
}
