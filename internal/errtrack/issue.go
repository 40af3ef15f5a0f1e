package errtrack

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status is an issue's place in its workflow.
type Status string

// The statuses of an issue. A new issue is unresolved.
const (
	StatusUnresolved Status = "unresolved"
	// StatusResolved: fixed, in ResolvedIn when it is set; see Regressed.
	StatusResolved Status = "resolved"
	// StatusResolvedInNextRelease: fixed in whatever is deployed after ResolvedIn.
	StatusResolvedInNextRelease Status = "resolved_in_next_release"
	// StatusIgnored: muted; new events count but never reopen it.
	StatusIgnored Status = "ignored"
)

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusUnresolved, StatusResolved, StatusResolvedInNextRelease, StatusIgnored:
		return true
	}
	return false
}

// Action is what an operator does to an issue.
type Action string

// The actions Apply knows.
const (
	ActionResolve              Action = "resolve"
	ActionResolveInNextRelease Action = "resolve_in_next_release"
	ActionIgnore               Action = "ignore"
	// ActionReopen makes an issue unresolved again; the ingest applies it too when
	// Regressed says so.
	ActionReopen Action = "reopen"
)

// Actions returns every action Apply knows.
func Actions() []Action {
	return []Action{ActionResolve, ActionResolveInNextRelease, ActionIgnore, ActionReopen}
}

// Issue is a group of events with one fingerprint in one project. The store keeps the
// counters; the pure parts are here: NewIssue, Apply, Regressed, UserKey, AddTags.
type Issue struct {
	ID        int64 `json:"id"`
	ProjectID int64 `json:"projectId"`
	// Fingerprint is Fingerprint's hash, unique within the project.
	Fingerprint string `json:"fingerprint"`
	// Grouping is the rule that produced the fingerprint (GroupByStacktrace, ...).
	Grouping string `json:"grouping"`
	Title    string `json:"title"`
	Culprit  string `json:"culprit,omitempty"`
	Level    Level  `json:"level"`
	Platform string `json:"platform,omitempty"`
	Status   Status `json:"status"`

	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// Count is the number of events, kept when retention deletes them.
	Count int64 `json:"count"`
	// UsersAffected is the number of distinct UserKey values of the events that had one.
	UsersAffected int64 `json:"usersAffected"`
	// FirstRelease and LastRelease are the releases of the first and the latest event.
	FirstRelease string   `json:"firstRelease,omitempty"`
	LastRelease  string   `json:"lastRelease,omitempty"`
	Environments []string `json:"environments,omitempty"`
	// TagsSummary holds, per tag key, how many events had it and their most frequent
	// values, as AddTags keeps them.
	TagsSummary []TagSummary `json:"tagsSummary,omitempty"`

	// ResolvedIn is the release the resolution refers to: the release that carries the
	// fix for StatusResolved (empty: any new event reopens), the release current when the
	// issue was marked for StatusResolvedInNextRelease.
	ResolvedIn string    `json:"resolvedIn,omitempty"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`

	LastEventID string `json:"lastEventId,omitempty"`
}

// TagSummary is one tag key's share of an issue's events.
type TagSummary struct {
	Key string `json:"key"`
	// Count is the number of events that had the key.
	Count int64 `json:"count"`
	// Values are the most frequent values, most frequent first.
	Values []TagValue `json:"values"`
}

// TagValue is one value of a tag and how many events had it.
type TagValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// The bounds of a tags summary.
const (
	// MaxSummaryKeys is the number of tag keys summarized per issue; later keys are not.
	MaxSummaryKeys = 50
	// MaxSummaryValues is the number of values tracked per key. When a key has more,
	// a new value takes the place of the least frequent one, inheriting its count plus
	// one (the space-saving algorithm): any value seen in more than 1/MaxSummaryValues of
	// the events is sure to be listed, with its count overestimated by at most the
	// count it inherited.
	MaxSummaryValues = 20
)

// NewIssue returns the issue e opens in a project: fingerprint, title, culprit and the
// rest from e, unresolved, with a count of one. e should be normalized.
func NewIssue(projectID int64, e Event) Issue {
	hash, kind := Fingerprint(e)
	is := Issue{
		ProjectID:    projectID,
		Fingerprint:  hash,
		Grouping:     kind,
		Title:        Title(e),
		Culprit:      Culprit(e),
		Level:        e.Level,
		Platform:     e.Platform,
		Status:       StatusUnresolved,
		FirstSeen:    e.Timestamp,
		LastSeen:     e.Timestamp,
		Count:        1,
		FirstRelease: e.Release,
		LastRelease:  e.Release,
		TagsSummary:  AddTags(nil, EventTags(e)),
		LastEventID:  e.EventID,
	}
	if e.Environment != "" {
		is.Environments = []string{e.Environment}
	}
	if UserKey(e) != "" {
		is.UsersAffected = 1
	}
	return is
}

