package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/incident"
)

func newBlackoutCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "blackout",
		Short: "Create, list and delete maintenance windows that suppress alert notifications",
		Long: `Create, list and delete blackouts through ferry server's Alerta-compatible API.

While a blackout is active, the alerts it covers are still stored, with status blackout, but
notify nobody. A blackout covers the alerts of its environment that match every other field it
sets: resource, event and group equal, every --service and every --tag among the alert's.`,
		Example: `  ferry blackout create --environment Production --resource db1 --duration 2h --text "disk swap"
  ferry blackout create --environment Production --service billing --start 2026-05-04T22:00:00Z --end 2026-05-05T02:00:00Z
  ferry blackout list
  ferry blackout delete 4f1c2a9e-...`,
	}
	var f apiFlags
	f.bind(cmd)
	api := func() *apiClient { return f.client(e) }
	cmd.AddCommand(newBlackoutCreateCmd(e, api), newBlackoutListCmd(e, api), newBlackoutDeleteCmd(e, api))
	return cmd
}

// blackoutRequest is the body of POST /api/blackout, with Alerta's field names.
type blackoutRequest struct {
	Environment string   `json:"environment"`
	Service     []string `json:"service,omitempty"`
	Resource    string   `json:"resource,omitempty"`
	Event       string   `json:"event,omitempty"`
	Group       string   `json:"group,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	StartTime   string   `json:"startTime,omitempty"`
	EndTime     string   `json:"endTime,omitempty"`
	Duration    int      `json:"duration,omitempty"`
	Text        string   `json:"text,omitempty"`
}

// blackoutAnswer is the answer of POST /api/blackout and GET /api/blackout/{id}.
type blackoutAnswer struct {
	ID       string            `json:"id"`
	Blackout incident.Blackout `json:"blackout"`
}

// alertaTime is how Alerta's clients write a time.
const alertaTime = "2006-01-02T15:04:05.000Z"

func newBlackoutCreateCmd(e *env, api func() *apiClient) *cobra.Command {
	var (
		req        blackoutRequest
		duration   time.Duration
		start, end string
		output     string
	)
	cmd := &cobra.Command{
		Use:   "create --environment ENV [flags]",
		Short: "Create a blackout, from now for an hour unless told otherwise",
		Long: `Create a blackout of an environment, narrowed by the other flags. It starts now, or at
--start, and lasts --duration, or until --end, or an hour. Times are RFC 3339, such as
2026-05-04T22:00:00Z or 2026-05-05T00:00:00+02:00.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if strings.TrimSpace(req.Environment) == "" {
				return fmt.Errorf("--environment is required")
			}
			var err error
			if req.StartTime, err = flagTime("--start", start); err != nil {
				return err
			}
			if req.EndTime, err = flagTime("--end", end); err != nil {
				return err
			}
			switch {
			case duration != 0 && end != "":
				return fmt.Errorf("--duration and --end: give one")
			case duration < 0 || duration > 0 && duration < time.Second:
				return fmt.Errorf("--duration %s: want at least a second", duration)
			case duration > 0:
				req.Duration = int(duration / time.Second)
			}
			var res blackoutAnswer
			if _, err := api().do(cmd.Context(), http.MethodPost, "/api/blackout", req, &res); err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, res.Blackout)
			}
			b := res.Blackout
			_, err = fmt.Fprintf(e.stdout, "created blackout %s covering %s in %s, %s from %s until %s\n", b.ID,
				blackoutScope(b), b.Environment, b.Status, b.StartTime.Local().Format(time.DateTime),
				b.EndTime.Local().Format(time.DateTime))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Environment, "environment", "", "environment the blackout covers (required)")
	f.StringSliceVar(&req.Service, "service", nil, "cover only alerts of this service; repeat for alerts of all of them")
	f.StringVar(&req.Resource, "resource", "", "cover only alerts of this resource")
	f.StringVar(&req.Event, "event", "", "cover only alerts of this event")
	f.StringVar(&req.Group, "group", "", "cover only alerts of this group")
	f.StringSliceVar(&req.Tags, "tag", nil, "cover only alerts with this tag; repeat for alerts with all of them")
	f.DurationVar(&duration, "duration", 0, "how long the blackout lasts, such as 2h (default 1h)")
	f.StringVar(&start, "start", "", "when the blackout starts (default now)")
	f.StringVar(&end, "end", "", "when the blackout ends, instead of --duration")
	f.StringVar(&req.Text, "text", "", "why, for the people who see it")
	f.StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

// flagTime turns an RFC 3339 flag value into Alerta's time format; empty stays empty.
func flagTime(flag, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return "", fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-05-04T22:00:00Z", flag, v)
	}
	return t.UTC().Format(alertaTime), nil
}

func newBlackoutListCmd(e *env, api func() *apiClient) *cobra.Command {
	var status, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the blackouts, expired ones included, the earliest starting first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			path := "/api/blackouts"
			if status != "" {
				path += "?" + url.Values{"status": {status}}.Encode()
			}
			var res struct {
				Blackouts []incident.Blackout `json:"blackouts"`
			}
			if _, err := api().do(cmd.Context(), http.MethodGet, path, nil, &res); err != nil {
				return err
			}
			if res.Blackouts == nil {
				res.Blackouts = []incident.Blackout{}
			}
			if output != outputTable {
				return printObject(e.stdout, output, res.Blackouts)
			}
			rows := make([][]string, 0, len(res.Blackouts))
			for _, b := range res.Blackouts {
				rows = append(rows, []string{b.ID, b.Environment, blackoutScope(b), string(b.Status),
					b.StartTime.Local().Format(time.DateTime), b.EndTime.Local().Format(time.DateTime),
					remaining(b), b.User, oneLine(b.Text)})
			}
			return printTable(e.stdout, []string{"ID", "ENVIRONMENT", "COVERS", "STATUS", "START", "END", "REMAINING", "USER", "TEXT"}, rows)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only blackouts with this status: active, pending or expired")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newBlackoutDeleteCmd(e *env, api func() *apiClient) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a blackout; the alerts it covered notify again when they next change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res struct {
				Status string `json:"status"`
			}
			if _, err := api().do(cmd.Context(), http.MethodDelete, "/api/blackout/"+url.PathEscape(args[0]), nil, &res); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "deleted blackout %s\n", args[0])
			return err
		},
	}
}

// blackoutScope says which alerts of its environment a blackout covers.
func blackoutScope(b incident.Blackout) string {
	var parts []string
	for _, f := range []struct{ name, v string }{
		{"service", strings.Join(b.Service, "+")}, {"resource", b.Resource}, {"event", b.Event},
		{"group", b.Group}, {"tags", strings.Join(b.Tags, "+")}, {"origin", b.Origin}, {"customer", b.Customer},
	} {
		if f.v != "" {
			parts = append(parts, f.name+"="+f.v)
		}
	}
	if len(parts) == 0 {
		return "all alerts"
	}
	return strings.Join(parts, ",")
}

// remaining formats a blackout's remaining seconds for a table; none prints as "-".
func remaining(b incident.Blackout) string {
	if b.Remaining <= 0 {
		return ""
	}
	return (time.Duration(b.Remaining) * time.Second).String()
}
