package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/ferrycd/ferry/internal/errtrack"
)

// The bounds of what ferry issue prints.
const (
	// issueTitleWidth is how many characters of an issue's title a table cell shows.
	issueTitleWidth = 60
	// maxBreadcrumbs is how many of the latest event's last breadcrumbs issue get shows:
	// the steps just before the error are the ones that explain it.
	maxBreadcrumbs = 10
	// maxIssuePage is the most issues one request may list, the store's bound.
	maxIssuePage = 1000
)

// projectKey is a project's DSN key as the API shows it.
type projectKey struct {
	errtrack.ProjectKey
	DSN string `json:"dsn"`
}

// projectAnswer is the API's answer about one project; the rate-limit endpoint sends no keys.
type projectAnswer struct {
	Project errtrack.Project `json:"project"`
	Keys    []projectKey     `json:"keys"`
}

// issueDetail is the answer of GET /api/v1/issues/{id}; LatestEvent is nil when retention
// has deleted the issue's events.
type issueDetail struct {
	Issue       errtrack.Issue          `json:"issue"`
	LatestEvent *errtrack.StoredEvent   `json:"latestEvent"`
	Releases    []errtrack.ReleaseCount `json:"releases"`
}

// call is do for commands that print the server's answer as sent with -o json or yaml: it
// decodes the answer into out and returns it unchanged too.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) (json.RawMessage, error) {
	var raw json.RawMessage
	if _, err := c.do(ctx, method, path, body, &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return raw, nil
}

func newProjectCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "project",
		Aliases: []string{"projects"},
		Short:   "Create error-tracking projects, show and rotate their DSNs, set their rate limits",
		Long: `Work with the projects of ferry server's error tracker, which the Sentry SDKs report to.

An application's SDK sends its events to a project through a DSN, which holds one of the
project's keys. Rotating a key is creating a new one, moving the SDKs to its DSN, and then
revoking the old one: until then both work. A project is named by its name or its ID.

The commands present the API key in FERRY_API_KEY or --api-key: listing and reading need a
key with the read scope; creating projects and keys, revoking keys and setting rate limits
need admin (see ferry apikey create).`,
		Example: `  export FERRY_API_KEY=$(ferry apikey create errors-admin --scope admin)
  SENTRY_DSN=$(ferry project create shop --rate-limit 1000)
  ferry project get shop
  ferry project key create shop --label 2026-rotation
  ferry project key revoke shop 1
  ferry project rate-limit shop 5000`,
		Args: cobra.NoArgs,
	}
	var f apiFlags
	f.bind(cmd)
	api := func() *apiClient { return f.client(e) }
	key := &cobra.Command{
		Use:     "key",
		Aliases: []string{"keys"},
		Short:   "Create and revoke a project's DSN keys",
		Args:    cobra.NoArgs,
	}
	key.AddCommand(newProjectKeyCreateCmd(e, api), newProjectKeyRevokeCmd(e, api))
	cmd.AddCommand(newProjectCreateCmd(e, api), newProjectListCmd(e, api), newProjectGetCmd(e, api), key,
		newProjectRateLimitCmd(e, api))
	return cmd
}

