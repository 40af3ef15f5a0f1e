package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ferrycd/ferry/api/v1alpha1"
	"github.com/ferrycd/ferry/internal/delivery"
)

// waitPollInterval is how often --wait reads the Application: status changes once per sync,
// so polling is as quick as a watch here and survives apiserver restarts without resuming.
const waitPollInterval = 500 * time.Millisecond

var (
	errNotFound    = errors.New("not found")
	errNotReady    = errors.New("is not ready")
	errStalled     = errors.New("is stalled")
	errWaitTimeout = errors.New("no sync result")
)

// appFlags are the connection flags every `ferry app` command shares.
type appFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

// appClient reads and patches Applications in the namespace the flags and kubeconfig chose.
type appClient struct {
	c   client.Client
	cfg *rest.Config
	ns  string
}

func newAppCmd(e *env) *cobra.Command {
	f := &appFlags{}
	cmd := &cobra.Command{
		Use:     "app",
		Aliases: []string{"apps"},
		Short:   "List, inspect, sync, suspend and roll back Applications",
		Long: `Work with the Applications of a cluster through your kubeconfig, like kubectl: the
cluster, user and namespace come from the current context unless flags say otherwise.`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	pf.StringVar(&f.context, "context", "", "kubeconfig context (default: the current context)")
	pf.StringVarP(&f.namespace, "namespace", "n", "", `namespace of the Applications (default: the context's namespace, else "default")`)
	cmd.AddCommand(
		newAppListCmd(e, f),
		newAppGetCmd(e, f),
		newAppHistoryCmd(e, f),
		newAppSyncCmd(e, f),
		newAppSuspendCmd(e, f),
		newAppResumeCmd(e, f),
		newAppRollbackCmd(e, f),
		newAppDiffCmd(e, f),
	)
	return cmd
}

// connect loads the kubeconfig the way kubectl does and returns a client for Applications.
func (f *appFlags) connect(e *env) (*appClient, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	// Read $KUBECONFIG through env, not os.Getenv, so tests can set it.
	rules.Precedence = []string{clientcmd.RecommendedHomeFile}
	if v, ok := e.lookupEnv(clientcmd.RecommendedConfigPathEnvVar); ok && v != "" {
		rules.Precedence = filepath.SplitList(v)
	}
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	scheme, err := delivery.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Host, err)
	}
	return &appClient{c: c, cfg: cfg, ns: ns}, nil
}

// load connects to the cluster and reads the named Application.
func (f *appFlags) load(ctx context.Context, e *env, name string) (*appClient, *v1alpha1.Application, error) {
	a, err := f.connect(e)
	if err != nil {
		return nil, nil, err
	}
	app, err := a.get(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return a, app, nil
}

func (a *appClient) key(name string) string { return a.ns + "/" + name }

// explain turns an API error about Application name into one a user can act on.
func (a *appClient) explain(name string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("application %s %w", a.key(name), errNotFound)
	case apimeta.IsNoMatchError(err):
		return fmt.Errorf("the cluster has no Application CRD (install Ferry first): %w", err)
	}
	return fmt.Errorf("application %s: %w", a.key(name), err)
}

func (a *appClient) get(ctx context.Context, name string) (*v1alpha1.Application, error) {
	app := &v1alpha1.Application{}
	if err := a.c.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: name}, app); err != nil {
		return nil, a.explain(name, err)
	}
	return app, nil
}

// patch applies a JSON merge patch to Application name.
func (a *appClient) patch(ctx context.Context, name string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("encode patch: %w", err)
	}
	app := &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name}}
	if err := a.c.Patch(ctx, app, client.RawPatch(types.MergePatchType, data)); err != nil {
		return a.explain(name, err)
	}
	return nil
}

// forOutput readies an Application for -o json|yaml: typed clients drop the kind, and managed
// fields are noise to a reader, which is why kubectl hides them too.
func forOutput(app *v1alpha1.Application) {
	app.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Application"))
	app.ManagedFields = nil
}

