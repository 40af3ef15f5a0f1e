package incident

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	tOld = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)  // when the stored alert arrived
	tIn  = time.Date(2026, 1, 2, 3, 59, 0, 0, time.UTC) // the incoming alert's createTime
	tNow = time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)  // the receive time
)

// incoming is the alert a sender posts, after decoding.
func incoming(mod ...func(*Alert)) Alert {
	a := Alert{
		Resource: "web01", Event: "NodeDown", Environment: "Production", Severity: SeverityMajor,
		Service: []string{"web"}, Group: "Infra", Value: "95%", Text: "web01 is down",
		Tags: []string{"dc=a"}, Attributes: map[string]any{"region": "eu"}, Origin: "prom",
		EventType: "prometheusAlert", CreateTime: tIn, Timeout: 3600, RawData: "{}",
	}
	for _, m := range mod {
		m(&a)
	}
	return a
}

// stored is the alert the store already holds for the incoming one's identity.
func stored(mod ...func(*Alert)) Alert {
	a := Alert{
		ID: "s1", Resource: "web01", Event: "NodeDown", Environment: "Production", Severity: SeverityMajor,
		Status: StatusOpen, Service: []string{"old-svc"}, Group: "Infra", Value: "95%", Text: "old text",
		Tags: []string{"old"}, Attributes: map[string]any{"runbook": "x", "region": "us"}, Origin: "prom",
		EventType: "prometheusAlert", CreateTime: tOld, Timeout: 7200, RawData: "old", DuplicateCount: 2,
		Repeat: true, PreviousSeverity: SeverityIndeterminate, TrendIndication: TrendMoreSevere,
		ReceiveTime: tOld, LastReceiveID: "r0", LastReceiveTime: tOld, UpdateTime: tOld,
		History: []History{{ID: "s1", Event: "NodeDown", Severity: SeverityMajor, Status: StatusOpen,
			Value: "95%", Text: "old text", ChangeType: ChangeNew, UpdateTime: tOld, Timeout: 7200}},
	}
	for _, m := range mod {
		m(&a)
	}
	return a
}

// wantNew is incoming() received as a new alert with id "id1".
func wantNew(mod ...func(*Alert)) Alert {
	a := incoming()
	a.ID = "id1"
	a.Status = StatusOpen
	a.PreviousSeverity = SeverityIndeterminate
	a.TrendIndication = TrendMoreSevere
	a.ReceiveTime, a.LastReceiveTime, a.UpdateTime = tNow, tNow, tNow
	a.LastReceiveID = "id1"
	a.History = []History{{ID: "id1", Event: "NodeDown", Severity: SeverityMajor, Status: StatusOpen,
		Value: "95%", Text: "web01 is down", ChangeType: ChangeNew, UpdateTime: tNow, Timeout: 3600}}
	for _, m := range mod {
		m(&a)
	}
	return a
}

// wantDup is stored() after a plain repeat of incoming(), received as "id1".
func wantDup(mod ...func(*Alert)) Alert {
	a := stored()
	a.Service = []string{"web"}
	a.Text = "web01 is down"
	a.Timeout = 3600
	a.RawData = "{}"
	a.Tags = []string{"old", "dc=a"}
	a.Attributes = map[string]any{"runbook": "x", "region": "eu"}
	a.DuplicateCount = 3
	a.Repeat = true
	a.LastReceiveID = "id1"
	a.LastReceiveTime = tNow
	for _, m := range mod {
		m(&a)
	}
	return a
}

// wantCorr is stored() correlated by incoming() at severity sev with event ev, as "id1".
func wantCorr(ev string, sev Severity, status Status, trend Trend, mod ...func(*Alert)) Alert {
	a := stored()
	a.Event = ev
	a.Severity = sev
	a.PreviousSeverity = SeverityMajor
	a.TrendIndication = trend
	a.Status = status
	a.Service = []string{"web"}
	a.Text = "web01 is down"
	a.CreateTime = tIn
	a.Timeout = 3600
	a.RawData = "{}"
	a.Tags = []string{"old", "dc=a"}
	a.Attributes = map[string]any{"runbook": "x", "region": "eu"}
	a.DuplicateCount = 0
	a.Repeat = false
	a.ReceiveTime, a.LastReceiveTime, a.UpdateTime = tNow, tNow, tNow
	a.LastReceiveID = "id1"
	a.History = append(a.History, History{ID: "id1", Event: ev, Severity: sev, Status: status,
		Value: "95%", Text: "web01 is down", ChangeType: ChangeSeverity, UpdateTime: tNow, Timeout: 3600})
	for _, m := range mod {
		m(&a)
	}
	return a
}

