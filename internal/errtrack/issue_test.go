package errtrack

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestApply(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	earlier := now.Add(-time.Hour)
	statuses := []Status{StatusUnresolved, StatusResolved, StatusResolvedInNextRelease, StatusIgnored}
	allowed := map[Action]map[Status]Status{
		ActionResolve:              {StatusUnresolved: StatusResolved, StatusIgnored: StatusResolved, StatusResolvedInNextRelease: StatusResolved},
		ActionResolveInNextRelease: {StatusUnresolved: StatusResolvedInNextRelease, StatusIgnored: StatusResolvedInNextRelease, StatusResolved: StatusResolvedInNextRelease},
		ActionIgnore:               {StatusUnresolved: StatusIgnored, StatusResolved: StatusIgnored, StatusResolvedInNextRelease: StatusIgnored},
		ActionReopen:               {StatusResolved: StatusUnresolved, StatusResolvedInNextRelease: StatusUnresolved, StatusIgnored: StatusUnresolved},
	}
	for _, action := range Actions() {
		for _, from := range statuses {
			t.Run(fmt.Sprintf("%s from %s", action, from), func(t *testing.T) {
				is := Issue{ID: 1, Status: from, Count: 9}
				if from == StatusResolved || from == StatusResolvedInNextRelease {
					is.ResolvedIn, is.ResolvedAt = "shop@0000001", earlier
				}
				got, err := Apply(is, action, "shop@3f2a9c1", now)
				to, ok := allowed[action][from]
				if !ok {
					if !errors.Is(err, ErrConflict) {
						t.Fatalf("Apply = %v, want ErrConflict", err)
					}
					if diff := cmp.Diff(is, got); diff != "" {
						t.Errorf("a refused action changed the issue (-want +got):\n%s", diff)
					}
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				want := is
				want.Status = to
				switch to {
				case StatusResolved, StatusResolvedInNextRelease:
					want.ResolvedIn, want.ResolvedAt = "shop@3f2a9c1", now
				default:
					want.ResolvedIn, want.ResolvedAt = "", time.Time{}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Apply (-want +got):\n%s", diff)
				}
				if !got.Status.Valid() {
					t.Errorf("status %q is not valid", got.Status)
				}
			})
		}
	}
}

func TestApplyInvalid(t *testing.T) {
	is := Issue{Status: StatusUnresolved}
	for _, tt := range []struct {
		action  Action
		release string
	}{
		{"archive", "shop@3f2a9c1"},
		{"", ""},
		{ActionResolveInNextRelease, ""},
		{ActionResolve, strings.Repeat("r", MaxNameLength+1)},
	} {
		if _, err := Apply(is, tt.action, tt.release, time.Now()); !errors.Is(err, ErrInvalid) {
			t.Errorf("Apply(%q, %.20q) = %v, want ErrInvalid", tt.action, tt.release, err)
		}
	}
	// A plain resolve needs no release: any new event then reopens the issue.
	got, err := Apply(is, ActionResolve, "", time.Now())
	if err != nil || got.Status != StatusResolved || got.ResolvedIn != "" {
		t.Errorf("resolve without a release = %+v, %v", got, err)
	}
	if Status("open").Valid() {
		t.Error(`Status("open").Valid() = true`)
	}
}

func TestRegressed(t *testing.T) {
	// Ferry's deploy order in the environment, as the store would answer it: release IDs.
	// "1.10" was deployed after "1.9", though it sorts before it as text and Sentry's
	// date or semver guesses get such pairs wrong (getsentry/sentry#104513); SHA-named
	// releases sort in no useful order at all; "shop@1.8" was rolled back to after 1.10.
	deployed := map[string]int64{
		"shop@1.8":     10, // first deploy at 3, rolled back to at 10: its latest deploy counts
		"shop@1.9":     4,
		"shop@1.10":    5,
		"shop@f00d123": 6,
		"shop@0abc123": 7, // deployed after f00d123, sorts before it
		"shop@1.11":    8,
	}
	order := func(r string) (int64, bool) {
		id, ok := deployed[r]
		return id, ok
	}
	resolved := func(in string) Issue { return Issue{Status: StatusResolved, ResolvedIn: in} }
	nextRelease := func(current string) Issue { return Issue{Status: StatusResolvedInNextRelease, ResolvedIn: current} }

	tests := []struct {
		name  string
		issue Issue
		event string
		want  bool
	}{
		// Resolved in a release: the fix.
		{"resolved: event from a release deployed later", resolved("shop@1.9"), "shop@1.10", true},
		{"resolved: event from the fixing release itself", resolved("shop@1.10"), "shop@1.10", true},
		{"resolved: event from an older deploy, larger as text", resolved("shop@1.10"), "shop@1.9", false},
		{"resolved: later SHA that sorts first", resolved("shop@f00d123"), "shop@0abc123", true},
		{"resolved: earlier SHA that sorts last", resolved("shop@0abc123"), "shop@f00d123", false},
		{"resolved: rollback to a release without the fix", resolved("shop@1.10"), "shop@1.8", true},
		{"resolved: no release on the event", resolved("shop@1.10"), "", true},
		{"resolved: unknown release on the event", resolved("shop@1.10"), "shop@9.9", true},
		{"resolved: fixing release unknown", resolved("shop@2.0"), "shop@1.9", true},
		{"resolved without a release: any event", resolved(""), "shop@1.9", true},
		{"resolved without a release: no release", resolved(""), "", true},

		// Resolved in the next release: whatever is deployed after the current one.
		{"next release: event from the current release", nextRelease("shop@1.9"), "shop@1.9", false},
		{"next release: 1.10 deployed after 1.9", nextRelease("shop@1.9"), "shop@1.10", true},
		{"next release: 1.9 deployed before 1.10", nextRelease("shop@1.10"), "shop@1.9", false},
		{"next release: later SHA that sorts first", nextRelease("shop@f00d123"), "shop@0abc123", true},
		{"next release: earlier SHA that sorts last", nextRelease("shop@0abc123"), "shop@f00d123", false},
		{"next release: rollback deployed after", nextRelease("shop@1.11"), "shop@1.8", true},
		{"next release: no release on the event", nextRelease("shop@1.9"), "", false},
		{"next release: unknown release on the event", nextRelease("shop@1.9"), "shop@9.9", false},
		{"next release: current release unknown", nextRelease("shop@2.0"), "shop@1.11", false},

		// Neither resolved.
		{"unresolved", Issue{Status: StatusUnresolved}, "shop@1.11", false},
		{"ignored", Issue{Status: StatusIgnored}, "shop@1.11", false},
		{"ignored with a stale resolution", Issue{Status: StatusIgnored, ResolvedIn: "shop@1.8"}, "shop@1.11", false},
	}
	for _, tt := range tests {
		if got := Regressed(tt.issue, tt.event, order); got != tt.want {
			t.Errorf("%s: Regressed(%s in %q, event from %q) = %v, want %v", tt.name, tt.issue.Status, tt.issue.ResolvedIn, tt.event, got, tt.want)
		}
	}

	// The deploy order, not the names: swap the two deploys and the answers swap.
	deployed["shop@1.9"], deployed["shop@1.10"] = 5, 4
	if Regressed(nextRelease("shop@1.9"), "shop@1.10", order) {
		t.Error("1.10 deployed before 1.9 regressed an issue resolved after 1.9")
	}
	if !Regressed(nextRelease("shop@1.10"), "shop@1.9", order) {
		t.Error("1.9 deployed after 1.10 did not regress an issue resolved after 1.10")
	}
}

func TestReleaseName(t *testing.T) {
	const sha = "3F2A9C1E7B4D4C2A9F1E0A1B2C3D4E5F60718293"
	if got := ReleaseName("shop", sha); got != "shop@3f2a9c1" {
		t.Errorf("ReleaseName = %q, want shop@3f2a9c1", got)
	}
	if got := ReleaseName("shop", "abc"); got != "shop@abc" {
		t.Errorf("ReleaseName of a short revision = %q", got)
	}
	tests := []struct {
		in       string
		app, sha string
		ok       bool
	}{
		{"shop@3f2a9c1", "shop", "3f2a9c1", true},
		{ReleaseName("billing-api", sha), "billing-api", "3f2a9c1", true},
		{"shop@" + sha, "shop", strings.ToLower(sha), true},
		{"shop@" + strings.Repeat("a", 64), "shop", strings.Repeat("a", 64), true},
		{"@scope/pkg@3f2a9c1", "@scope/pkg", "3f2a9c1", true},
		{"shop@1.2.3", "", "", false},
		{"shop@3f2a9c", "", "", false},
		{"shop@" + strings.Repeat("a", 65), "", "", false},
		{"shop@3f2a9cz", "", "", false},
		{"@3f2a9c1", "", "", false},
		{"3f2a9c1", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		app, sha, ok := ParseReleaseName(tt.in)
		if app != tt.app || sha != tt.sha || ok != tt.ok {
			t.Errorf("ParseReleaseName(%q) = %q, %q, %v; want %q, %q, %v", tt.in, app, sha, ok, tt.app, tt.sha, tt.ok)
		}
	}
}

func TestUserKey(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"id first", Event{User: &User{ID: "42", Email: "a@example.com", IPAddress: "10.0.0.1"}}, "id:42"},
		{"email, lowercased", Event{User: &User{Email: "Ann@Example.com", IPAddress: "10.0.0.1"}}, "email:ann@example.com"},
		{"username", Event{User: &User{Username: "ann", IPAddress: "10.0.0.1"}}, "username:ann"},
		{"ip", Event{User: &User{IPAddress: "10.0.0.1"}}, "ip:10.0.0.1"},
		{"ipv4-mapped ipv6 is the ipv4", Event{User: &User{IPAddress: "::ffff:10.0.0.1"}}, "ip:10.0.0.1"},
		{"ip left for the server to fill", Event{User: &User{IPAddress: "{{auto}}"}}, ""},
		{"REMOTE_ADDR", Event{Request: &Request{Env: json.RawMessage(`{"REMOTE_ADDR":"2001:db8::1"}`)}}, "ip:2001:db8::1"},
		{"bad REMOTE_ADDR", Event{Request: &Request{Env: json.RawMessage(`{"REMOTE_ADDR":"x"}`)}}, ""},
		{"nobody", Event{}, ""},
	}
	for _, tt := range tests {
		if got := UserKey(tt.e); got != tt.want {
			t.Errorf("%s: UserKey = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEventTags(t *testing.T) {
	e := Event{
		Level: LevelError, Environment: "prod", Release: "shop@3f2a9c1", ServerName: "web-1",
		Tags:     Pairs{{"region", "eu"}, {"environment", "override"}},
		User:     &User{ID: "7"},
		Contexts: map[string]json.RawMessage{"os": json.RawMessage(`{"name":"Linux"}`), "browser": json.RawMessage(`"x"`)},
	}
	want := Pairs{
		{"region", "eu"}, {"environment", "override"}, {"level", "error"}, {"release", "shop@3f2a9c1"},
		{"server_name", "web-1"}, {"user", "id:7"}, {"os.name", "Linux"},
	}
	if diff := cmp.Diff(want, EventTags(e)); diff != "" {
		t.Errorf("EventTags (-want +got):\n%s", diff)
	}
	if len(e.Tags) != 2 {
		t.Errorf("EventTags changed the event's tags: %v", e.Tags)
	}
}

func TestAddTags(t *testing.T) {
	var s []TagSummary
	for i := range 10 {
		s = AddTags(s, Pairs{{"browser", "Firefox"}, {"region", []string{"eu", "us"}[i%2]}})
	}
	s = AddTags(s, Pairs{{"browser", "Chrome"}, {"browser", "counted once"}})
	want := []TagSummary{
		{Key: "browser", Count: 11, Values: []TagValue{{"Firefox", 10}, {"Chrome", 1}}},
		{Key: "region", Count: 10, Values: []TagValue{{"eu", 5}, {"us", 5}}},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	// More values than are tracked: a frequent value is never lost among rare ones.
	before := s
	for i := range 500 {
		s = AddTags(s, Pairs{{"region", fmt.Sprintf("rare-%d", i)}})
		if i%3 == 0 {
			s = AddTags(s, Pairs{{"region", "eu"}})
		}
	}
	region := s[1]
	if len(region.Values) != MaxSummaryValues || region.Values[0].Value != "eu" || region.Values[0].Count < 5+167 {
		t.Errorf("region after 500 rare values: %d values, top %+v", len(region.Values), region.Values[0])
	}
	if before[1].Count != 10 {
		t.Error("AddTags changed the summary it was given")
	}

	// Keys beyond the limit are not summarized.
	var many Pairs
	for i := range MaxSummaryKeys + 5 {
		many = append(many, Pair{fmt.Sprintf("k%d", i), "v"})
	}
	if got := AddTags(nil, many); len(got) != MaxSummaryKeys {
		t.Errorf("%d keys summarized, want %d", len(got), MaxSummaryKeys)
	}
}

func TestNewIssue(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e := Event{
		EventID: testID, Timestamp: ts, Level: LevelWarning, Platform: "go",
		Release: "shop@3f2a9c1", Environment: "prod", User: &User{Email: "a@example.com"},
		Exception: Exceptions{exc("*app.NotFound", "order 7", Frame{Module: "shop/api", Function: "cart", InApp: ptr(true)})},
	}
	hash, kind := Fingerprint(e)
	want := Issue{
		ProjectID: 3, Fingerprint: hash, Grouping: kind, Title: "*app.NotFound: order 7", Culprit: "shop/api.cart",
		Level: LevelWarning, Platform: "go", Status: StatusUnresolved, FirstSeen: ts, LastSeen: ts, Count: 1,
		UsersAffected: 1, FirstRelease: "shop@3f2a9c1", LastRelease: "shop@3f2a9c1", Environments: []string{"prod"},
		TagsSummary: AddTags(nil, EventTags(e)), LastEventID: testID,
	}
	if diff := cmp.Diff(want, NewIssue(3, e)); diff != "" {
		t.Errorf("NewIssue (-want +got):\n%s", diff)
	}
}
