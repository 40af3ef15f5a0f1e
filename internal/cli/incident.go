package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/incident/alerta"
)

// shortIDLen is how much of an alert's ID tables show, and the least a prefix may give.
const shortIDLen = 8

// prefixCandidates bounds the alerts fetched to resolve an ID prefix: enough to say a
// prefix is ambiguous and which alerts share it.
const prefixCandidates = 20

func newIncidentCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "incident",
		Aliases: []string{"incidents", "alerts"},
		Short:   "List, inspect, acknowledge, shelve and close the incident hub's alerts",
		Long: `Work with the alerts of ferry server's incident hub through its Alerta-compatible API.

The commands present the API key in FERRY_API_KEY or --api-key: listing and reading need a key
with the read scope, actions one with write (see ferry apikey create). An alert is named by its
ID or by a unique prefix of it, such as the 8 characters that list shows.`,
		Example: `  export FERRY_API_KEY=$(ferry apikey create oncall --scope write)
  ferry incident list --status open --severity critical,major
  ferry incident get 1f0c3a9e
  ferry incident ack 1f0c3a9e --text "looking" --timeout 2h
  ferry incident close 1f0c3a9e`,
		Args: cobra.NoArgs,
	}
	var f apiFlags
	f.bind(cmd)
	api := func() *apiClient { return f.client(e) }
	cmd.AddCommand(newIncidentListCmd(e, api), newIncidentGetCmd(e, api))
	for _, a := range incidentActions {
		cmd.AddCommand(newIncidentActionCmd(e, api, a))
	}
	return cmd
}