func newProjectCreateCmd(e *env, api func() *apiClient) *cobra.Command {
	var (
		rateLimit int
		output    string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project and print the DSN of its first key",
		Long: `Create a project named NAME and print the DSN of its first key, alone on stdout, so that
SENTRY_DSN=$(ferry project create NAME) works. NAME is 1 to 63 lowercase letters, digits or
'-', starting with a letter or digit. -o json and -o yaml print the server's whole answer.`,
		Example: `  ferry project create shop
  ferry project create shop --rate-limit 1000 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var ans projectAnswer
			raw, err := api().call(cmd.Context(), http.MethodPost, "/api/v1/projects",
				map[string]any{"name": args[0], "rateLimit": rateLimit}, &ans)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, raw)
			}
			if len(ans.Keys) == 0 {
				return fmt.Errorf("ferry server answered no key for the new project %s", ans.Project.Name)
			}
			// The DSN alone goes to stdout, so that SENTRY_DSN=$(ferry project create ...) works.
			if _, err := fmt.Fprintln(e.stdout, ans.Keys[0].DSN); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stderr, "Created project %s (ID %d), accepting %s.\n"+
				"Give the SDKs the DSN printed above, for example in SENTRY_DSN.\n",
				ans.Project.Name, ans.Project.ID, rateLimitText(ans.Project.RateLimit))
			return err
		},
	}
	cmd.Flags().IntVar(&rateLimit, "rate-limit", 0, "events a minute the project accepts, per server (default: the server's errors.rate_limit)")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newProjectListCmd(e *env, api func() *apiClient) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the projects",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var list struct {
				Projects []errtrack.Project `json:"projects"`
			}
			raw, err := api().call(cmd.Context(), http.MethodGet, "/api/v1/projects", nil, &list)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, raw)
			}
			if len(list.Projects) == 0 {
				fmt.Fprintln(e.stderr, "No projects.")
				return nil
			}
			rows := make([][]string, 0, len(list.Projects))
			for _, p := range list.Projects {
				rows = append(rows, []string{strconv.FormatInt(p.ID, 10), p.Name, rateLimitCell(p.RateLimit),
					alertTime(p.CreatedAt)})
			}
			return printTable(e.stdout, []string{"ID", "NAME", "RATE LIMIT", "CREATED"}, rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newProjectGetCmd(e *env, api func() *apiClient) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get NAME|ID",
		Short: "Show a project and its keys with their DSNs, revoked ones included",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var ans projectAnswer
			raw, err := api().call(cmd.Context(), http.MethodGet, projectPath(args[0]), nil, &ans)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, raw)
			}
			p := ans.Project
			if err := printFields(e.stdout, [][2]string{
				{"ID", strconv.FormatInt(p.ID, 10)},
				{"Name", p.Name},
				{"Rate limit", rateLimitText(p.RateLimit)},
				{"Created", rfc3339(p.CreatedAt)},
			}); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "\nKeys:")
			rows := make([][]string, 0, len(ans.Keys))
			for _, k := range ans.Keys {
				rows = append(rows, []string{strconv.FormatInt(k.ID, 10), k.Label, k.DSN, alertTime(k.CreatedAt),
					apiKeyTime(k.RevokedAt)})
			}
			return printTable(e.stdout, []string{"ID", "LABEL", "DSN", "CREATED", "REVOKED"}, rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newProjectKeyCreateCmd(e *env, api func() *apiClient) *cobra.Command {
	var label, output string
	cmd := &cobra.Command{
		Use:   "create PROJECT",
		Short: "Add a key to a project and print its DSN; the old keys keep working",
		Long: `Add a key to PROJECT and print its DSN, alone on stdout. This is the first step of a
rotation: the project's other keys keep working until they are revoked, so move the SDKs to
the new DSN, then revoke the old key with ferry project key revoke.`,
		Example: `  ferry project key create shop --label 2026-rotation`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var ans struct {
				Key projectKey `json:"key"`
			}
			raw, err := api().call(cmd.Context(), http.MethodPost, projectPath(args[0])+"/keys",
				map[string]string{"label": label}, &ans)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, raw)
			}
			if _, err := fmt.Fprintln(e.stdout, ans.Key.DSN); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stderr, "Created %s of project %s. The project's old keys keep working until you "+
				"revoke them: move the SDKs to the DSN above, then run ferry project key revoke %s OLD-KEY.\n",
				keyName(ans.Key.ProjectKey), args[0], args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&label, "label", "", "what the key is for, shown by project get")
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newProjectKeyRevokeCmd(e *env, api func() *apiClient) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke PROJECT KEY",
		Short: "Revoke a project's key, by the ID project get shows or its public part",
		Long: `Revoke one of PROJECT's keys, named by the ID that ferry project get shows or by its
public part, the user of its DSN. Running servers refuse events sent with it within ` + errtrack.KeyCacheTTL.String() + `.`,
		Example: `  ferry project key revoke shop 1`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ans struct {
				Key projectKey `json:"key"`
			}
			if _, err := api().call(cmd.Context(), http.MethodDelete,
				projectPath(args[0])+"/keys/"+url.PathEscape(args[1]), nil, &ans); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "revoked %s of project %s at %s; running servers refuse its DSN within %s\n",
				keyName(ans.Key.ProjectKey), args[0], apiKeyTime(ans.Key.RevokedAt), errtrack.KeyCacheTTL)
			return err
		},
	}
}

func newProjectRateLimitCmd(e *env, api func() *apiClient) *cobra.Command {
	return &cobra.Command{
		Use:   "rate-limit PROJECT EVENTS-PER-MINUTE",
		Short: "Set how many events a minute a project accepts; 0 for the server's default",
		Long: `Set how many events a minute PROJECT accepts from its SDKs, counted per server; 0 means
the server's errors.rate_limit. Events over the limit are refused with a Retry-After that
the SDKs honour.`,
		Example: `  ferry project rate-limit shop 5000`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return fmt.Errorf("rate limit %q: want a whole number of events a minute, or 0 for the server's default", args[1])
			}
			var ans projectAnswer
			if _, err := api().call(cmd.Context(), http.MethodPut, projectPath(args[0])+"/rate-limit",
				map[string]int{"rateLimit": n}, &ans); err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "project %s now accepts %s; running servers apply it within %s\n",
				ans.Project.Name, rateLimitText(ans.Project.RateLimit), errtrack.KeyCacheTTL)
			return err
		},
	}
}

func projectPath(ref string) string { return "/api/v1/projects/" + url.PathEscape(ref) }

func keyName(k errtrack.ProjectKey) string {
	if k.Label == "" {
		return fmt.Sprintf("key %d", k.ID)
	}
	return fmt.Sprintf("key %d %q", k.ID, k.Label)
}

func rateLimitText(n int) string {
	if n == 0 {
		return "the server's default number of events a minute"
	}
	return fmt.Sprintf("%d events a minute", n)
}

func rateLimitCell(n int) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprintf("%d/min", n)
}

func newIssueCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "issue",
		Aliases: []string{"issues"},
		Short:   "List, inspect, resolve and ignore the error tracker's issues",
		Long: `Work with the issues of ferry server's error tracker: the events the Sentry SDKs send,
grouped by what went wrong where. An issue is named by the number that list shows.

The commands present the API key in FERRY_API_KEY or --api-key: listing and reading need a
key with the read scope, resolve, ignore and reopen one with write (see ferry apikey create).`,
		Example: `  ferry issue list --project shop --status unresolved --sort count
  ferry issue get 42
  ferry issue resolve 42 --in-next-release
  ferry issue ignore 43`,
		Args: cobra.NoArgs,
	}
	var f apiFlags
	f.bind(cmd)
	api := func() *apiClient { return f.client(e) }
	cmd.AddCommand(newIssueListCmd(e, api), newIssueGetCmd(e, api), newIssueResolveCmd(e, api),
		newIssueActionCmd(e, api, errtrack.ActionIgnore, "Ignore an issue: its events still count but never reopen it"),
		newIssueActionCmd(e, api, errtrack.ActionReopen, "Make a resolved or ignored issue unresolved again"))
	return cmd
}

func newIssueListCmd(e *env, api func() *apiClient) *cobra.Command {
	var (
		project, environment, release, text, sort, output string
		statuses, levels                                  []string
		limit                                             int
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List issues, most recently seen first",
		Long: `List issues, most recently seen first unless --sort says otherwise. Filters combine with
AND; the values of --status and --level, repeated or comma-separated, with OR. An issue is in
an environment or a release when one of its events was. --query looks for text, ignoring
case, in the title and the culprit.`,
		Example: `  ferry issue list
  ferry issue list --project shop --environment production --status unresolved,ignored
  ferry issue list --release shop@1.4.0 --level error,fatal --sort count -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q := url.Values{}
			for name, v := range map[string]string{"project": project, "environment": environment, "release": release,
				"status": strings.Join(statuses, ","), "level": strings.Join(levels, ","), "query": text, "sort": sort} {
				if v != "" {
					q.Set(name, v)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			var list errtrack.IssueList
			raw, err := api().call(cmd.Context(), http.MethodGet, "/api/v1/issues?"+q.Encode(), nil, &list)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, raw)
			}
			if len(list.Issues) == 0 {
				fmt.Fprintln(e.stderr, "No issues.")
				return nil
			}
			rows := make([][]string, 0, len(list.Issues))
			for _, is := range list.Issues {
				rows = append(rows, []string{strconv.FormatInt(is.ID, 10), string(is.Status), string(is.Level),
					strconv.FormatInt(is.Count, 10), strconv.FormatInt(is.UsersAffected, 10), alertTime(is.LastSeen),
					is.FirstRelease, truncateRunes(oneLine(is.Title), issueTitleWidth)})
			}
			if err := printTable(e.stdout, []string{"ID", "STATUS", "LEVEL", "COUNT", "USERS", "LAST SEEN",
				"FIRST RELEASE", "TITLE"}, rows); err != nil {
				return err
			}
			if list.Total > len(list.Issues) {
				fmt.Fprintf(e.stderr, "Showing %d of %d issues; raise --limit to see more.\n", len(list.Issues), list.Total)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&project, "project", "", "only issues of this project, by name or ID")
	fl.StringVar(&environment, "environment", "", "only issues with events in this environment")
	fl.StringVar(&release, "release", "", "only issues with events in this release")
	fl.StringSliceVar(&statuses, "status", nil, "only issues with this status: unresolved, resolved, resolved_in_next_release or ignored")
	fl.StringSliceVar(&levels, "level", nil, "only issues of this level: fatal, error, warning, info or debug")
	fl.StringVarP(&text, "query", "q", "", "only issues with this text in the title or culprit")
	fl.StringVar(&sort, "sort", string(errtrack.SortLastSeen), "order, newest or largest first: last_seen, first_seen or count")
	fl.IntVar(&limit, "limit", 50, fmt.Sprintf("how many to list (at most %d)", maxIssuePage))
	fl.StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newIssueGetCmd(e *env, api func() *apiClient) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show an issue, its releases, and its latest event's stack trace and breadcrumbs",
		Long: `Show an issue: its counts, the releases its events came from, and its latest event, with
the exception, the stack trace innermost frame first (→ marks the application's own frames)
and the last breadcrumbs. -o json and -o yaml print the server's whole answer, the latest
event in full.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var d issueDetail
			raw, err := api().call(cmd.Context(), http.MethodGet, issuePath(args[0]), nil, &d)
			if err != nil {
				return err
			}
			if output != outputTable {
				return printObject(e.stdout, output, raw)
			}
			return printIssue(e.stdout, d)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

func newIssueResolveCmd(e *env, api func() *apiClient) *cobra.Command {
	var (
		nextRelease bool
		release     string
	)
	cmd := &cobra.Command{
		Use:   "resolve ID",
		Short: "Mark an issue fixed, in a release or in the next one",
		Long: `Mark an issue fixed. Without flags any new event reopens it. With --release R it is fixed
in release R: an event from R, from a release Ferry deployed after R or from one it does not
know reopens it; events from releases Ferry deployed before R, still running, do not. With --in-next-release it is fixed in
whatever is deployed after the current release (--release, default the release of the
issue's latest event): only events from a later release reopen it.`,
		Example: `  ferry issue resolve 42
  ferry issue resolve 42 --release shop@1.4.1
  ferry issue resolve 42 --in-next-release`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			action := errtrack.ActionResolve
			if nextRelease {
				action = errtrack.ActionResolveInNextRelease
			}
			return actOnIssue(cmd.Context(), e, api(), args[0], action, release)
		},
	}
	cmd.Flags().BoolVar(&nextRelease, "in-next-release", false, "fixed in the release deployed after the current one")
	cmd.Flags().StringVar(&release, "release", "", "the release with the fix; with --in-next-release, the current one")
	return cmd
}

