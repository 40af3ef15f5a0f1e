package incident

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeBlackout(t *testing.T) {
	hour := hbNow.Add(time.Hour)
	tests := []struct {
		name    string
		body    string
		opts    BlackoutOptions
		want    Blackout
		wantErr []string
	}{
		{
			name: "environment only: from now, for an hour",
			body: `{"environment":"Production"}`,
			want: Blackout{Priority: 1, Environment: "Production", Service: []string{}, Tags: []string{},
				StartTime: hbNow, EndTime: hour, Duration: 3600, CreateTime: hbNow},
		},
		{
			name: "configured default duration; zero duration is the default",
			body: `{"environment":"Production","duration":0}`,
			opts: BlackoutOptions{DefaultDuration: 600},
			want: Blackout{Priority: 1, Environment: "Production", Service: []string{}, Tags: []string{},
				StartTime: hbNow, EndTime: hbNow.Add(10 * time.Minute), Duration: 600, CreateTime: hbNow},
		},
		{
			name: "start and duration",
			body: `{"environment":"Production","resource":"db1","startTime":"2026-05-04T12:00:00.000Z","duration":7200,
				"user":"alice","text":"disk swap","id":"ignored","status":"expired","remaining":1}`,
			want: Blackout{Priority: 2, Environment: "Production", Service: []string{}, Resource: "db1", Tags: []string{},
				StartTime: hbNow.Add(2 * time.Hour), EndTime: hbNow.Add(4 * time.Hour), Duration: 7200,
				User: "alice", CreateTime: hbNow, Text: "disk swap"},
		},
		{
			name: "endTime wins over duration",
			body: `{"environment":"Production","service":["web","api"],"tags":["eu"],"customer":"acme",
				"endTime":"2026-05-04T10:30:00+00:00","duration":5}`,
			want: Blackout{Priority: 3, Environment: "Production", Service: []string{"web", "api"}, Tags: []string{"eu"},
				Customer: "acme", StartTime: hbNow, EndTime: hbNow.Add(30 * time.Minute), Duration: 1800, CreateTime: hbNow},
		},
		{
			name: "every narrowing field",
			body: `{"environment":"E","service":["s"],"resource":"r","event":"e","group":"g","tags":["t"],"origin":"o"}`,
			want: Blackout{Priority: 8, Environment: "E", Service: []string{"s"}, Resource: "r", Event: "e", Group: "g",
				Tags: []string{"t"}, Origin: "o", StartTime: hbNow, EndTime: hour, Duration: 3600, CreateTime: hbNow},
		},
		{name: "environment required", body: `{"resource":"db1"}`, wantErr: []string{"environment"}},
		{name: "wrong types", body: `{"environment":["E"],"service":"web","tags":{},"duration":"1h","customer":1}`,
			wantErr: []string{"environment", "service", "tags", "customer", "duration"}},
		{name: "empty customer", body: `{"environment":"E","customer":""}`, wantErr: []string{"customer"}},
		{name: "end before start", body: `{"environment":"E","startTime":"2026-05-04T10:00:00Z","endTime":"2026-05-04T09:00:00Z"}`,
			wantErr: []string{"endTime"}},
		{name: "end at start", body: `{"environment":"E","endTime":"2026-05-04T10:00:00Z"}`, wantErr: []string{"endTime"}},
		{name: "bad times", body: `{"environment":"E","startTime":"now","endTime":"2026-05-04"}`,
			wantErr: []string{"startTime", "endTime"}},
		{name: "negative duration", body: `{"environment":"E","duration":-60}`, wantErr: []string{"duration"}},
		{name: "window too long", body: `{"environment":"E","duration":315360001}`, wantErr: []string{"duration"}},
		{name: "bad service", body: `{"environment":"E","service":["\u0000"]}`, wantErr: []string{"service[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBlackout([]byte(tt.body), hbNow, tt.opts)
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
				t.Errorf("DecodeBlackout (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBlackoutStatus(t *testing.T) {
	b := Blackout{Environment: "E", StartTime: hbNow, EndTime: hbNow.Add(time.Hour), Duration: 3600}
	tests := []struct {
		name      string
		now       time.Time
		status    BlackoutStatus
		remaining int
	}{
		{"before", hbNow.Add(-time.Second), BlackoutPending, 3600},
		{"at the start", hbNow, BlackoutActive, 3600},
		{"inside", hbNow.Add(20*time.Minute + 500*time.Millisecond), BlackoutActive, 2399},
		{"just before the end", hbNow.Add(time.Hour - time.Microsecond), BlackoutActive, 0},
		{"at the end", hbNow.Add(time.Hour), BlackoutExpired, 0},
		{"after", hbNow.Add(48 * time.Hour), BlackoutExpired, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.At(tt.now)
			if got.Status != tt.status || got.Remaining != tt.remaining {
				t.Errorf("At = %s, %d remaining; want %s, %d", got.Status, got.Remaining, tt.status, tt.remaining)
			}
		})
	}
}

func TestBlackoutCovers(t *testing.T) {
	a := Alert{Environment: "Production", Resource: "db1", Event: "DiskFull", Group: "Storage", Origin: "prom",
		Service: []string{"billing", "db"}, Tags: []string{"eu", "rack=7"}, Customer: "acme"}
	now := hbNow.Add(time.Minute)
	window := func(b Blackout) Blackout {
		b.StartTime, b.EndTime = hbNow, hbNow.Add(time.Hour)
		if b.Environment == "" {
			b.Environment = "Production"
		}
		return b
	}
	tests := []struct {
		name string
		b    Blackout
		now  time.Time
		want bool
	}{
		{"whole environment", window(Blackout{}), now, true},
		{"other environment", window(Blackout{Environment: "Staging"}), now, false},
		{"pending", window(Blackout{}), hbNow.Add(-time.Second), false},
		{"expired", window(Blackout{}), hbNow.Add(time.Hour), false},
		{"resource", window(Blackout{Resource: "db1"}), now, true},
		{"other resource", window(Blackout{Resource: "db2"}), now, false},
		{"resource and event", window(Blackout{Resource: "db1", Event: "DiskFull"}), now, true},
		{"resource and other event", window(Blackout{Resource: "db1", Event: "NodeDown"}), now, false},
		{"event", window(Blackout{Event: "DiskFull"}), now, true},
		{"group", window(Blackout{Group: "Storage"}), now, true},
		{"other group", window(Blackout{Group: "Network"}), now, false},
		{"origin", window(Blackout{Origin: "prom"}), now, true},
		{"other origin", window(Blackout{Origin: "zabbix"}), now, false},
		{"one service of the alert's", window(Blackout{Service: []string{"db"}}), now, true},
		{"all the alert's services", window(Blackout{Service: []string{"db", "billing"}}), now, true},
		// As in Alerta (service <@ alert.service): every service of the blackout must be the alert's.
		{"a service the alert lacks", window(Blackout{Service: []string{"db", "web"}}), now, false},
		{"tags all present", window(Blackout{Tags: []string{"rack=7", "eu"}}), now, true},
		{"a tag missing", window(Blackout{Tags: []string{"eu", "us"}}), now, false},
		{"same customer", window(Blackout{Customer: "acme"}), now, true},
		{"other customer", window(Blackout{Customer: "globex"}), now, false},
		{"everything matching", window(Blackout{Resource: "db1", Event: "DiskFull", Group: "Storage", Origin: "prom",
			Service: []string{"db"}, Tags: []string{"eu"}, Customer: "acme"}), now, true},
		{"everything but one", window(Blackout{Resource: "db1", Event: "DiskFull", Group: "Storage", Origin: "prom",
			Service: []string{"db"}, Tags: []string{"eu"}, Customer: "acme", Environment: "Staging"}), now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Covers(a, tt.now); got != tt.want {
				t.Errorf("Covers = %v, want %v", got, tt.want)
			}
		})
	}
	all := []Blackout{window(Blackout{Environment: "Staging"}), window(Blackout{Resource: "db1"})}
	if !AnyCovers(all, a, now) || AnyCovers(all[:1], a, now) || AnyCovers(nil, a, now) {
		t.Errorf("AnyCovers does not report the one covering blackout")
	}
}

// TestBlackoutInReceive checks the blackout hook end to end in the domain: a covered alert is
// stored with status blackout, not dropped.
func TestBlackoutInReceive(t *testing.T) {
	active := []Blackout{{Environment: "Production", Resource: "db1", StartTime: hbNow, EndTime: hbNow.Add(time.Hour), Duration: 3600}}
	rules := Rules{Blackout: func(a Alert) bool { return AnyCovers(active, a, hbNow.Add(time.Minute)) }}
	in := Alert{Environment: "Production", Resource: "db1", Event: "DiskFull", Severity: SeverityMajor}
	got, kind, _ := Receive(in, nil, hbNow.Add(time.Minute), func() string { return "a1" }, rules)
	if kind != KindNew || got.Status != StatusBlackout {
		t.Errorf("covered alert received as %s %s, want new in blackout", kind, got.Status)
	}
	in.Resource = "db2"
	if got, _, _ := Receive(in, nil, hbNow.Add(time.Minute), func() string { return "a2" }, rules); got.Status != StatusOpen {
		t.Errorf("uncovered alert is %s, want open", got.Status)
	}
}

func TestBlackoutValidate(t *testing.T) {
	valid := Blackout{Environment: "E", StartTime: hbNow, EndTime: hbNow.Add(time.Hour), Duration: 3600}
	tests := []struct {
		name string
		mod  func(*Blackout)
		want []string
	}{
		{"valid", func(*Blackout) {}, nil},
		{"no environment", func(b *Blackout) { b.Environment = "" }, []string{"environment"}},
		{"no start", func(b *Blackout) { b.StartTime = time.Time{} }, []string{"startTime"}},
		{"inverted", func(b *Blackout) { b.EndTime = hbNow.Add(-time.Hour) }, []string{"endTime"}},
		{"too long", func(b *Blackout) {
			b.EndTime = hbNow.Add((MaxTimeout + 1) * time.Second)
			b.Duration = MaxTimeout + 1
		}, []string{"endTime"}},
		{"duration disagrees", func(b *Blackout) { b.Duration = 60 }, []string{"duration"}},
		{"bad strings", func(b *Blackout) { b.Text, b.User = "\u0000", "\xff" }, []string{"user", "text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := valid
			tt.mod(&b)
			err := b.Validate()
			if tt.want != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if diff := cmp.Diff(tt.want, badFields(err)); diff != "" {
				t.Errorf("fields reported (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzDecodeBlackout(f *testing.F) {
	for _, s := range []string{
		`{"environment":"Production","service":["web"],"resource":"r","event":"e","group":"g","tags":["t"],"origin":"o",
			"customer":"c","startTime":"2026-05-04T12:00:00.000Z","endTime":"2026-05-04T13:00:00.000Z","user":"u","text":"t"}`,
		`{"environment":"E","duration":60}`,
		`{"environment":"E","startTime":"2026-05-04T12:00:00Z","endTime":"2026-05-04T11:00:00Z"}`,
		`{"environment":1,"duration":-1}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeBlackout(body, hbNow, BlackoutOptions{})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("decoded blackout does not validate: %v", err)
		}
		if b.Priority < 1 || b.Priority > 8 {
			t.Fatalf("priority %d", b.Priority)
		}
		out, err := json.Marshal(b.At(hbNow))
		if err != nil {
			t.Fatalf("decoded blackout does not marshal: %v", err)
		}
		var back Blackout
		if err := json.Unmarshal(out, &back); err != nil || !back.EndTime.Equal(b.EndTime) || back.Environment != b.Environment {
			t.Fatalf("blackout JSON reads back as %+v, %v; want %+v", back, err, b)
		}
	})
}
