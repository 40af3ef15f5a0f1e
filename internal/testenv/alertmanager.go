package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrNoAlertmanager means the Prometheus Alertmanager binary is not installed.
var ErrNoAlertmanager = errors.New("alertmanager binary missing")

// Defaults of AlertmanagerOptions: short enough that a test sees a first notification, a
// repeat and a resolution within seconds.
const (
	DefaultAMGroupWait      = 100 * time.Millisecond
	DefaultAMGroupInterval  = time.Second
	DefaultAMRepeatInterval = 2500 * time.Millisecond
)

// AlertmanagerBin returns the path of the alertmanager binary: $FERRY_ALERTMANAGER, else
// prometheus-alertmanager (Debian's name) on $PATH. hack/alertmanager.sh (`make testbin`)
// installs it. The error wraps ErrNoAlertmanager when there is none.
func AlertmanagerBin() (string, error) {
	if bin := os.Getenv("FERRY_ALERTMANAGER"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%w: FERRY_ALERTMANAGER=%s: %w; run \"make testbin\" to install it", ErrNoAlertmanager, bin, err)
		}
		return bin, nil
	}
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		return "", fmt.Errorf("%w: %w; run \"make testbin\" to install it, or set FERRY_ALERTMANAGER", ErrNoAlertmanager, err)
	}
	return bin, nil
}

// AlertmanagerOptions configures NewAlertmanager. Only WebhookURL is required.
//
// Alertmanager sends a group's first notification GroupWait after its first alert arrives
// (at once when the alert's StartsAt is older than that), then looks at the group every
// GroupInterval: it notifies when the set of firing or resolved alerts changed, and
// otherwise repeats the last notification on the first look that is more than
// RepeatInterval after the last send. So repeats come every smallest multiple of
// GroupInterval greater than RepeatInterval (3s with the defaults). Alertmanager 0.25
// refuses a zero GroupInterval or RepeatInterval and has no other floor; durations are
// rounded up to whole milliseconds.
type AlertmanagerOptions struct {
	// WebhookURL receives every notification, as webhook payload version 4 with every alert
	// of the group (max_alerts 0) and resolutions too (send_resolved).
	WebhookURL string
	// Authorization, when set, makes Alertmanager send it with every webhook.
	Authorization *AMAuthorization
	// GroupBy lists the labels that group alerts into one notification; nil means every
	// alert is a group of its own ("...").
	GroupBy []string
	// GroupWait, GroupInterval and RepeatInterval are the route's timers; zero means
	// DefaultAMGroupWait, DefaultAMGroupInterval and DefaultAMRepeatInterval.
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	// Bin is the alertmanager binary; empty means the result of AlertmanagerBin().
	Bin string
}

// AMAuthorization becomes the webhook's http_config.authorization: Alertmanager sends the
// header "Authorization: <Type> <Credentials>".
type AMAuthorization struct {
	// Type is the scheme, such as "Bearer" or "Key"; empty means "Bearer". Alertmanager
	// refuses "Basic".
	Type        string
	Credentials string
}

// AMAlert is an alert of Alertmanager's v2 API, as PostAlerts sends it and Alerts returns it.
type AMAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// StartsAt zero means the time Alertmanager receives the alert.
	StartsAt time.Time `json:"startsAt,omitzero"`
	// EndsAt zero means firing until resolve_timeout (5m) passes without a new post; a time
	// in the past resolves the alert.
	EndsAt       time.Time `json:"endsAt,omitzero"`
	GeneratorURL string    `json:"generatorURL,omitempty"`
	// Fingerprint is Alertmanager's hash of Labels; Alerts fills it, PostAlerts never sends it.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Alertmanager is a real Prometheus Alertmanager on a free loopback port with a single
// route to one webhook receiver and clustering off.
type Alertmanager struct {
	url    string
	client *http.Client

	mu     sync.Mutex
	posted map[string]AMAlert // by labelKey, what PostAlerts last sent
}

// amReceiver names the only receiver; notifications carry it as "receiver".
const amReceiver = "webhook"

// NewAlertmanager starts an Alertmanager for one test, with its storage in tb.TempDir(), and
// returns once /-/ready answers. It stops when the test ends and copies its log into the
// test's log. A missing binary fails the test, never skips it: CI installs it, and must
// prove what needs it.
func NewAlertmanager(tb testing.TB, opts AlertmanagerOptions) *Alertmanager {
	tb.Helper()
	if opts.WebhookURL == "" {
		tb.Fatal("NewAlertmanager: AlertmanagerOptions.WebhookURL is required")
	}
	bin := opts.Bin
	if bin == "" {
		var err error
		if bin, err = AlertmanagerBin(); err != nil {
			tb.Fatal(err)
		}
	}
	dir := tb.TempDir()
	config, err := amConfig(opts)
	if err != nil {
		tb.Fatal(err)
	}
	configPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		tb.Fatalf("write alertmanager config: %v", err)
	}

	ctx, cancel := context.WithTimeout(tb.Context(), DefaultStartTimeout)
	defer cancel()
	transport := &http.Transport{}
	am := &Alertmanager{client: &http.Client{Transport: transport, Timeout: time.Minute}, posted: map[string]AMAlert{}}
	// Another process may take the port between freePorts and the bind; a few tries make
	// that race harmless.
	const attempts = 3
	var proc *process
	for attempt := 1; ; attempt++ {
		proc, err = am.start(ctx, bin, dir, configPath)
		if err == nil || attempt == attempts || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		tb.Fatalf("start alertmanager: %v", err)
	}
	tb.Cleanup(func() {
		transport.CloseIdleConnections()
		if err := proc.stop(DefaultStopTimeout); err != nil {
			tb.Errorf("stop alertmanager: %v", err)
		}
		copyLog(tb, proc.logPath)
	})
	return am
}