func newIssueActionCmd(e *env, api func() *apiClient, action errtrack.Action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   string(action) + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return actOnIssue(cmd.Context(), e, api(), args[0], action, "")
		},
	}
}

// actOnIssue runs an action on the issue id names and says what its status became.
func actOnIssue(ctx context.Context, e *env, c *apiClient, id string, action errtrack.Action, release string) error {
	var ans struct {
		Issue errtrack.Issue `json:"issue"`
	}
	body := map[string]string{"action": string(action), "release": release}
	if _, err := c.call(ctx, http.MethodPost, issuePath(id)+"/actions", body, &ans); err != nil {
		return err
	}
	is := ans.Issue
	_, err := fmt.Fprintf(e.stdout, "issue %d (%s) is now %s\n", is.ID, truncateRunes(oneLine(is.Title), issueTitleWidth),
		issueStatus(is))
	return err
}

func issuePath(id string) string { return "/api/v1/issues/" + url.PathEscape(id) }

// issueStatus says an issue's status with the release its resolution refers to.
func issueStatus(is errtrack.Issue) string {
	switch {
	case is.Status == errtrack.StatusResolved && is.ResolvedIn != "":
		return "resolved in " + is.ResolvedIn
	case is.Status == errtrack.StatusResolvedInNextRelease && is.ResolvedIn != "":
		return "resolved in the next release after " + is.ResolvedIn
	}
	return string(is.Status)
}