// Apply runs an operator's action on is and returns the changed issue. release is the
// release the action refers to: for resolve, the release that carries the fix (empty:
// any new event reopens the issue, as Sentry's plain resolve); for
// resolve_in_next_release, the release deployed now, which is required. The web layer
// passes the environment's current release, or the issue's LastRelease.
//
// The transitions: resolve from unresolved, ignored or resolved_in_next_release;
// resolve_in_next_release from unresolved, ignored or resolved; ignore from unresolved,
// resolved or resolved_in_next_release; reopen from resolved, resolved_in_next_release or
// ignored. Ignore and reopen clear the resolution. Repeating the current status returns
// an error wrapping ErrConflict; an unknown action, a missing or overlong release wraps
// ErrInvalid.
func Apply(is Issue, action Action, release string, now time.Time) (Issue, error) {
	if !slices.Contains(Actions(), action) {
		return is, fmt.Errorf("action %q: %w: want one of %v", action, ErrInvalid, Actions())
	}
	if len(release) > MaxNameLength {
		return is, fmt.Errorf("action %s: release: %w: longer than %d bytes", action, ErrInvalid, MaxNameLength)
	}
	if action == ActionResolveInNextRelease && release == "" {
		return is, fmt.Errorf("action %s: %w: the current release is required", action, ErrInvalid)
	}
	var from []Status
	var to Status
	switch action {
	case ActionResolve:
		from, to = []Status{StatusUnresolved, StatusIgnored, StatusResolvedInNextRelease}, StatusResolved
	case ActionResolveInNextRelease:
		from, to = []Status{StatusUnresolved, StatusIgnored, StatusResolved}, StatusResolvedInNextRelease
	case ActionIgnore:
		from, to = []Status{StatusUnresolved, StatusResolved, StatusResolvedInNextRelease}, StatusIgnored
	case ActionReopen:
		from, to = []Status{StatusResolved, StatusResolvedInNextRelease, StatusIgnored}, StatusUnresolved
	}
	if !slices.Contains(from, is.Status) {
		return is, fmt.Errorf("action %s on a %s issue: %w", action, is.Status, ErrConflict)
	}
	is.Status = to
	switch to {
	case StatusResolved, StatusResolvedInNextRelease:
		is.ResolvedIn, is.ResolvedAt = release, now
	default:
		is.ResolvedIn, is.ResolvedAt = "", time.Time{}
	}
	return is, nil
}

// Regressed reports whether an event from eventRelease reopens is. Releases are ordered
// by deployOrder, which gives a release's position in Ferry's deploy order in the event's
// environment, such as the ID of its latest deploy there (so that a rollback to an old
// release counts as deployed after the fix it undoes), and false for a release Ferry does
// not know; release names are never compared, so "1.10" after "1.9", or a SHA that sorts
// before its predecessor, are ordered as deployed (unlike Sentry's semver or date guess,
// getsentry/sentry#104513). A caller may order releases Ferry did not deploy by when they
// were first seen.
//
// A resolved issue regresses on an event from its ResolvedIn release or one deployed
// after it: the fix did not work, or was rolled back. Events from releases deployed
// before it do not: old pods, cached clients. It also regresses when ResolvedIn is empty
// (Sentry's plain resolve), and when either release is missing or unknown, since nothing
// shows that the event comes from code older than the fix.
//
// An issue resolved in the next release regresses only on an event from a release
// deployed after ResolvedIn. An event with no or an unknown release, or when ResolvedIn
// itself is unknown, leaves it resolved: "next" needs a release known to come later.
//
// Unresolved and ignored issues never regress.
func Regressed(is Issue, eventRelease string, deployOrder func(release string) (int64, bool)) bool {
	switch is.Status {
	case StatusResolved:
		if is.ResolvedIn == "" || eventRelease == "" {
			return true
		}
		if eventRelease == is.ResolvedIn {
			return true
		}
		ev, ok := deployOrder(eventRelease)
		if !ok {
			return true
		}
		fix, ok := deployOrder(is.ResolvedIn)
		if !ok {
			return true
		}
		return ev >= fix
	case StatusResolvedInNextRelease:
		if is.ResolvedIn == "" || eventRelease == "" || eventRelease == is.ResolvedIn {
			return false
		}
		ev, ok := deployOrder(eventRelease)
		if !ok {
			return false
		}
		current, ok := deployOrder(is.ResolvedIn)
		if !ok {
			return false
		}
		return ev > current
	}
	return false
}

