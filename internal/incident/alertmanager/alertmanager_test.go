package alertmanager

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ferrycd/ferry/internal/incident"
)

var ignoreRaw = cmpopts.IgnoreFields(incident.Alert{}, "RawData")

func TestDecodeBatch(t *testing.T) {
	body, err := os.ReadFile("testdata/batch.json")
	if err != nil {
		t.Fatal(err)
	}
	alerts, itemErrs, err := Decode(body, DefaultMapping())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := []incident.Alert{
		{
			Resource: "web01:9100", Event: "NodeDown", Environment: "Staging", Severity: incident.SeverityCritical,
			Service: []string{"web", "api"}, Group: "node", Value: "0",
			Text: "web01:9100 has been unreachable for 5 minutes", Tags: []string{"team=core"},
			Attributes: map[string]any{
				"summary": "web01 down", "runbook_url": "https://runbooks.example/NodeDown",
				"externalUrl":  "http://alertmanager.example:9093",
				"generatorUrl": "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0",
				"moreInfo":     "http://prometheus.example:9090/graph?g0.expr=up+%3D%3D+0",
				"fingerprint":  "a1b2c3d4e5f60718", "startsAt": "2026-01-02T03:04:05.123456789Z",
			},
			Origin: "alertmanager/ferry", EventType: "prometheusAlert",
			CreateTime: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Timeout: 86400,
		},
		{
			Resource: "db01", Event: "NodeDown", Environment: "Production", Severity: incident.SeverityNormal,
			Group: "node", Text: "db01 down", Tags: []string{"instance=pushgw:9091"},
			Attributes: map[string]any{
				"externalUrl": "http://alertmanager.example:9093", "fingerprint": "0f0e0d0c0b0a0908",
				"startsAt": "2026-01-02T02:00:00Z", "endsAt": "2026-01-02T03:00:00Z",
			},
			Origin: "alertmanager/ferry", EventType: "prometheusAlert",
			CreateTime: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC), Timeout: 86400,
		},
		{
			Resource: "namespace=shop,pod=cart-7d9f", Event: "KubePodCrashLooping", Environment: "Production",
			Severity: incident.SeverityWarning, Group: "Prometheus",
			Text: "WARNING: namespace=shop,pod=cart-7d9f is KubePodCrashLooping",
			Tags: []string{"namespace=shop", "pod=cart-7d9f"},
			Attributes: map[string]any{
				incident.AttrOriginalSeverity: "P2", "externalUrl": "http://alertmanager.example:9093",
				"fingerprint": "2222222222222222", "startsAt": "2026-01-02T03:04:05Z",
			},
			Origin: "alertmanager/ferry", EventType: "prometheusAlert",
			CreateTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Timeout: 86400,
		},
	}
	if diff := cmp.Diff(want, alerts, ignoreRaw); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	// rawData is each alert's own JSON, compacted.
	for i, fp := range []string{"a1b2c3d4e5f60718", "0f0e0d0c0b0a0908", "2222222222222222"} {
		var raw struct{ Fingerprint string }
		if err := json.Unmarshal([]byte(alerts[i].RawData), &raw); err != nil || raw.Fingerprint != fp || strings.Contains(alerts[i].RawData, "\n") {
			t.Errorf("alert %d rawData = %q (%v), want the compact JSON of fingerprint %s", i, alerts[i].RawData, err, fp)
		}
	}
	if len(itemErrs) != 1 || itemErrs[0].Index != 2 || itemErrs[0].Fingerprint != "1111111111111111" {
		t.Fatalf("item errors = %v, want one for alerts[2]", itemErrs)
	}
	var fe *incident.FieldError
	if !errors.As(&itemErrs[0], &fe) || fe.Field != "labels.alertname" || !errors.Is(&itemErrs[0], incident.ErrInvalid) {
		t.Errorf("item error = %v, want a FieldError on labels.alertname wrapping ErrInvalid", &itemErrs[0])
	}
}