// printIssue writes the human summary of `ferry issue get`.
func printIssue(w io.Writer, d issueDetail) error {
	is := d.Issue
	fields := [][2]string{
		{"ID", strconv.FormatInt(is.ID, 10)},
		{"Title", oneLine(is.Title)},
		{"Culprit", is.Culprit},
		{"Project", strconv.FormatInt(is.ProjectID, 10)},
		{"Level", string(is.Level)},
		{"Status", issueStatus(is)},
		{"Platform", is.Platform},
		{"Events", strconv.FormatInt(is.Count, 10)},
		{"Users", strconv.FormatInt(is.UsersAffected, 10)},
		{"First seen", timeAgo(is.FirstSeen)},
		{"Last seen", timeAgo(is.LastSeen)},
		{"First release", is.FirstRelease},
		{"Last release", is.LastRelease},
		{"Environments", strings.Join(is.Environments, ", ")},
	}
	if !is.ResolvedAt.IsZero() {
		fields = append(fields, [2]string{"Resolved", timeAgo(is.ResolvedAt)})
	}
	if err := printFields(w, fields); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nReleases:")
	rows := make([][]string, 0, len(d.Releases))
	for _, r := range d.Releases {
		rows = append(rows, []string{r.Release, r.Environment, strconv.FormatInt(r.Count, 10),
			alertTime(r.FirstSeen), alertTime(r.LastSeen)})
	}
	if err := printTable(w, []string{"RELEASE", "ENVIRONMENT", "EVENTS", "FIRST SEEN", "LAST SEEN"}, rows); err != nil {
		return err
	}

	if d.LatestEvent == nil {
		_, err := fmt.Fprintln(w, "\nNo events kept: retention has deleted them.")
		return err
	}
	return printEvent(w, d.LatestEvent.Event)
}