func newAppListCmd(e *env, f *appFlags) *cobra.Command {
	var (
		output string
		all    bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List Applications with their sync, health, revision and readiness",
		Example: `  ferry app list
  ferry app list -A
  ferry app list -n team-a -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			a, err := f.connect(e)
			if err != nil {
				return err
			}
			var opts []client.ListOption
			where := "in namespace " + a.ns
			if all {
				where = "in any namespace"
			} else {
				opts = append(opts, client.InNamespace(a.ns))
			}
			var list v1alpha1.ApplicationList
			if err := a.c.List(cmd.Context(), &list, opts...); err != nil {
				if apimeta.IsNoMatchError(err) {
					return fmt.Errorf("the cluster has no Application CRD (install Ferry first): %w", err)
				}
				return fmt.Errorf("list applications %s: %w", where, err)
			}
			slices.SortStableFunc(list.Items, func(x, y v1alpha1.Application) int {
				return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
			})
			if output != outputTable {
				list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ApplicationList"))
				for i := range list.Items {
					forOutput(&list.Items[i])
				}
				return printObject(e.stdout, output, &list)
			}
			if len(list.Items) == 0 {
				fmt.Fprintf(e.stderr, "No applications %s.\n", where)
				return nil
			}
			header := []string{"NAME", "SYNC", "HEALTH", "REVISION", "READY", "AGE"}
			if all {
				header = append([]string{"NAMESPACE"}, header...)
			}
			rows := make([][]string, 0, len(list.Items))
			for _, app := range list.Items {
				row := []string{
					app.Name,
					string(app.Status.Sync.Status),
					string(app.Status.Health.Status),
					short(app.Status.Sync.Revision),
					readySummary(&app),
					duration.HumanDuration(time.Since(app.CreationTimestamp.Time)),
				}
				if all {
					row = append([]string{app.Namespace}, row...)
				}
				rows = append(rows, row)
			}
			return printTable(e.stdout, header, rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the Applications of every namespace")
	return cmd
}

// readySummary is the Ready condition's status and reason, such as "False (SyncFailed)".
func readySummary(app *v1alpha1.Application) string {
	c := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return string(metav1.ConditionUnknown)
	}
	return fmt.Sprintf("%s (%s)", c.Status, c.Reason)
}

// short abbreviates a commit SHA as git does.
func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func newAppGetCmd(e *env, f *appFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show an Application: source, destination, sync, health, conditions and inventory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			_, app, err := f.load(cmd.Context(), e, args[0])
			if err != nil {
				return err
			}
			if output != outputTable {
				forOutput(app)
				return printObject(e.stdout, output, app)
			}
			return printApp(e.stdout, app)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

// printApp writes the human summary of `ferry app get`.
func printApp(w io.Writer, app *v1alpha1.Application) error {
	src, st := app.Spec.Source, app.Status
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	field := func(name, value string) {
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", name, value)
	}
	field("Name", app.Namespace+"/"+app.Name)
	field("Repository", src.RepoURL)
	field("  Revision", cmp.Or(src.Revision, "(default branch)"))
	field("  Path", cmp.Or(src.Path, "(repository root)"))
	field("  Kind", sourceKind(src))
	dest := "namespace " + app.Spec.Destination.Namespace
	if app.Spec.Destination.CreateNamespace {
		dest += " (created when missing)"
	}
	field("Destination", dest)
	field("Environment", cmp.Or(app.Spec.Environment, app.Spec.Destination.Namespace))
	field("Sync policy", syncPolicy(app.Spec.SyncPolicy))
	field("Suspended", strconv.FormatBool(app.Spec.Suspend))
	syncLine := string(cmp.Or(st.Sync.Status, v1alpha1.SyncUnknown))
	if st.Sync.Revision != "" {
		syncLine += " at " + st.Sync.Revision
	}
	field("Sync", syncLine)
	health := string(cmp.Or(st.Health.Status, v1alpha1.HealthUnknown))
	if st.Health.Message != "" {
		health += ": " + st.Health.Message
	}
	field("Health", health)
	if ready := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); ready != nil {
		field("Ready", fmt.Sprintf("%s (%s): %s", ready.Status, ready.Reason, ready.Message))
	} else {
		field("Ready", string(metav1.ConditionUnknown))
	}
	if st.Rollback != nil {
		field("Pinned", fmt.Sprintf("%s by a rollback since %s", st.Rollback.Revision, formatTime(st.Rollback.PinnedAt)))
	} else if pin := app.Annotations[v1alpha1.AnnotationRollbackTo]; pin != "" {
		field("Pinned", pin+" (requested)")
	}
	lastSync := ""
	if st.LastSyncedAt != nil {
		lastSync = fmt.Sprintf("%s (%s ago)", formatTime(*st.LastSyncedAt), duration.HumanDuration(time.Since(st.LastSyncedAt.Time)))
	}
	field("Last sync", lastSync)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nConditions:")
	conds := make([][]string, 0, len(st.Conditions))
	for _, c := range st.Conditions {
		conds = append(conds, []string{c.Type, string(c.Status), c.Reason, c.Message})
	}
	if err := printTable(w, []string{"TYPE", "STATUS", "REASON", "MESSAGE"}, conds); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nInventory:")
	inv := make([][]string, 0, len(st.Inventory))
	for _, o := range st.Inventory {
		inv = append(inv, []string{o.Kind, o.Namespace, o.Name})
	}
	return printTable(w, []string{"KIND", "NAMESPACE", "NAME"}, inv)
}

func sourceKind(src v1alpha1.Source) string {
	switch {
	case src.Helm != nil:
		return "helm"
	case src.Kustomize != nil:
		return "kustomize"
	case src.Directory != nil && src.Directory.Recurse:
		return "directory (recursive)"
	}
	return "directory"
}

func syncPolicy(p v1alpha1.SyncPolicy) string {
	var parts []string
	if p.Automated {
		parts = append(parts, "automated")
	} else {
		parts = append(parts, "manual")
	}
	if p.Prune {
		parts = append(parts, "prune")
	}
	if p.SelfHeal {
		parts = append(parts, "self-heal")
	}
	s := strings.Join(parts, ", ")
	if p.Interval != nil {
		s += "; every " + p.Interval.Duration.String()
	}
	return s
}

// formatTime is how ferry prints instants: RFC 3339 in UTC, whatever the local zone.
func formatTime(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func newAppHistoryCmd(e *env, f *appFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List an Application's last syncs, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			_, app, err := f.load(cmd.Context(), e, args[0])
			if err != nil {
				return err
			}
			history := delivery.HistoryNewestFirst(app)
			if output != outputTable {
				return printObject(e.stdout, output, history)
			}
			rows := make([][]string, 0, len(history))
			for _, h := range history {
				rel := ""
				if h.ReleaseID != 0 {
					rel = strconv.FormatInt(h.ReleaseID, 10)
				}
				rows = append(rows, []string{strconv.FormatInt(h.ID, 10), short(h.Revision), formatTime(h.DeployedAt), h.Result, rel})
			}
			return printTable(e.stdout, []string{"ID", "REVISION", "DEPLOYED", "RESULT", "RELEASE"}, rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table, json or yaml")
	return cmd
}

// waitFlags are the flags of commands that can wait for the sync they ask for.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) bind(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "wait for the sync to finish; fail unless the Application ends Ready")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 5*time.Minute, "how long --wait waits")
}

// syncRequest is a new value for the ferry.dev/sync-requested annotation.
func newAppSyncCmd(e *env, f *appFlags) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync an Application now, also when automated sync is off",
		Example: `  ferry app sync web
  ferry app sync web --wait --timeout 10m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			a, app, err := f.load(ctx, e, name)
			if err != nil {
				return err
			}
			if app.Spec.Suspend {
				return fmt.Errorf("application %s %w: run `ferry app resume %s` first", a.key(name), delivery.ErrSuspended, name)
			}
			req := delivery.SyncRequest()
			if err := a.patch(ctx, name, delivery.SyncPatch(req)); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "application %s: sync requested\n", a.key(name))
			if !w.wait {
				return nil
			}
			return a.wait(ctx, e.stdout, name, req, w.timeout)
		},
	}
	w.bind(cmd)
	return cmd
}

