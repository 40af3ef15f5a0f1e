package testenv

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// amMessage is the part of Alertmanager's webhook payload the tests look at.
type amMessage struct {
	Version     string            `json:"version"`
	GroupKey    string            `json:"groupKey"`
	Status      string            `json:"status"`
	Receiver    string            `json:"receiver"`
	ExternalURL string            `json:"externalURL"`
	CommonLabel map[string]string `json:"commonLabels"`
	Alerts      []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

// amDelivery is one webhook request as the receiver saw it.
type amDelivery struct {
	authorization string
	msg           amMessage
}

// webhookReceiver starts an HTTP server that hands every webhook it gets to the returned
// channel and answers 200.
func webhookReceiver(t *testing.T) (url string, deliveries <-chan amDelivery) {
	t.Helper()
	ch := make(chan amDelivery, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d amDelivery
		d.authorization = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&d.msg); err != nil {
			t.Errorf("decode webhook: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case ch <- d:
		default:
			t.Errorf("webhook dropped: the test is not reading them")
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/v1/webhooks/alertmanager", ch
}

// next waits for the next delivery.
func next(t *testing.T, deliveries <-chan amDelivery, what string) amDelivery {
	t.Helper()
	select {
	case d := <-deliveries:
		return d
	case <-time.After(90 * time.Second):
		t.Fatalf("no webhook: %s", what)
		return amDelivery{}
	}
}

func TestAlertmanagerFiringRepeatResolved(t *testing.T) {
	url, deliveries := webhookReceiver(t)
	am := NewAlertmanager(t, AlertmanagerOptions{
		WebhookURL:    url,
		Authorization: &AMAuthorization{Type: "Key", Credentials: "s3cret"},
	})
	labels := map[string]string{"alertname": "HighErrorRate", "service": "web", "severity": "critical"}
	annotations := map[string]string{"summary": "5% of requests fail"}
	const generator = "http://prometheus.example/graph?g0.expr=errors"
	am.PostAlerts(t, AMAlert{Labels: labels, Annotations: annotations, GeneratorURL: generator})

	type alertView struct {
		Status       string
		Labels       map[string]string
		Annotations  map[string]string
		GeneratorURL string
	}
	check := func(d amDelivery, status string) {
		t.Helper()
		if d.authorization != "Key s3cret" {
			t.Errorf("Authorization header %q, want %q", d.authorization, "Key s3cret")
		}
		if d.msg.Version != "4" || d.msg.Status != status || d.msg.Receiver != amReceiver || d.msg.ExternalURL != am.URL() {
			t.Errorf("payload version %q status %q receiver %q externalURL %q; want 4, %s, %s, %s",
				d.msg.Version, d.msg.Status, d.msg.Receiver, d.msg.ExternalURL, status, amReceiver, am.URL())
		}
		var got []alertView
		for _, a := range d.msg.Alerts {
			got = append(got, alertView{a.Status, a.Labels, a.Annotations, a.GeneratorURL})
		}
		want := []alertView{{status, labels, annotations, generator}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s alerts (-want +got):\n%s", status, diff)
		}
	}

	first := next(t, deliveries, "firing")
	check(first, "firing")
	listed := am.Alerts(t)
	if len(listed) != 1 || !cmp.Equal(listed[0].Labels, labels) || listed[0].Fingerprint == "" {
		t.Errorf("GET /api/v2/alerts = %+v, want the one firing alert", listed)
	} else if len(first.msg.Alerts) == 1 && listed[0].Fingerprint != first.msg.Alerts[0].Fingerprint {
		t.Errorf("listed fingerprint %s, notified %s", listed[0].Fingerprint, first.msg.Alerts[0].Fingerprint)
	}

	// Nothing changes, so the next notification is the repeat of the same group.
	repeat := next(t, deliveries, "repeat of the firing alert")
	check(repeat, "firing")
	if repeat.msg.GroupKey != first.msg.GroupKey {
		t.Errorf("repeat group %q, want %q", repeat.msg.GroupKey, first.msg.GroupKey)
	}

	am.Resolve(t, labels)
	// A repeat may have been on its way when the resolution arrived.
	resolved := next(t, deliveries, "resolved")
	for resolved.msg.Status == "firing" {
		resolved = next(t, deliveries, "resolved")
	}
	check(resolved, "resolved")
	if len(resolved.msg.Alerts) == 1 {
		a := resolved.msg.Alerts[0]
		if a.EndsAt.IsZero() || a.EndsAt.Before(a.StartsAt) || !a.StartsAt.Equal(first.msg.Alerts[0].StartsAt) {
			t.Errorf("resolved alert runs %v to %v; want from %v to a later end", a.StartsAt, a.EndsAt, first.msg.Alerts[0].StartsAt)
		}
	}
	if listed := am.Alerts(t); len(listed) != 0 {
		t.Errorf("GET /api/v2/alerts after Resolve = %+v, want none", listed)
	}
}

func TestAlertmanagerAuthorization(t *testing.T) {
	tests := []struct {
		name string
		auth *AMAuthorization
		want string
	}{
		{"none", nil, ""},
		{"bearer by default", &AMAuthorization{Credentials: "tok"}, "Bearer tok"},
		{"api key", &AMAuthorization{Type: "Key", Credentials: "k=1 2"}, "Key k=1 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, deliveries := webhookReceiver(t)
			am := NewAlertmanager(t, AlertmanagerOptions{WebhookURL: url, Authorization: tt.auth})
			am.PostAlerts(t, AMAlert{Labels: map[string]string{"alertname": "Auth"}})
			d := next(t, deliveries, "firing")
			if d.authorization != tt.want {
				t.Errorf("Authorization header %q, want %q", d.authorization, tt.want)
			}
		})
	}
}

func TestAlertmanagerGroupBy(t *testing.T) {
	url, deliveries := webhookReceiver(t)
	am := NewAlertmanager(t, AlertmanagerOptions{WebhookURL: url, GroupBy: []string{"service"}})
	am.PostAlerts(t,
		AMAlert{Labels: map[string]string{"alertname": "A", "service": "web"}},
		AMAlert{Labels: map[string]string{"alertname": "B", "service": "web"}},
	)
	d := next(t, deliveries, "group of two")
	var names []string
	for _, a := range d.msg.Alerts {
		names = append(names, a.Labels["alertname"])
	}
	if diff := cmp.Diff([]string{"A", "B"}, names); diff != "" {
		t.Errorf("alerts of the group (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"service": "web"}, d.msg.CommonLabel); diff != "" {
		t.Errorf("common labels (-want +got):\n%s", diff)
	}
}

func TestAlertmanagerBinMissing(t *testing.T) {
	t.Setenv("FERRY_ALERTMANAGER", filepath.Join(t.TempDir(), "prometheus-alertmanager"))
	_, err := AlertmanagerBin()
	if !errors.Is(err, ErrNoAlertmanager) {
		t.Errorf("AlertmanagerBin() = %v, want ErrNoAlertmanager", err)
	}
}

func TestAlertmanagerConfigDurations(t *testing.T) {
	b, err := amConfig(AlertmanagerOptions{
		WebhookURL:     "http://127.0.0.1:1/hook",
		GroupWait:      1500 * time.Microsecond,
		RepeatInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Route map[string]any `json:"route"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"receiver":        amReceiver,
		"group_by":        []any{"..."},
		"group_wait":      "2ms",
		"group_interval":  "1000ms",
		"repeat_interval": "3600000ms",
	}
	if diff := cmp.Diff(want, got.Route); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
}