// printEvent writes an event's exceptions with their stack traces, and its last breadcrumbs.
func printEvent(w io.Writer, ev errtrack.Event) error {
	fmt.Fprintf(w, "\nLatest event %s at %s", ev.EventID, rfc3339(ev.Timestamp))
	if ev.Release != "" {
		fmt.Fprintf(w, ", release %s", ev.Release)
	}
	if ev.Environment != "" {
		fmt.Fprintf(w, ", environment %s", ev.Environment)
	}
	fmt.Fprintln(w, ":")
	if m := ev.LogEntry; m != nil && (m.Formatted != "" || m.Message != "") {
		fmt.Fprintf(w, "Message: %s\n", oneLine(cmp.Or(m.Formatted, m.Message)))
	}
	// The chain is oldest first; the exception raised comes first here, as its frames do.
	for i := len(ev.Exception) - 1; i >= 0; i-- {
		ex := ev.Exception[i]
		if i < len(ev.Exception)-1 {
			fmt.Fprintln(w, "Caused by:")
		}
		fmt.Fprintln(w, exceptionLine(ex))
		st := ex.Stacktrace
		if st == nil && i == len(ev.Exception)-1 && !anyStacktrace(ev.Exception) {
			st = fallbackStacktrace(ev)
		}
		printFrames(w, st)
	}
	if len(ev.Exception) == 0 {
		printFrames(w, fallbackStacktrace(ev))
	}

	crumbs := ev.Breadcrumbs
	if len(crumbs) == 0 {
		return nil
	}
	if len(crumbs) > maxBreadcrumbs {
		fmt.Fprintf(w, "\nBreadcrumbs (the last %d of %d):\n", maxBreadcrumbs, len(crumbs))
		crumbs = crumbs[len(crumbs)-maxBreadcrumbs:]
	} else {
		fmt.Fprintln(w, "\nBreadcrumbs:")
	}
	rows := make([][]string, 0, len(crumbs))
	for _, b := range crumbs {
		rows = append(rows, []string{alertTime(b.Timestamp), cmp.Or(b.Category, b.Type), string(b.Level), oneLine(b.Message)})
	}
	return printTable(w, []string{"TIME", "CATEGORY", "LEVEL", "MESSAGE"}, rows)
}