// wait polls Application name until the controller has answered sync request req and
// reports the outcome: nil when Ready is True, an error with the reason otherwise. It
// prints a line each time the Ready condition changes.
func (a *appClient) wait(ctx context.Context, out io.Writer, name, req string, timeout time.Duration) error {
	// Reads use ctx, not deadline: client-go refuses a request that might outlast its
	// context, and a read started before the deadline should still count.
	deadline, cancel := context.WithTimeoutCause(ctx, timeout, errWaitTimeout)
	defer cancel()
	fmt.Fprintf(out, "waiting up to %s for application %s to sync\n", timeout, a.key(name))
	tick := time.NewTicker(waitPollInterval)
	defer tick.Stop()
	last, first := "", true
	for {
		app, err := a.get(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return a.waitEnded(deadline, name, last, timeout)
			}
			return err
		}
		ready := readyLine(app)
		if ready != last && !first {
			fmt.Fprintln(out, "  "+ready)
		}
		last, first = ready, false
		if done, err := syncResult(app, req); done {
			if err != nil {
				return fmt.Errorf("application %s %w", a.key(name), err)
			}
			c := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionReady)
			fmt.Fprintf(out, "application %s is ready at revision %s: %s\n", a.key(name), short(app.Status.Sync.Revision), c.Message)
			return nil
		}
		select {
		case <-deadline.Done():
			return a.waitEnded(deadline, name, last, timeout)
		case <-tick.C:
		}
	}
}