// payloadOf wraps alert objects in a version 4 payload.
func payloadOf(alerts ...string) []byte {
	return []byte(`{"version":"4","status":"firing","receiver":"r","alerts":[` + strings.Join(alerts, ",") + `]}`)
}

func TestDecodeMapping(t *testing.T) {
	custom := Mapping{
		ResourceLabels: []string{"pod", "instance"}, EventLabel: "alert", EnvironmentLabel: "env",
		SeverityLabel: "level", GroupLabel: "team", ServiceLabel: "app", CorrelateLabel: "pair",
		TimeoutLabel: "ttl", DefaultEnvironment: "dev", DefaultSeverity: incident.SeverityMinor,
		DefaultGroup: "none", DefaultTimeout: 60,
	}
	base := func(mod func(*incident.Alert)) incident.Alert {
		a := incident.Alert{
			Resource: "h1", Event: "Up", Environment: "Production", Severity: incident.SeverityWarning,
			Group: "Prometheus", Text: "WARNING: h1 is Up", Origin: "alertmanager/r", EventType: "prometheusAlert",
			Timeout: 86400,
		}
		mod(&a)
		return a
	}
	tests := []struct {
		name  string
		m     Mapping // the zero Mapping is DefaultMapping
		alert string
		want  incident.Alert
	}{
		{
			name:  "minimal firing alert",
			m:     DefaultMapping(),
			alert: `{"labels":{"alertname":"Up","instance":"h1"}}`,
			want:  base(func(*incident.Alert) {}),
		},
		{
			name:  "status from the payload, severity ignoring case",
			alert: `{"labels":{"alertname":"Up","instance":"h1","severity":"MAJOR"}}`,
			want: base(func(a *incident.Alert) {
				a.Severity, a.Text = incident.SeverityMajor, "MAJOR: h1 is Up"
			}),
		},
		{
			name:  "resolved without endsAt takes startsAt",
			alert: `{"status":"resolved","labels":{"alertname":"Up","instance":"h1"},"startsAt":"2026-01-02T03:04:05+02:00","endsAt":"0001-01-01T00:00:00Z"}`,
			want: base(func(a *incident.Alert) {
				a.Severity, a.Text = incident.SeverityNormal, "NORMAL: h1 is Up"
				a.CreateTime = time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC)
				a.Attributes = map[string]any{"startsAt": "2026-01-02T01:04:05Z"}
			}),
		},
		{
			name:  "timeout and correlate labels, as Alerta reads them",
			alert: `{"labels":{"alertname":"Up","instance":"h1","timeout":"600","correlate":"Down, Up,"}}`,
			want: base(func(a *incident.Alert) {
				a.Timeout = 600
				a.Correlate = []string{"Down", "Up"}
			}),
		},
		{
			name:  "correlate label gets the alert's own event",
			alert: `{"labels":{"alertname":"Up","instance":"h1","correlate":"Down"}}`,
			want: base(func(a *incident.Alert) {
				a.Correlate = []string{"Down", "Up"}
			}),
		},
		{
			name:  "a bad timeout label falls back to the default",
			alert: `{"labels":{"alertname":"Up","instance":"h1","timeout":"soon"}}`,
			want:  base(func(*incident.Alert) {}),
		},
		{
			name:  "no resource label and no other label: the fingerprint",
			alert: `{"labels":{"alertname":"Up","job":"node"},"fingerprint":"ff"}`,
			want: base(func(a *incident.Alert) {
				a.Resource, a.Group, a.Text = "ff", "node", "WARNING: ff is Up"
				a.Attributes = map[string]any{"fingerprint": "ff"}
			}),
		},
		{
			name:  "no resource label, nothing else: n/a",
			alert: `{"labels":{"alertname":"Up"}}`,
			want: base(func(a *incident.Alert) {
				a.Resource, a.Text = "n/a", "WARNING: n/a is Up"
			}),
		},
		{
			name:  "leftover labels too long for a resource: the fingerprint",
			alert: `{"labels":{"alertname":"Up","a":"` + strings.Repeat("p", 600) + `","b":"` + strings.Repeat("q", 600) + `"},"fingerprint":"ff"}`,
			want: base(func(a *incident.Alert) {
				a.Resource, a.Text = "ff", "WARNING: ff is Up"
				a.Tags = []string{"a=" + strings.Repeat("p", 600), "b=" + strings.Repeat("q", 600)}
				a.Attributes = map[string]any{"fingerprint": "ff"}
			}),
		},
		{
			name: "custom mapping",
			m:    custom,
			alert: `{"labels":{"alert":"Up","pod":"p1","instance":"h1","env":"qa","level":"critical","team":"core",
				"app":"shop","pair":"Down","ttl":"30","alertname":"x"},"annotations":{"summary":"s"}}`,
			want: incident.Alert{
				Resource: "p1", Event: "Up", Environment: "qa", Severity: incident.SeverityCritical,
				Correlate: []string{"Down", "Up"}, Service: []string{"shop"}, Group: "core", Text: "s",
				Tags: []string{"alertname=x", "instance=h1"}, Origin: "alertmanager/r", EventType: "prometheusAlert",
				Timeout: 30,
			},
		},
		{
			name:  "custom mapping defaults",
			m:     custom,
			alert: `{"labels":{"alert":"Up","instance":"h1","level":"sev2"}}`,
			want: incident.Alert{
				Resource: "h1", Event: "Up", Environment: "dev", Severity: incident.SeverityMinor, Group: "none",
				Text: "MINOR: h1 is Up", Attributes: map[string]any{incident.AttrOriginalSeverity: "sev2"},
				Origin: "alertmanager/r", EventType: "prometheusAlert", Timeout: 60,
			},
		},
		{
			name:  "a zero Mapping is the default one",
			m:     Mapping{},
			alert: `{"labels":{"alertname":"Up","instance":"h1"}}`,
			want:  base(func(*incident.Alert) {}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alerts, itemErrs, err := Decode(payloadOf(tt.alert), tt.m)
			if err != nil || len(itemErrs) != 0 || len(alerts) != 1 {
				t.Fatalf("Decode = %d alerts, item errors %v, error %v", len(alerts), itemErrs, err)
			}
			if diff := cmp.Diff(tt.want, alerts[0], ignoreRaw); diff != "" {
				t.Errorf("alert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeBodyErrors(t *testing.T) {
	for name, body := range map[string]string{
		"empty":            ``,
		"malformed":        `{"version":"4",`,
		"not an object":    `[1,2]`,
		"null":             `null`,
		"version 3":        `{"version":"3","alerts":[{"labels":{"alertname":"a"}}]}`,
		"no version":       `{"alerts":[{"labels":{"alertname":"a"}}]}`,
		"version a number": `{"version":4,"alerts":[{"labels":{"alertname":"a"}}]}`,
		"no alerts":        `{"version":"4"}`,
		"empty alerts":     `{"version":"4","alerts":[]}`,
		"alerts an object": `{"version":"4","alerts":{"labels":{}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			alerts, itemErrs, err := Decode([]byte(body), DefaultMapping())
			if !errors.Is(err, incident.ErrInvalid) || alerts != nil || itemErrs != nil {
				t.Errorf("Decode = %v, %v, %v; want only an error wrapping ErrInvalid", alerts, itemErrs, err)
			}
		})
	}
}

func TestDecodeItemErrors(t *testing.T) {
	good := `{"labels":{"alertname":"Up","instance":"h1"}}`
	tests := []struct {
		name      string
		alert     string
		wantField string // "" when the error is not about one field
	}{
		{"not an object", `5`, ""},
		{"labels not an object", `{"labels":["a"]}`, "labels"},
		{"label value a number", `{"labels":{"alertname":"Up","n":1}}`, "labels"},
		{"annotations not strings", `{"labels":{"alertname":"Up"},"annotations":{"a":{}}}`, "annotations"},
		{"no alertname", `{"labels":{"instance":"h1"}}`, "labels.alertname"},
		{"empty alertname", `{"labels":{"alertname":"","instance":"h1"}}`, "labels.alertname"},
		{"bad status", `{"status":"pending","labels":{"alertname":"Up"}}`, "status"},
		{"bad startsAt", `{"labels":{"alertname":"Up"},"startsAt":"now"}`, "startsAt"},
		{"bad endsAt", `{"labels":{"alertname":"Up"},"endsAt":"2026-13-01T00:00:00Z"}`, "endsAt"},
		{"NUL in a label", `{"labels":{"alertname":"Up","instance":"h1","x":"a\u0000b"}}`, "tags[0]"},
		{"NUL in the event", `{"labels":{"alertname":"U\u0000p"}}`, "event"},
		{"resource too long", `{"labels":{"alertname":"Up","instance":"` + strings.Repeat("h", incident.MaxNameLen+1) + `"}}`, "resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alerts, itemErrs, err := Decode(payloadOf(good, tt.alert, good), DefaultMapping())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(alerts) != 2 {
				t.Errorf("got %d alerts, want the 2 good ones", len(alerts))
			}
			if len(itemErrs) != 1 || itemErrs[0].Index != 1 {
				t.Fatalf("item errors = %v, want one for alerts[1]", itemErrs)
			}
			ie := &itemErrs[0]
			if !errors.Is(ie, incident.ErrInvalid) {
				t.Errorf("item error %v does not wrap ErrInvalid", ie)
			}
			var fe *incident.FieldError
			got := ""
			if errors.As(ie, &fe) {
				got = fe.Field
			}
			if got != tt.wantField {
				t.Errorf("field = %q, want %q (error %v)", got, tt.wantField, ie)
			}
		})
	}
}

// TestDecodeIdempotent: Alertmanager delivers at least once and repeats every
// repeat_interval; the same payload must map to the same alerts, field for field, so the
// store de-duplicates them.
func TestDecodeIdempotent(t *testing.T) {
	body, err := os.ReadFile("testdata/batch.json")
	if err != nil {
		t.Fatal(err)
	}
	a1, _, err1 := Decode(body, DefaultMapping())
	a2, _, err2 := Decode(body, DefaultMapping())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if diff := cmp.Diff(a1, a2); diff != "" {
		t.Errorf("two decodes differ (-first +second):\n%s", diff)
	}
}

func FuzzDecode(f *testing.F) {
	body, err := os.ReadFile("testdata/batch.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add(payloadOf(`{"labels":{"alertname":"Up","instance":"h1","severity":"x"},"annotations":{"a":"b"}}`))
	f.Add(payloadOf(`{"status":"resolved","labels":{"alertname":"Up"},"startsAt":"2026-01-02T03:04:05Z","endsAt":"bad"}`))
	f.Add([]byte(`{"version":"4","alerts":[null,1,"x",{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		alerts, itemErrs, err := Decode(body, DefaultMapping())
		if err != nil {
			if !errors.Is(err, incident.ErrInvalid) || alerts != nil || itemErrs != nil {
				t.Fatalf("whole-body error %v with results %v %v", err, alerts, itemErrs)
			}
			return
		}
		var p struct{ Alerts []json.RawMessage }
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("Decode accepted a body json rejects: %v", err)
		}
		if len(alerts)+len(itemErrs) != len(p.Alerts) {
			t.Fatalf("%d alerts + %d item errors for %d items", len(alerts), len(itemErrs), len(p.Alerts))
		}
		for i, a := range alerts {
			if err := a.Validate(); err != nil {
				t.Fatalf("alert %d does not validate: %v", i, err)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Fatalf("alert %d does not marshal: %v", i, err)
			}
		}
		last := -1
		for _, ie := range itemErrs {
			if ie.Index <= last || ie.Index >= len(p.Alerts) || !errors.Is(&ie, incident.ErrInvalid) {
				t.Fatalf("bad item error %v (after index %d)", &ie, last)
			}
			last = ie.Index
		}
	})
}