func exceptionLine(ex errtrack.Exception) string {
	switch {
	case ex.Type != "" && ex.Value != "":
		return ex.Type + ": " + oneLine(ex.Value)
	case ex.Type != "":
		return ex.Type
	case ex.Value != "":
		return oneLine(ex.Value)
	}
	return "(an exception without type or value)"
}

func anyStacktrace(chain errtrack.Exceptions) bool {
	for _, ex := range chain {
		if ex.Stacktrace != nil && len(ex.Stacktrace.Frames) > 0 {
			return true
		}
	}
	return false
}

// fallbackStacktrace is the stack trace SDKs send outside the exception, which Sentry shows in
// its place: the crashed thread's, else the current thread's, else the only thread's, else
// the event's own.
func fallbackStacktrace(ev errtrack.Event) *errtrack.Stacktrace {
	var crashed, current *errtrack.Stacktrace
	for _, t := range ev.Threads {
		switch {
		case t.Crashed && crashed == nil:
			crashed = t.Stacktrace
		case t.Current && current == nil:
			current = t.Stacktrace
		}
	}
	switch {
	case crashed != nil:
		return crashed
	case current != nil:
		return current
	case len(ev.Threads) == 1 && ev.Threads[0].Stacktrace != nil:
		return ev.Threads[0].Stacktrace
	}
	return ev.Stacktrace
}

// printFrames writes a stack trace innermost frame first, "→" before the application's own
// frames, and where the server or SDK cut frames out of the middle.
func printFrames(w io.Writer, st *errtrack.Stacktrace) {
	if st == nil || len(st.Frames) == 0 {
		fmt.Fprintln(w, "  (no stack trace)")
		return
	}
	gapAt, omitted := -1, 0 // frames[gapAt:] come after the cut, in call order
	if o := st.FramesOmitted; len(o) == 2 && o[0] > 0 && o[0] <= len(st.Frames) && o[1] > o[0] {
		gapAt, omitted = o[0], o[1]-o[0]
	}
	for i := len(st.Frames) - 1; i >= 0; i-- {
		if i == gapAt-1 {
			fmt.Fprintf(w, "    ... %d frames omitted ...\n", omitted)
		}
		f := st.Frames[i]
		mark := " "
		if f.InApp != nil && *f.InApp {
			mark = "→"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, frameLine(f))
		if line := strings.TrimSpace(f.ContextLine); line != "" {
			fmt.Fprintf(w, "        %s\n", line)
		}
	}
}

// frameLine names a frame's function and where its code is: module.function at file:line.
func frameLine(f errtrack.Frame) string {
	name := cmp.Or(f.Function, f.RawFunction, f.Symbol, "?")
	if f.Module != "" && !strings.HasPrefix(name, f.Module) {
		name = f.Module + "." + name
	}
	where := cmp.Or(f.Filename, f.AbsPath, f.Package)
	if where != "" && f.Lineno > 0 {
		where += ":" + strconv.Itoa(f.Lineno)
		if f.Colno > 0 {
			where += ":" + strconv.Itoa(f.Colno)
		}
	}
	where = cmp.Or(where, f.InstructionAddr)
	if where == "" {
		return name
	}
	return name + " at " + where
}

// printFields writes "name: value" lines with the values aligned; an empty value prints as "-".
func printFields(w io.Writer, fields [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], cmp.Or(f[1], "-"))
	}
	return tw.Flush()
}

// timeAgo formats a time as RFC 3339 with how long ago it was.
func timeAgo(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s (%s ago)", rfc3339(t), duration.HumanDuration(time.Since(t)))
}

// truncateRunes shortens s to at most n characters, the last one an ellipsis when it cut.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
