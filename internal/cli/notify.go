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
	var server string
	cmd.PersistentFlags().StringVar(&server, "server", "", "address of ferry server (default $FERRY_SERVER, then "+defaultServer+")")
	api := func() *apiClient { return newAPIClient(e, server) }
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

// apiClient calls ferry server's JSON API.
type apiClient struct {
	base   string
	client *http.Client
}

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
	return &apiClient{base: strings.TrimSuffix(server, "/"), client: &http.Client{Timeout: 2 * time.Minute}}
}

// do sends a request with body as JSON and decodes a 2xx or 502 answer into out. Other
// answers are errors carrying the server's message.
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
		var apiErr struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &apiErr) == nil && apiErr.Error.Message != "" {
			return resp.StatusCode, errors.New(apiErr.Error.Message)
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return resp.StatusCode, nil
}