// entry is a history entry of a receipt "id1" at tNow, for the stored alert's event.
func entry(change string, sev Severity, status Status) History {
	return History{ID: "id1", Event: "NodeDown", Severity: sev, Status: status, Value: "95%",
		Text: "web01 is down", ChangeType: change, UpdateTime: tNow, Timeout: 3600}
}

func sev(s Severity) func(*Alert)  { return func(a *Alert) { a.Severity = s } }
func status(s Status) func(*Alert) { return func(a *Alert) { a.Status = s } }

func TestReceive(t *testing.T) {
	inBlackout := func(Alert) bool { return true }
	tests := []struct {
		name        string
		in          Alert
		candidates  []Alert
		rules       Rules
		want        Alert
		wantKind    Kind
		wantMatched string // id of the candidate matched, "" for none
	}{
		// New alerts.
		{
			name: "new without candidates",
			in:   incoming(), want: wantNew(), wantKind: KindNew,
		},
		{
			name:       "new: candidate of another environment is out of scope",
			in:         incoming(),
			candidates: []Alert{stored(func(a *Alert) { a.Environment = "Staging" })},
			want:       wantNew(), wantKind: KindNew,
		},
		{
			name:       "new: candidate of another customer is out of scope",
			in:         incoming(),
			candidates: []Alert{stored(func(a *Alert) { a.Customer = "acme" })},
			want:       wantNew(), wantKind: KindNew,
		},
		{
			name:       "new: other event, no correlate list",
			in:         incoming(),
			candidates: []Alert{stored(func(a *Alert) { a.Event = "DiskFull" })},
			want:       wantNew(), wantKind: KindNew,
		},
		{
			name: "new with no createTime takes the receive time",
			in:   incoming(func(a *Alert) { a.CreateTime = time.Time{} }),
			want: wantNew(func(a *Alert) { a.CreateTime = tNow }), wantKind: KindNew,
		},
		{
			name: "new normal alert is born closed",
			in:   incoming(sev(SeverityOK)),
			want: wantNew(sev(SeverityOK), status(StatusClosed), func(a *Alert) {
				a.TrendIndication = TrendLessSevere
				a.History[0].Severity, a.History[0].Status = SeverityOK, StatusClosed
			}),
			wantKind: KindNew,
		},
		{
			name:  "new in a blackout is stored with status blackout",
			in:    incoming(),
			rules: Rules{Blackout: inBlackout},
			want: wantNew(status(StatusBlackout), func(a *Alert) {
				a.History[0].Status = StatusBlackout
			}),
			wantKind: KindNew,
		},
		{
			name:  "new normal alert in a blackout is closed",
			in:    incoming(sev(SeverityCleared)),
			rules: Rules{Blackout: inBlackout},
			want: wantNew(sev(SeverityCleared), status(StatusClosed), func(a *Alert) {
				a.TrendIndication = TrendLessSevere
				a.History[0].Severity, a.History[0].Status = SeverityCleared, StatusClosed
			}),
			wantKind: KindNew,
		},
		{
			name: "new keeps a status the sender set",
			in:   incoming(status(StatusAck)),
			want: wantNew(status(StatusAck), func(a *Alert) {
				a.History[0].Status = StatusAck
			}),
			wantKind: KindNew,
		},
		{
			name: "new indeterminate alert has no trend",
			in:   incoming(sev(SeverityIndeterminate)),
			want: wantNew(sev(SeverityIndeterminate), func(a *Alert) {
				a.TrendIndication = TrendNoChange
				a.History[0].Severity = SeverityIndeterminate
			}),
			wantKind: KindNew,
		},

		// Duplicates.
		{
			name:       "duplicate: count, repeat, union of tags, merge of attributes, no history",
			in:         incoming(),
			candidates: []Alert{stored()},
			want:       wantDup(), wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate with a new value records it",
			in:         incoming(func(a *Alert) { a.Value = "99%" }),
			candidates: []Alert{stored()},
			want: wantDup(func(a *Alert) {
				a.Value = "99%"
				a.UpdateTime = tNow
				h := entry(ChangeValue, SeverityMajor, StatusOpen)
				h.Value = "99%"
				a.History = append(a.History, h)
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate of an ack'ed alert stays ack'ed",
			in:         incoming(),
			candidates: []Alert{stored(status(StatusAck))},
			want:       wantDup(status(StatusAck)), wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate of a shelved alert stays shelved",
			in:         incoming(),
			candidates: []Alert{stored(status(StatusShelved))},
			want:       wantDup(status(StatusShelved)), wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate reopens a closed alert",
			in:         incoming(),
			candidates: []Alert{stored(status(StatusClosed))},
			want: wantDup(func(a *Alert) {
				a.UpdateTime = tNow
				a.History = append(a.History, entry(ChangeStatus, SeverityMajor, StatusOpen))
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate reopens an expired alert",
			in:         incoming(),
			candidates: []Alert{stored(status(StatusExpired))},
			want: wantDup(func(a *Alert) {
				a.UpdateTime = tNow
				a.History = append(a.History, entry(ChangeStatus, SeverityMajor, StatusOpen))
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate in a blackout goes to blackout",
			in:         incoming(),
			candidates: []Alert{stored()},
			rules:      Rules{Blackout: inBlackout},
			want: wantDup(status(StatusBlackout), func(a *Alert) {
				a.UpdateTime = tNow
				a.History = append(a.History, entry(ChangeStatus, SeverityMajor, StatusBlackout))
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate still in the blackout stays without history",
			in:         incoming(),
			candidates: []Alert{stored(status(StatusBlackout))},
			rules:      Rules{Blackout: inBlackout},
			want:       wantDup(status(StatusBlackout)), wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate after the blackout reopens",
			in:         incoming(),
			candidates: []Alert{stored(status(StatusBlackout))},
			want: wantDup(func(a *Alert) {
				a.UpdateTime = tNow
				a.History = append(a.History, entry(ChangeStatus, SeverityMajor, StatusOpen))
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate of a closed normal alert stays closed",
			in:         incoming(sev(SeverityNormal)),
			candidates: []Alert{stored(sev(SeverityNormal), status(StatusClosed))},
			want:       wantDup(sev(SeverityNormal), status(StatusClosed)), wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate keeps a status the sender set",
			in:         incoming(status(StatusClosed)),
			candidates: []Alert{stored()},
			want: wantDup(status(StatusClosed), func(a *Alert) {
				a.UpdateTime = tNow
				a.History = append(a.History, entry(ChangeStatus, SeverityMajor, StatusClosed))
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
		{
			name:       "duplicate beats a correlation",
			in:         incoming(),
			candidates: []Alert{stored(func(a *Alert) { a.ID = "s0"; a.Severity = SeverityMinor }), stored()},
			want:       wantDup(), wantKind: KindDuplicate, wantMatched: "s1",
		},

		// Correlations.
		{
			name:       "correlated: same event, worse severity",
			in:         incoming(sev(SeverityCritical)),
			candidates: []Alert{stored()},
			want:       wantCorr("NodeDown", SeverityCritical, StatusOpen, TrendMoreSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: same event, better severity",
			in:         incoming(sev(SeverityMinor)),
			candidates: []Alert{stored()},
			want:       wantCorr("NodeDown", SeverityMinor, StatusOpen, TrendLessSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: worse severity reopens an ack'ed alert",
			in:         incoming(sev(SeverityCritical)),
			candidates: []Alert{stored(status(StatusAck))},
			want:       wantCorr("NodeDown", SeverityCritical, StatusOpen, TrendMoreSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: better severity leaves an ack'ed alert ack'ed",
			in:         incoming(sev(SeverityMinor)),
			candidates: []Alert{stored(status(StatusAck))},
			want:       wantCorr("NodeDown", SeverityMinor, StatusAck, TrendLessSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: worse severity leaves a shelved alert shelved",
			in:         incoming(sev(SeverityCritical)),
			candidates: []Alert{stored(status(StatusShelved))},
			want:       wantCorr("NodeDown", SeverityCritical, StatusShelved, TrendMoreSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: normal closes an ack'ed alert",
			in:         incoming(sev(SeverityNormal)),
			candidates: []Alert{stored(status(StatusAck))},
			want:       wantCorr("NodeDown", SeverityNormal, StatusClosed, TrendLessSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: normal closes a shelved alert",
			in:         incoming(sev(SeverityOK)),
			candidates: []Alert{stored(status(StatusShelved))},
			want:       wantCorr("NodeDown", SeverityOK, StatusClosed, TrendLessSevere),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: a problem again reopens a closed alert",
			in:         incoming(),
			candidates: []Alert{stored(sev(SeverityNormal), status(StatusClosed))},
			want: wantCorr("NodeDown", SeverityMajor, StatusOpen, TrendMoreSevere, func(a *Alert) {
				a.PreviousSeverity = SeverityNormal
			}),
			wantKind: KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: the stored alert's correlate list holds the event",
			in:         incoming(func(a *Alert) { a.Event = "NodeUp"; a.Severity = SeverityNormal }),
			candidates: []Alert{stored(func(a *Alert) { a.Correlate = []string{"NodeDown", "NodeUp"} })},
			want: wantCorr("NodeUp", SeverityNormal, StatusClosed, TrendLessSevere, func(a *Alert) {
				a.Correlate = []string{"NodeDown", "NodeUp"}
			}),
			wantKind: KindCorrelated, wantMatched: "s1",
		},
		{
			name: "correlated: the incoming correlate list holds the stored event, at the same severity",
			in: incoming(func(a *Alert) {
				a.Event = "NodeFlapping"
				a.Correlate = []string{"NodeDown", "NodeFlapping"}
			}),
			candidates: []Alert{stored()},
			want:       wantCorr("NodeFlapping", SeverityMajor, StatusOpen, TrendNoChange),
			wantKind:   KindCorrelated, wantMatched: "s1",
		},
		{
			name: "correlated: the same event wins over a correlate list",
			in:   incoming(sev(SeverityCritical)),
			candidates: []Alert{
				stored(func(a *Alert) { a.ID = "s0"; a.Event = "NodeUp"; a.Correlate = []string{"NodeUp", "NodeDown"} }),
				stored(),
			},
			want:     wantCorr("NodeDown", SeverityCritical, StatusOpen, TrendMoreSevere),
			wantKind: KindCorrelated, wantMatched: "s1",
		},
		{
			name:       "correlated: a blackout sees the alert as it will be stored",
			in:         incoming(func(a *Alert) { a.Event = "NodeUp"; a.Severity = SeverityWarning }),
			candidates: []Alert{stored(func(a *Alert) { a.Correlate = []string{"NodeDown", "NodeUp"} })},
			rules:      Rules{Blackout: func(a Alert) bool { return a.Event == "NodeUp" && a.ID == "s1" }},
			want: wantCorr("NodeUp", SeverityWarning, StatusBlackout, TrendLessSevere, func(a *Alert) {
				a.Correlate = []string{"NodeDown", "NodeUp"}
			}),
			wantKind: KindCorrelated, wantMatched: "s1",
		},

		// Identity.
		{
			name:       "identity without customer: another customer's alert is a duplicate",
			in:         incoming(),
			candidates: []Alert{stored(func(a *Alert) { a.Customer = "acme" })},
			rules:      Rules{Identity: Identity{Keys: []string{"environment", "resource", "event"}}},
			want:       wantDup(func(a *Alert) { a.Customer = "acme" }),
			wantKind:   KindDuplicate, wantMatched: "s1",
		},
		{
			name: "identity with an attribute: another cluster is a new alert",
			in: incoming(func(a *Alert) {
				a.Attributes = map[string]any{"cluster": "b"}
			}),
			candidates: []Alert{stored(func(a *Alert) { a.Attributes = map[string]any{"cluster": "a"} })},
			rules:      Rules{Identity: Identity{Keys: []string{"environment", "resource", "event", "attributes.cluster"}}},
			want: wantNew(func(a *Alert) {
				a.Attributes = map[string]any{"cluster": "b"}
			}),
			wantKind: KindNew,
		},
		{
			name: "identity with an attribute: the same cluster is a duplicate",
			in: incoming(func(a *Alert) {
				a.Attributes = map[string]any{"cluster": "a"}
			}),
			candidates: []Alert{stored(func(a *Alert) { a.Attributes = map[string]any{"cluster": "a"} })},
			rules:      Rules{Identity: Identity{Keys: []string{"environment", "resource", "event", "attributes.cluster"}}},
			want: wantDup(func(a *Alert) {
				a.Attributes = map[string]any{"cluster": "a"}
			}),
			wantKind: KindDuplicate, wantMatched: "s1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneAll(tt.candidates)
			inBefore := cloneAlert(tt.in)
			calls := 0
			newID := func() string { calls++; return "id1" }

			got, kind, matched := Receive(tt.in, tt.candidates, tNow, newID, tt.rules)

			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("alert (-want +got):\n%s", diff)
			}
			if kind != tt.wantKind {
				t.Errorf("kind = %q, want %q", kind, tt.wantKind)
			}
			gotMatched := ""
			if matched != nil {
				gotMatched = matched.ID
			}
			if gotMatched != tt.wantMatched {
				t.Errorf("matched %q, want %q", gotMatched, tt.wantMatched)
			}
			if calls != 1 {
				t.Errorf("newID called %d times, want 1", calls)
			}
			if diff := cmp.Diff(before, tt.candidates); diff != "" {
				t.Errorf("candidates modified (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(inBefore, tt.in); diff != "" {
				t.Errorf("incoming alert modified (-before +after):\n%s", diff)
			}
		})
	}
}

// TestReceiveDoesNotAlias appends to the result and the matched copy, and checks the
// candidate did not change: a store may keep candidates in a cache.
func TestReceiveDoesNotAlias(t *testing.T) {
	c := stored(func(a *Alert) {
		a.History = make([]History, 1, 10) // room to append in place
		a.History[0] = History{ID: "s1", ChangeType: ChangeNew}
	})
	candidates := []Alert{c}
	got, _, matched := Receive(incoming(sev(SeverityCritical)), candidates, tNow, func() string { return "id1" }, Rules{})
	got.Tags[0] = "changed"
	got.Attributes["runbook"] = "changed"
	matched.Tags[0] = "changed"
	_ = append(matched.History, History{ID: "extra"})
	if candidates[0].Tags[0] != "old" || candidates[0].Attributes["runbook"] != "x" {
		t.Errorf("candidate changed through the result: %+v", candidates[0])
	}
	if h := candidates[0].History[:2]; h[1].ID != "" {
		t.Errorf("candidate's history backing array written: %+v", h)
	}
}

// TestReceiveSequence runs an alert's life through Receive as a store would, feeding each
// result back as the only candidate.
func TestReceiveSequence(t *testing.T) {
	n := 0
	newID := func() string { n++; return "id" + string(rune('0'+n)) }
	steps := []struct {
		in         Alert
		wantKind   Kind
		wantStatus Status
		wantSev    Severity
		wantCount  int
		wantTypes  []string
	}{
		{incoming(), KindNew, StatusOpen, SeverityMajor, 0, []string{"new"}},
		{incoming(), KindDuplicate, StatusOpen, SeverityMajor, 1, []string{"new"}},
		{incoming(), KindDuplicate, StatusOpen, SeverityMajor, 2, []string{"new"}},
		{incoming(sev(SeverityCritical)), KindCorrelated, StatusOpen, SeverityCritical, 0, []string{"new", "severity"}},
		{incoming(sev(SeverityCritical)), KindDuplicate, StatusOpen, SeverityCritical, 1, []string{"new", "severity"}},
		{incoming(sev(SeverityNormal)), KindCorrelated, StatusClosed, SeverityNormal, 0, []string{"new", "severity", "severity"}},
		{incoming(sev(SeverityNormal)), KindDuplicate, StatusClosed, SeverityNormal, 1, []string{"new", "severity", "severity"}},
		{incoming(sev(SeverityMajor)), KindCorrelated, StatusOpen, SeverityMajor, 0, []string{"new", "severity", "severity", "severity"}},
	}
	var stored []Alert
	for i, s := range steps {
		got, kind, _ := Receive(s.in, stored, tNow.Add(time.Duration(i)*time.Minute), newID, Rules{})
		var types []string
		for _, h := range got.History {
			types = append(types, h.ChangeType)
		}
		if kind != s.wantKind || got.Status != s.wantStatus || got.Severity != s.wantSev || got.DuplicateCount != s.wantCount ||
			!cmp.Equal(types, s.wantTypes) || got.ID != "id1" {
			t.Fatalf("step %d: got id %s kind %s status %s severity %s count %d history %v; want id1 %s %s %s %d %v",
				i, got.ID, kind, got.Status, got.Severity, got.DuplicateCount, types,
				s.wantKind, s.wantStatus, s.wantSev, s.wantCount, s.wantTypes)
		}
		stored = []Alert{got}
	}
}

func cloneAll(as []Alert) []Alert {
	var out []Alert
	for _, a := range as {
		out = append(out, cloneAlert(a))
	}
	return out
}

func TestIdentityValidate(t *testing.T) {
	tests := []struct {
		keys    []string
		wantErr bool
	}{
		{DefaultIdentity().Keys, false},
		{[]string{"environment", "resource", "event"}, false},
		{[]string{"event", "resource", "environment", "group", "origin", "type", "attributes.cluster"}, false},
		{[]string{"resource", "event"}, true},
		{[]string{"environment", "resource"}, true},
		{[]string{"environment", "resource", "event", "severity"}, true},
		{[]string{"environment", "resource", "event", "attributes."}, true},
		{[]string{"environment", "resource", "event", "event"}, true},
	}
	for _, tt := range tests {
		_, err := NewIdentity(tt.keys)
		if (err != nil) != tt.wantErr {
			t.Errorf("NewIdentity(%q) error = %v, want error %v", tt.keys, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("NewIdentity(%q) error %v does not wrap ErrInvalid", tt.keys, err)
		}
	}
}

func TestIdentityKey(t *testing.T) {
	a := incoming(func(a *Alert) {
		a.Customer = "acme"
		a.Attributes = map[string]any{"cluster": "c1", "shard": 3}
	})
	tests := []struct {
		id        Identity
		wantKey   string
		wantScope string
	}{
		{Identity{}, `["Production","web01","NodeDown","acme"]`, `["Production","web01","acme"]`},
		{DefaultIdentity(), `["Production","web01","NodeDown","acme"]`, `["Production","web01","acme"]`},
		{
			Identity{Keys: []string{"resource", "event", "environment", "attributes.cluster", "attributes.shard", "attributes.none"}},
			`["web01","NodeDown","Production","c1","3",""]`, `["web01","Production","c1","3",""]`,
		},
	}
	for _, tt := range tests {
		if got := tt.id.Key(a); got != tt.wantKey {
			t.Errorf("%v.Key = %s, want %s", tt.id.Keys, got, tt.wantKey)
		}
		if got := tt.id.ScopeKey(a); got != tt.wantScope {
			t.Errorf("%v.ScopeKey = %s, want %s", tt.id.Keys, got, tt.wantScope)
		}
	}
	// Separators inside values cannot make two identities collide.
	x := incoming(func(a *Alert) { a.Resource = `a","b` })
	y := incoming(func(a *Alert) { a.Resource = "a"; a.Environment = `b","Production` })
	if DefaultIdentity().Key(x) == DefaultIdentity().Key(y) {
		t.Errorf("keys collide: %s", DefaultIdentity().Key(x))
	}
	if !DefaultIdentity().Has("customer") || (Identity{Keys: []string{"environment", "resource", "event"}}).Has("customer") {
		t.Error("Has(customer) wrong")
	}
}