func newIncidentListCmd(e *env, api func() *apiClient) *cobra.Command {
	var (
		statuses, severities, environments, services, resources, events []string
		text, output                                                    string
		limit                                                           int
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List alerts, most recently received first",
		Long: `List alerts, most recently received first. Filters combine with AND; the values of one
filter, repeated or comma-separated, with OR. -q looks for text, ignoring case, in the
resource, event, environment, service, group, value, text, origin and tags.`,
		Example: `  ferry incident list
  ferry incident list --status open,ack --environment production
  ferry incident list -q disk -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := url.Values{}
			for field, values := range map[string][]string{
				"status": statuses, "severity": severities, "environment": environments,
				"service": services, "resource": resources, "event": events,
			} {
				for _, v := range values {
					q.Add(field, v)
				}
			}
			if text != "" {
				q.Set("q", text)
			}
			q.Set("page-size", strconv.Itoa(limit))
			var list alerta.ListResponse
			if _, err := api().do(cmd.Context(), http.MethodGet, "/api/alerts?"+q.Encode(), nil, &list); err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, list)
			}
			if len(list.Alerts) == 0 {
				fmt.Fprintln(e.stderr, "No alerts.")
				return nil
			}
			rows := make([][]string, 0, len(list.Alerts))
			for _, a := range list.Alerts {
				rows = append(rows, []string{shortID(a.ID), string(a.Severity), string(a.Status), a.Environment,
					a.Resource, a.Event, strconv.Itoa(a.DuplicateCount), alertTime(a.LastReceiveTime),
					releaseID(a.ReleaseID), oneLine(a.Text)})
			}
			if err := printTable(e.stdout, []string{"ID", "SEVERITY", "STATUS", "ENVIRONMENT", "RESOURCE", "EVENT",
				"DUPL", "LAST RECEIVED", "RELEASE", "TEXT"}, rows); err != nil {
				return err
			}
			if list.Total > len(list.Alerts) {
				fmt.Fprintf(e.stderr, "Showing %d of %d alerts; raise --limit to see more.\n", len(list.Alerts), list.Total)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&statuses, "status", nil, "only alerts with this status: open, ack, shelved, closed, expired, blackout, ...")
	fl.StringSliceVar(&severities, "severity", nil, "only alerts with this severity: critical, major, minor, warning, ...")
	fl.StringSliceVar(&environments, "environment", nil, "only alerts of this environment")
	fl.StringSliceVar(&services, "service", nil, "only alerts of this service")
	fl.StringSliceVar(&resources, "resource", nil, "only alerts of this resource")
	fl.StringSliceVar(&events, "event", nil, "only alerts of this event")
	fl.StringVarP(&text, "query", "q", "", "only alerts containing this text")
	fl.IntVar(&limit, "limit", 100, fmt.Sprintf("how many to list (at most %d)", incident.MaxPageSize))
	fl.StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newIncidentGetCmd(e *env, api func() *apiClient) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show an alert and its history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c := api()
			id, err := c.resolveAlert(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a, err := c.alert(cmd.Context(), id)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, a)
			}
			return printAlert(e.stdout, a)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

// incidentAction is one of the operator actions of PUT /api/alert/{id}/action.
type incidentAction struct {
	name, short string
	timeout     bool // whether the action takes --timeout
}

var incidentActions = []incidentAction{
	{incident.ActionAck, "Acknowledge an alert: someone is on it", true},
	{incident.ActionUnack, "Take back an acknowledgement", false},
	{incident.ActionShelve, "Shelve an alert: keep it, but out of the way", true},
	{incident.ActionUnshelve, "Bring a shelved alert back", false},
	{incident.ActionClose, "Close an alert", false},
	{incident.ActionOpen, "Reopen an alert", false},
}

// actionBody is the body of PUT /api/alert/{id}/action; a missing text is the server's
// "<action> operator action".
type actionBody struct {
	Action  string  `json:"action"`
	Text    *string `json:"text,omitempty"`
	Timeout int     `json:"timeout,omitempty"`
}

func newIncidentActionCmd(e *env, api func() *apiClient, act incidentAction) *cobra.Command {
	var (
		text    string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   act.name + " ID",
		Short: act.short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := actionBody{Action: act.name}
			if cmd.Flags().Changed("text") {
				body.Text = &text
			}
			if timeout < 0 || timeout > 0 && timeout < time.Second {
				return fmt.Errorf("--timeout %s: want whole seconds or more, or 0 for none", timeout)
			}
			body.Timeout = int(timeout / time.Second)
			ctx, c := cmd.Context(), api()
			id, err := c.resolveAlert(ctx, args[0])
			if err != nil {
				return err
			}
			var ok alerta.OKResponse
			if _, err := c.do(ctx, http.MethodPut, "/api/alert/"+url.PathEscape(id)+"/action", body, &ok); err != nil {
				return err
			}
			a, err := c.alert(ctx, id)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "alert %s (%s on %s in %s) is now %s\n", shortID(a.ID), a.Event, a.Resource,
				a.Environment, a.Status)
			return err
		},
	}
	cmd.Flags().StringVar(&text, "text", "", `note for the alert's history (default "`+act.name+` operator action")`)
	if act.timeout {
		cmd.Flags().DurationVar(&timeout, "timeout", 0, "undo the action after this long, such as 2h (default: never)")
	}
	return cmd
}

// alert reads the alert with the given full ID.
func (c *apiClient) alert(ctx context.Context, id string) (incident.Alert, error) {
	var resp alerta.AlertResponse
	if _, err := c.do(ctx, http.MethodGet, "/api/alert/"+url.PathEscape(id), nil, &resp); err != nil {
		return incident.Alert{}, err
	}
	if resp.Alert == nil {
		return incident.Alert{}, fmt.Errorf("ferry server answered no alert for %s", id)
	}
	return *resp.Alert, nil
}

// resolveAlert returns the full ID of the alert that ref names: ref itself when it is as
// long as an ID, else the one alert whose ID starts with ref.
func (c *apiClient) resolveAlert(ctx context.Context, ref string) (string, error) {
	const idLen = 36 // a UUID's text
	switch {
	case len(ref) >= idLen:
		return ref, nil
	case len(ref) < shortIDLen:
		return "", fmt.Errorf("alert ID %q: give the ID or at least its first %d characters", ref, shortIDLen)
	}
	q := url.Values{"id": {ref}, "page-size": {strconv.Itoa(prefixCandidates)}}
	var list alerta.ListResponse
	if _, err := c.do(ctx, http.MethodGet, "/api/alerts?"+q.Encode(), nil, &list); err != nil {
		return "", err
	}
	// The id filter also matches lastReceiveId, as in Alerta; only the alert's own ID counts.
	var ids []string
	for _, a := range list.Alerts {
		if strings.HasPrefix(a.ID, ref) {
			ids = append(ids, a.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("alert %s %w", ref, errNotFound)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("alert ID prefix %s is ambiguous: it begins %s; give more of the ID", ref, strings.Join(ids, ", "))
}

// printAlert writes the human summary of `ferry incident get`.
func printAlert(w io.Writer, a incident.Alert) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	field := func(name, value string) {
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", name, value)
	}
	field("ID", a.ID)
	field("Resource", a.Resource)
	field("Event", a.Event)
	field("Environment", a.Environment)
	sev := string(a.Severity)
	if a.PreviousSeverity != "" {
		sev += fmt.Sprintf(" (was %s, %s)", a.PreviousSeverity, a.TrendIndication)
	}
	field("Severity", sev)
	field("Status", string(a.Status))
	field("Service", strings.Join(a.Service, ", "))
	field("Group", a.Group)
	field("Value", a.Value)
	field("Text", oneLine(a.Text))
	field("Tags", strings.Join(a.Tags, ", "))
	field("Attributes", attributes(a.Attributes))
	field("Correlate", strings.Join(a.Correlate, ", "))
	field("Origin", a.Origin)
	field("Type", a.EventType)
	field("Customer", a.Customer)
	dupl := strconv.Itoa(a.DuplicateCount)
	if a.Repeat {
		dupl += " (last one a repeat)"
	}
	field("Duplicates", dupl)
	timeout := "never expires"
	if a.Timeout > 0 {
		timeout = (time.Duration(a.Timeout) * time.Second).String()
	}
	field("Timeout", timeout)
	field("Created", rfc3339(a.CreateTime))
	field("Received", rfc3339(a.ReceiveTime))
	field("Last received", rfc3339(a.LastReceiveTime))
	field("Updated", rfc3339(a.UpdateTime))
	field("Release", releaseID(a.ReleaseID))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nHistory:")
	rows := make([][]string, 0, len(a.History))
	for _, h := range a.History {
		rows = append(rows, []string{alertTime(h.UpdateTime), h.ChangeType, string(h.Severity), string(h.Status),
			h.User, oneLine(h.Text)})
	}
	return printTable(w, []string{"TIME", "TYPE", "SEVERITY", "STATUS", "USER", "TEXT"}, rows)
}

// attributes prints an alert's attributes as k=v, sorted by name.
func attributes(attrs map[string]any) string {
	parts := make([]string, 0, len(attrs))
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, attrs[k]))
	}
	return strings.Join(parts, ", ")
}

func shortID(id string) string {
	if len(id) > shortIDLen {
		return id[:shortIDLen]
	}
	return id
}

func releaseID(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 10)
}

// alertTime formats a time for a table cell, in the local zone as the other lists do.
func alertTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(time.DateTime)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