func (a *appClient) waitEnded(ctx context.Context, name, ready string, timeout time.Duration) error {
	if cause := context.Cause(ctx); !errors.Is(cause, errWaitTimeout) {
		return fmt.Errorf("wait for application %s: %w", a.key(name), cause)
	}
	return fmt.Errorf("application %s: %w after %s; last seen %s", a.key(name), errWaitTimeout, timeout, ready)
}

func readyLine(app *v1alpha1.Application) string {
	c := apimeta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return "Ready=Unknown"
	}
	return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

// syncResult says whether the controller has finished answering sync request req and, if
// so, whether the Application failed. The controller writes lastHandledSyncRequest and the
// conditions in one status update, so the conditions seen with req are the sync's own.
func syncResult(app *v1alpha1.Application, req string) (bool, error) {
	conds := app.Status.Conditions
	if app.Status.LastHandledSyncRequest != req || apimeta.IsStatusConditionTrue(conds, v1alpha1.ConditionReconciling) {
		return false, nil
	}
	if s := apimeta.FindStatusCondition(conds, v1alpha1.ConditionStalled); s != nil && s.Status == metav1.ConditionTrue {
		return true, fmt.Errorf("%w: %s: %s", errStalled, s.Reason, s.Message)
	}
	r := apimeta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	switch {
	case r == nil || r.Status == metav1.ConditionUnknown:
		return false, nil
	case r.Status == metav1.ConditionTrue:
		return true, nil
	}
	return true, fmt.Errorf("%w: %s: %s", errNotReady, r.Reason, r.Message)
}

func newAppSuspendCmd(e *env, f *appFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "suspend NAME",
		Short: "Stop every sync of an Application, automated or requested, until resume",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := f.connect(e)
			if err != nil {
				return err
			}
			if err := a.patch(cmd.Context(), args[0], map[string]any{"spec": map[string]any{"suspend": true}}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "application %s suspended\n", a.key(args[0]))
			return nil
		},
	}
}

func newAppResumeCmd(e *env, f *appFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume syncs of an Application and end a rollback pin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			a, app, err := f.load(ctx, e, name)
			if err != nil {
				return err
			}
			patch := delivery.ResumePatch()
			if err := a.patch(ctx, name, patch); err != nil {
				return err
			}
			msg := fmt.Sprintf("application %s resumed", a.key(name))
			if pin := app.Annotations[v1alpha1.AnnotationRollbackTo]; pin != "" {
				msg += fmt.Sprintf("; rollback pin to %s removed", short(pin))
			}
			fmt.Fprintln(e.stdout, msg)
			return nil
		},
	}
}

func newAppRollbackCmd(e *env, f *appFlags) *cobra.Command {
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "rollback NAME [HISTORY_ID]",
		Short: "Pin an Application to the commit of an earlier successful sync",
		Long: `Pin an Application to the commit of an entry of its history (see ferry app history):
by default the newest successful sync of a commit other than the current one. The pin holds
with automated sync on; the next commit on the tracked revision, or ferry app resume, ends it.`,
		Example: `  ferry app rollback web
  ferry app rollback web 7 --wait`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			var id int64
			if len(args) == 2 {
				var err error
				if id, err = strconv.ParseInt(args[1], 10, 64); err != nil || id < 1 {
					return fmt.Errorf("history ID %q: want a positive number from ferry app history", args[1])
				}
			}
			a, app, err := f.load(ctx, e, name)
			if err != nil {
				return err
			}
			if app.Spec.Suspend {
				// resume removes the pin, so a pin set now would never be synced.
				return fmt.Errorf("application %s %w: run `ferry app resume %s`, then roll back", a.key(name), delivery.ErrSuspended, name)
			}
			target, err := delivery.RollbackTarget(app, id)
			if err != nil {
				return fmt.Errorf("application %s: %w (see ferry app history)", a.key(name), err)
			}
			req := delivery.SyncRequest()
			if err := a.patch(ctx, name, delivery.RollbackPatch(target.Revision, req)); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "application %s pinned to %s (history %d, deployed %s)\n",
				a.key(name), target.Revision, target.ID, formatTime(target.DeployedAt))
			if !w.wait {
				return nil
			}
			return a.wait(ctx, e.stdout, name, req, w.timeout)
		},
	}
	w.bind(cmd)
	return cmd
}