// UserKey returns the identity an event's user is counted under for UsersAffected, as
// Sentry picks it: "id:ID", else "email:EMAIL" (lowercased), else "username:NAME", else
// "ip:ADDRESS" from the user or, failing that, the request's REMOTE_ADDR. An IP address
// the SDK left as "{{auto}}" counts only once the ingest has replaced it with the
// client's address. "" means no user.
func UserKey(e Event) string {
	if u := e.User; u != nil {
		switch {
		case u.ID != "":
			return "id:" + u.ID
		case u.Email != "":
			return "email:" + strings.ToLower(u.Email)
		case u.Username != "":
			return "username:" + u.Username
		}
		if a, err := netip.ParseAddr(u.IPAddress); err == nil {
			return "ip:" + a.Unmap().String()
		}
	}
	if r := e.Request; r != nil && firstByte(r.Env) == '{' {
		var env struct {
			RemoteAddr string `json:"REMOTE_ADDR"`
		}
		if json.Unmarshal(r.Env, &env) == nil {
			if a, err := netip.ParseAddr(env.RemoteAddr); err == nil {
				return "ip:" + a.Unmap().String()
			}
		}
	}
	return ""
}

// EventTags returns the tags an event adds to its issue's summary: the event's own tags,
// then, unless a tag already has the key, those Sentry derives: level, environment,
// release, server_name, transaction, user (UserKey), and os.name, runtime.name and
// browser.name from the contexts.
func EventTags(e Event) Pairs {
	tags := slices.Clone(e.Tags)
	add := func(k, v string) {
		if v == "" {
			return
		}
		if _, ok := tags.Get(k); !ok {
			tags = append(tags, Pair{Key: k, Value: truncate(v, MaxTagLength)})
		}
	}
	add("level", string(e.Level))
	add("environment", e.Environment)
	add("release", e.Release)
	add("server_name", e.ServerName)
	add("transaction", e.Transaction)
	add("user", UserKey(e))
	for _, c := range []string{"os", "runtime", "browser"} {
		var ctx struct {
			Name string `json:"name"`
		}
		if raw, ok := e.Contexts[c]; ok && firstByte(raw) == '{' && json.Unmarshal(raw, &ctx) == nil {
			add(c+".name", ctx.Name)
		}
	}
	return tags
}

// AddTags returns summary with one more event's tags counted; summary itself is not
// changed. A key repeated in tags counts once, with its first value.
func AddTags(summary []TagSummary, tags Pairs) []TagSummary {
	out := make([]TagSummary, len(summary))
	for i, s := range summary {
		out[i] = TagSummary{Key: s.Key, Count: s.Count, Values: slices.Clone(s.Values)}
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if seen[t.Key] {
			continue
		}
		seen[t.Key] = true
		i := slices.IndexFunc(out, func(s TagSummary) bool { return s.Key == t.Key })
		if i < 0 {
			if len(out) >= MaxSummaryKeys {
				continue
			}
			out = append(out, TagSummary{Key: t.Key})
			i = len(out) - 1
		}
		s := &out[i]
		s.Count++
		switch j := slices.IndexFunc(s.Values, func(v TagValue) bool { return v.Value == t.Value }); {
		case j >= 0:
			s.Values[j].Count++
		case len(s.Values) < MaxSummaryValues:
			s.Values = append(s.Values, TagValue{Value: t.Value, Count: 1})
		default:
			last := len(s.Values) - 1 // the values are kept sorted: the last is the least frequent
			s.Values[last] = TagValue{Value: t.Value, Count: s.Values[last].Count + 1}
		}
		slices.SortStableFunc(s.Values, func(a, b TagValue) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
		})
	}
	return out
}

// The environment variables Ferry sets in the workloads it deploys; the Sentry SDKs read
// them, so applications report their release and environment without a change.
const (
	EnvRelease     = "SENTRY_RELEASE"
	EnvEnvironment = "SENTRY_ENVIRONMENT"
)

// ShortSHALength is the length of the commit SHA in a release name, git's and Ferry's
// short form.
const ShortSHALength = 7

// ReleaseName returns the release name Ferry gives a deploy of an application at a
// commit: "APP@SHORT_SHA", the SHA lowercased and cut to ShortSHALength, such as
// "shop@3f2a9c1". Sentry's own convention is "package@version"; a commit is what Ferry
// deploys, and the name stays the same in every environment, so "first seen in" and
// regressions line up with Ferry's releases.
func ReleaseName(app, sha string) string {
	sha = strings.ToLower(sha)
	if len(sha) > ShortSHALength {
		sha = sha[:ShortSHALength]
	}
	return app + "@" + sha
}

// ParseReleaseName splits a release name made by ReleaseName, or by a CI that wrote
// "APP@SHA" itself: the part after the last "@" must be 7 to 64 hex digits (a short or
// full SHA-1 or SHA-256 commit id), returned lowercased to match against a release's
// revision by prefix. Any other name, such as "app@1.2.3", is not Ferry's: ok is false.
func ParseReleaseName(s string) (app, sha string, ok bool) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return "", "", false
	}
	app, sha = s[:i], s[i+1:]
	if len(sha) < ShortSHALength || len(sha) > 64 {
		return "", "", false
	}
	for j := range len(sha) {
		if !isHex(sha[j]) {
			return "", "", false
		}
	}
	return app, strings.ToLower(sha), true
}