// start runs the server once and waits until it is ready; on failure it leaves no process.
func (am *Alertmanager) start(ctx context.Context, bin, dir, configPath string) (*process, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	am.url = "http://" + hostPort(ports[0])
	logPath := filepath.Join(dir, "alertmanager.log")
	if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old alertmanager log: %w", err)
	}
	p, err := startProcess(dir, "alertmanager", bin, []string{
		"--config.file=" + configPath,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + hostPort(ports[0]),
		// Links in notifications (externalURL, silence URLs) then name this server.
		"--web.external-url=" + am.url,
		// No peers: the default would listen on 0.0.0.0:9094 and wait for gossip to settle.
		"--cluster.listen-address=",
		"--log.level=debug",
	}, nil)
	if err != nil {
		return nil, err
	}
	probes := &prober{client: am.client}
	if err := p.waitFor(ctx, "alertmanager /-/ready", probes.get(am.url+"/-/ready")); err != nil {
		return nil, errors.Join(err, p.stop(DefaultStopTimeout))
	}
	return p, nil
}

// copyLog writes the file at path into tb's log, a line a call.
func copyLog(tb testing.TB, path string) {
	f, err := os.Open(path)
	if err != nil {
		tb.Logf("alertmanager log: %v", err)
		return
	}
	defer f.Close()
	w := LogWriter(tb)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		_, _ = w.Write(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		tb.Logf("alertmanager log: %v", err)
	}
}

// amConfig renders the configuration file. JSON is YAML, and encoding/json quotes whatever
// a URL or credential holds.
func amConfig(opts AlertmanagerOptions) ([]byte, error) {
	groupBy := opts.GroupBy
	if groupBy == nil {
		groupBy = []string{"..."}
	}
	duration := func(d, def time.Duration) string {
		if d <= 0 {
			d = def
		}
		// Alertmanager's duration syntax has no fractions; whole milliseconds always parse.
		return fmt.Sprintf("%dms", (d+time.Millisecond-1)/time.Millisecond)
	}
	webhook := map[string]any{
		"url":           opts.WebhookURL,
		"send_resolved": true,
		"max_alerts":    0,
	}
	if a := opts.Authorization; a != nil {
		typ := a.Type
		if typ == "" {
			typ = "Bearer"
		}
		webhook["http_config"] = map[string]any{
			"authorization": map[string]string{"type": typ, "credentials": a.Credentials},
		}
	}
	config := map[string]any{
		"route": map[string]any{
			"receiver":        amReceiver,
			"group_by":        groupBy,
			"group_wait":      duration(opts.GroupWait, DefaultAMGroupWait),
			"group_interval":  duration(opts.GroupInterval, DefaultAMGroupInterval),
			"repeat_interval": duration(opts.RepeatInterval, DefaultAMRepeatInterval),
		},
		"receivers": []any{map[string]any{
			"name":            amReceiver,
			"webhook_configs": []any{webhook},
		}},
	}
	b, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render alertmanager config: %w", err)
	}
	return b, nil
}

// URL returns the server's address, http://127.0.0.1:PORT.
func (am *Alertmanager) URL() string { return am.url }

// PostAlerts sends alerts to POST /api/v2/alerts, as Prometheus does, and fails the test
// unless Alertmanager accepts them all.
func (am *Alertmanager) PostAlerts(tb testing.TB, alerts ...AMAlert) {
	tb.Helper()
	body := make([]AMAlert, len(alerts))
	for i, a := range alerts {
		a.Fingerprint = ""
		body[i] = a
	}
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatalf("encode alerts: %v", err)
	}
	if _, err := am.do(tb.Context(), http.MethodPost, "/api/v2/alerts", b); err != nil {
		tb.Fatal(err)
	}
	am.mu.Lock()
	defer am.mu.Unlock()
	for _, a := range body {
		am.posted[labelKey(a.Labels)] = a
	}
}

// Resolve resolves the alert with exactly these labels by posting it again with EndsAt now,
// as Prometheus does once an alert stops firing. The annotations, StartsAt and GeneratorURL
// are those PostAlerts last sent for the labels, so the resolved notification carries them.
func (am *Alertmanager) Resolve(tb testing.TB, labels map[string]string) {
	tb.Helper()
	am.mu.Lock()
	a, ok := am.posted[labelKey(labels)]
	am.mu.Unlock()
	if !ok {
		a = AMAlert{Labels: labels}
	}
	a.EndsAt = time.Now()
	if a.StartsAt.After(a.EndsAt) {
		a.StartsAt = a.EndsAt // Alertmanager refuses an alert that ends before it starts
	}
	am.PostAlerts(tb, a)
}

// Alerts returns the alerts GET /api/v2/alerts lists: those still firing, silenced and
// inhibited ones included.
func (am *Alertmanager) Alerts(tb testing.TB) []AMAlert {
	tb.Helper()
	b, err := am.do(tb.Context(), http.MethodGet, "/api/v2/alerts", nil)
	if err != nil {
		tb.Fatal(err)
	}
	var alerts []AMAlert
	if err := json.Unmarshal(b, &alerts); err != nil {
		tb.Fatalf("decode GET /api/v2/alerts: %v", err)
	}
	return alerts
}

// do sends one API request and returns the body of a 200 answer.
func (am *Alertmanager) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, am.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := am.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("alertmanager %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("alertmanager %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// labelKey identifies a label set the way Alertmanager does: by every name and value.
func labelKey(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for name, value := range labels {
		// Alertmanager drops empty labels before it identifies an alert.
		if value != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%q=%q,", name, labels[name])
	}
	return b.String()
}
