package incident

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var hbNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func TestDecodeHeartbeat(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		opts    HeartbeatOptions
		want    Heartbeat
		wantErr []string // the fields reported; nil for success
	}{
		{
			name: "minimal takes the defaults",
			body: `{"origin":"cron/db1"}`,
			want: Heartbeat{Origin: "cron/db1", Tags: []string{}, Attributes: map[string]any{}, EventType: "Heartbeat",
				CreateTime: hbNow, Timeout: 86400, MaxLatency: 2000, ReceiveTime: hbNow},
		},
		{
			name: "full, server fields ignored",
			body: `{"id":"mine","origin":"cron/db1","tags":["environment=Staging","db"],"attributes":{"n":12345678901234567890},
				"type":"Other","createTime":"2026-05-04T09:59:59.500Z","timeout":120,"receiveTime":"2020-01-01T00:00:00Z",
				"customer":"acme","status":"expired","unknown":1}`,
			opts: HeartbeatOptions{DefaultTimeout: 60, MaxLatency: 500},
			want: Heartbeat{Origin: "cron/db1", Tags: []string{"environment=Staging", "db"},
				Attributes: map[string]any{"n": json.Number("12345678901234567890")}, EventType: "Heartbeat",
				CreateTime: hbNow.Add(-500 * time.Millisecond), Timeout: 120, MaxLatency: 500, ReceiveTime: hbNow, Customer: "acme"},
		},
		{
			name: "zero and null timeouts are the default",
			body: `{"origin":"o","timeout":0,"tags":null,"attributes":null}`,
			opts: HeartbeatOptions{DefaultTimeout: 300},
			want: Heartbeat{Origin: "o", Tags: []string{}, Attributes: map[string]any{}, EventType: "Heartbeat",
				CreateTime: hbNow, Timeout: 300, MaxLatency: 2000, ReceiveTime: hbNow},
		},
		{name: "origin required", body: `{"tags":[]}`, wantErr: []string{"origin"}},
		{name: "blank origin", body: `{"origin":"  "}`, wantErr: []string{"origin"}},
		{name: "wrong types", body: `{"origin":1,"tags":"a","attributes":[],"timeout":"60","customer":7}`,
			wantErr: []string{"origin", "tags", "attributes", "timeout", "customer"}},
		{name: "fractional timeout", body: `{"origin":"o","timeout":1.5}`, wantErr: []string{"timeout"}},
		{name: "negative timeout", body: `{"origin":"o","timeout":-1}`, wantErr: []string{"timeout"}},
		{name: "timeout too long", body: `{"origin":"o","timeout":315360001}`, wantErr: []string{"timeout"}},
		{name: "empty customer", body: `{"origin":"o","customer":""}`, wantErr: []string{"customer"}},
		{name: "bad createTime", body: `{"origin":"o","createTime":"yesterday"}`, wantErr: []string{"createTime"}},
		{name: "NUL in origin", body: `{"origin":"a\u0000b"}`, wantErr: []string{"origin"}},
		{name: "origin too long", body: `{"origin":"` + strings.Repeat("x", MaxNameLen+1) + `"}`, wantErr: []string{"origin"}},
		{name: "bad tag", body: `{"origin":"o","tags":["ok","\u0000"]}`, wantErr: []string{"tags[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeHeartbeat([]byte(tt.body), hbNow, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
				if diff := cmp.Diff(tt.wantErr, badFields(err)); diff != "" {
					t.Errorf("fields reported (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeHeartbeat (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeHeartbeatNotAnObject(t *testing.T) {
	for _, body := range []string{``, `[]`, `null`, `"origin"`, `{"origin":`} {
		if _, err := DecodeHeartbeat([]byte(body), hbNow, HeartbeatOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeHeartbeat(%q) = %v, want ErrInvalid", body, err)
		}
	}
}

func TestHeartbeatStatusAt(t *testing.T) {
	hb := Heartbeat{Origin: "o", CreateTime: hbNow.Add(-time.Second), ReceiveTime: hbNow, Timeout: 60, MaxLatency: 2000}
	slow := hb
	slow.CreateTime = hbNow.Add(-2001 * time.Millisecond)
	defaultLatency := slow
	defaultLatency.MaxLatency = 0
	lenient := slow
	lenient.MaxLatency = 5000
	tests := []struct {
		name string
		hb   Heartbeat
		now  time.Time
		want HeartbeatStatus
	}{
		{"just received", hb, hbNow, HeartbeatOK},
		{"at the timeout", hb, hbNow.Add(time.Minute), HeartbeatOK},
		{"past the timeout", hb, hbNow.Add(time.Minute + time.Microsecond), HeartbeatExpired},
		{"slow", slow, hbNow, HeartbeatSlow},
		{"slow with the default max latency", defaultLatency, hbNow, HeartbeatSlow},
		{"within a larger max latency", lenient, hbNow, HeartbeatOK},
		{"expiry wins over slowness", slow, hbNow.Add(2 * time.Minute), HeartbeatExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.hb.StatusAt(tt.now); got != tt.want {
				t.Errorf("StatusAt(%s) = %s, want %s", tt.now, got, tt.want)
			}
		})
	}
}

func TestHeartbeatAt(t *testing.T) {
	hb := Heartbeat{Origin: "o", CreateTime: hbNow.Add(-1500 * time.Millisecond), ReceiveTime: hbNow, Timeout: 60}
	got := hb.At(hbNow.Add(90*time.Second + 900*time.Millisecond))
	if got.Latency != 1500 || got.Since != 90 || got.Status != HeartbeatExpired {
		t.Errorf("At = latency %d, since %d, status %s; want 1500, 90, expired", got.Latency, got.Since, got.Status)
	}
	if hb.Status != "" {
		t.Errorf("At changed its receiver")
	}
	// A heartbeat looked at before its receipt (a clock step) is not negative.
	if got := hb.At(hbNow.Add(-time.Hour)); got.Since != 0 || got.Status != HeartbeatOK {
		t.Errorf("At before receipt = since %d, status %s", got.Since, got.Status)
	}
}

func TestHeartbeatAlerts(t *testing.T) {
	hb := Heartbeat{ID: "hb1", Origin: "cron/db1", Tags: []string{"db"}, Attributes: map[string]any{"service": "billing"},
		EventType: "Heartbeat", CreateTime: hbNow, Timeout: 120, ReceiveTime: hbNow, Customer: "acme"}
	failAt := hbNow.Add(125 * time.Second)
	fail := hb.FailAlert(failAt, "Staging")
	want := Alert{
		Resource: "cron/db1", Event: "HeartbeatFail", Environment: "Staging", Severity: SeverityMajor,
		Correlate: []string{"HeartbeatFail", "HeartbeatSlow", "HeartbeatOK"}, Service: []string{"billing"}, Group: "System",
		Value: "2m5s", Text: "Heartbeat not received in 120 seconds", Tags: []string{"db"},
		Attributes: map[string]any{"service": "billing"}, Origin: "ferry/heartbeat", EventType: "heartbeatAlert",
		CreateTime: failAt, Customer: "acme",
	}
	if diff := cmp.Diff(want, fail); diff != "" {
		t.Errorf("FailAlert (-want +got):\n%s", diff)
	}
	clearAt := hbNow.Add(time.Hour)
	clearing := hb.ClearAlert(clearAt, "Staging")
	want.Event, want.Severity, want.Value, want.Text, want.CreateTime = "HeartbeatOK", SeverityNormal, "1h0m0s",
		"Heartbeat received again after 1h0m0s", clearAt
	if diff := cmp.Diff(want, clearing); diff != "" {
		t.Errorf("ClearAlert (-want +got):\n%s", diff)
	}
	for _, a := range []Alert{fail, clearing} {
		if err := a.Validate(); err != nil {
			t.Errorf("%s alert does not validate: %v", a.Event, err)
		}
	}

	// Receive turns the open HeartbeatFail into a closed HeartbeatOK: one alert per sender.
	ids := 0
	newID := func() string { ids++; return "id" + string(rune('0'+ids)) }
	raised, kind, _ := Receive(fail, nil, failAt, newID, Rules{})
	if kind != KindNew || raised.Status != StatusOpen {
		t.Fatalf("FailAlert received as %s %s, want new and open", kind, raised.Status)
	}
	again, kind, _ := Receive(hb.FailAlert(failAt.Add(time.Minute), "Staging"), []Alert{raised}, failAt.Add(time.Minute), newID, Rules{})
	if kind != KindDuplicate || again.ID != raised.ID {
		t.Errorf("FailAlert again received as %s of %s, want a duplicate of %s", kind, again.ID, raised.ID)
	}
	cleared, kind, _ := Receive(clearing, []Alert{again}, clearAt, newID, Rules{})
	if kind != KindCorrelated || cleared.ID != raised.ID || cleared.Status != StatusClosed || cleared.Event != EventHeartbeatOK {
		t.Errorf("ClearAlert received as %s: %s %s %s; want correlated with %s, closed HeartbeatOK",
			kind, cleared.ID, cleared.Event, cleared.Status, raised.ID)
	}
}

func TestHeartbeatEnvironment(t *testing.T) {
	tests := []struct {
		name        string
		tags        []string
		attrs       map[string]any
		defaultEnv  string
		want        string
		wantService []string
	}{
		{"attribute", []string{"environment=Tag"}, map[string]any{"environment": "Attr"}, "Def", "Attr", nil},
		{"tag with =", []string{"x", "environment=Tag"}, nil, "Def", "Tag", nil},
		{"tag with :", []string{"environment:Tag"}, map[string]any{"environment": 3.0}, "Def", "Tag", nil},
		{"empty values skipped", []string{"environment="}, map[string]any{"environment": " "}, "Def", "Def", nil},
		{"default", nil, map[string]any{"service": []any{"a", 1.0, "b"}}, "Def", "Def", []string{"a", "b"}},
		{"Alerta's default", nil, nil, "", "Production", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb := Heartbeat{Origin: "o", Tags: tt.tags, Attributes: tt.attrs, Timeout: 60, ReceiveTime: hbNow}
			a := hb.FailAlert(hbNow, tt.defaultEnv)
			if a.Environment != tt.want {
				t.Errorf("environment = %q, want %q", a.Environment, tt.want)
			}
			if diff := cmp.Diff(tt.wantService, a.Service); diff != "" {
				t.Errorf("service (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeartbeatValidate(t *testing.T) {
	valid := Heartbeat{Origin: "o", Timeout: 60, ReceiveTime: hbNow}
	tests := []struct {
		name string
		mod  func(*Heartbeat)
		want []string
	}{
		{"valid", func(*Heartbeat) {}, nil},
		{"no timeout", func(h *Heartbeat) { h.Timeout = 0 }, []string{"timeout"}},
		{"negative max latency", func(h *Heartbeat) { h.MaxLatency = -1 }, []string{"maxLatency"}},
		{"no receive time", func(h *Heartbeat) { h.ReceiveTime = time.Time{} }, []string{"receiveTime"}},
		{"too many tags", func(h *Heartbeat) { h.Tags = make([]string, MaxListLen+1) }, []string{"tags"}},
		{"bad attribute", func(h *Heartbeat) { h.Attributes = map[string]any{"": 1} }, []string{"attributes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := valid
			tt.mod(&h)
			err := h.Validate()
			if tt.want != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if diff := cmp.Diff(tt.want, badFields(err)); diff != "" {
				t.Errorf("fields reported (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzDecodeHeartbeat(f *testing.F) {
	for _, s := range []string{
		`{"origin":"cron/db1","tags":["a"],"attributes":{"a":{"b":[1,"c"]}},"createTime":"2026-01-02T03:04:05.000Z","timeout":60,"customer":"c"}`,
		`{"origin":"o","timeout":-1,"tags":"x"}`,
		`{"origin":"\u0000"}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := DecodeHeartbeat(body, hbNow, HeartbeatOptions{})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("decoded heartbeat does not validate: %v", err)
		}
		if a := h.FailAlert(hbNow, ""); a.Validate() != nil {
			err := a.Validate()
			t.Fatalf("its FailAlert does not validate: %v", err)
		}
		b, err := json.Marshal(h.At(hbNow))
		if err != nil {
			t.Fatalf("decoded heartbeat does not marshal: %v", err)
		}
		var back Heartbeat
		if err := json.Unmarshal(b, &back); err != nil || back.Origin != h.Origin || back.Timeout != h.Timeout {
			t.Fatalf("heartbeat JSON reads back as %+v, %v; want %+v", back, err, h)
		}
	})
}
