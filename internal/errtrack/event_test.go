package errtrack

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testID = "0123456789abcdef0123456789abcdef"

func ptr[T any](v T) *T { return &v }

// TestDecodeEventForms checks that each form Sentry accepts for a field decodes to the
// same Event.
func TestDecodeEventForms(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 500000000, time.UTC)
	frames := `{"frames":[{"function":"handle","module":"app.views","lineno":12,"in_app":true}]}`
	wantFrames := &Stacktrace{Frames: []Frame{{Function: "handle", Module: "app.views", Lineno: 12, InApp: ptr(true)}}}
	tests := []struct {
		name    string
		payload string
		want    Event
	}{
		{
			name:    "exception as values",
			payload: `{"exception":{"values":[{"type":"KeyError","value":"'id'","stacktrace":` + frames + `}]}}`,
			want:    Event{Exception: Exceptions{{Type: "KeyError", Value: "'id'", Stacktrace: wantFrames}}},
		},
		{
			name:    "exception as a list",
			payload: `{"exception":[{"type":"KeyError","value":"'id'","stacktrace":` + frames + `}]}`,
			want:    Event{Exception: Exceptions{{Type: "KeyError", Value: "'id'", Stacktrace: wantFrames}}},
		},
		{
			name:    "exception as one object",
			payload: `{"exception":{"type":"KeyError","value":"'id'","stacktrace":` + frames + `}}`,
			want:    Event{Exception: Exceptions{{Type: "KeyError", Value: "'id'", Stacktrace: wantFrames}}},
		},
		{
			name:    "exception items that are not objects are skipped",
			payload: `{"exception":{"values":[null,1,"x",{"type":"E"}]}}`,
			want:    Event{Exception: Exceptions{{Type: "E"}}},
		},
		{
			name:    "tags as an object with typed values",
			payload: `{"tags":{"region":"eu","retries":3,"beta":true,"none":null}}`,
			want:    Event{Tags: Pairs{{"region", "eu"}, {"retries", "3"}, {"beta", "true"}, {"none", ""}}},
		},
		{
			name:    "tags as pairs, malformed ones dropped",
			payload: `{"tags":[["region","eu"],["retries",3],["lonely"],"x",["a","b","c"]]}`,
			want:    Event{Tags: Pairs{{"region", "eu"}, {"retries", "3"}}},
		},
		{
			name:    "tags of another type",
			payload: `{"tags":"region=eu"}`,
			want:    Event{},
		},
		{
			name:    "breadcrumbs as a list, Unix timestamps",
			payload: `{"breadcrumbs":[{"timestamp":1772600767.5,"category":"http","message":"GET /","level":"warn","data":{"status":500}}]}`,
			want:    Event{Breadcrumbs: Breadcrumbs{{Timestamp: ts, Category: "http", Message: "GET /", Level: LevelWarning, Data: json.RawMessage(`{"status":500}`)}}},
		},
		{
			name:    "breadcrumbs as values, RFC 3339",
			payload: `{"breadcrumbs":{"values":[{"timestamp":"2026-03-04T05:06:07.5Z","category":"http","message":"GET /","level":"warning","data":{"status":500}}]}}`,
			want:    Event{Breadcrumbs: Breadcrumbs{{Timestamp: ts, Category: "http", Message: "GET /", Level: LevelWarning, Data: json.RawMessage(`{"status":500}`)}}},
		},
		{
			name:    "message as a string",
			payload: `{"message":"disk full"}`,
			want:    Event{LogEntry: &LogEntry{Formatted: "disk full"}},
		},
		{
			name:    "message as an object",
			payload: `{"message":{"message":"user %s not found","params":["42"],"formatted":"user 42 not found"}}`,
			want:    Event{LogEntry: &LogEntry{Formatted: "user 42 not found", Message: "user %s not found", Params: []json.RawMessage{json.RawMessage(`"42"`)}}},
		},
		{
			name:    "logentry, message string fills the formatted text",
			payload: `{"logentry":{"message":"user %s not found","params":[42]},"message":"user 42 not found"}`,
			want:    Event{LogEntry: &LogEntry{Formatted: "user 42 not found", Message: "user %s not found", Params: []json.RawMessage{json.RawMessage(`42`)}}},
		},
		{
			name:    "timestamp RFC 3339",
			payload: `{"timestamp":"2026-03-04T06:06:07.5+01:00"}`,
			want:    Event{Timestamp: ts},
		},
		{
			name:    "timestamp without a zone is UTC",
			payload: `{"timestamp":"2026-03-04T05:06:07.5"}`,
			want:    Event{Timestamp: ts},
		},
		{
			name:    "timestamp as Unix seconds",
			payload: `{"timestamp":1772600767.5}`,
			want:    Event{Timestamp: ts},
		},
		{
			name:    "timestamp as a numeric string",
			payload: `{"timestamp":"1772600767.5"}`,
			want:    Event{Timestamp: ts},
		},
		{
			name:    "timestamp unreadable",
			payload: `{"timestamp":"yesterday"}`,
			want:    Event{Cuts: []Cut{{Field: "timestamp", Reason: CutInvalid}}},
		},
		{
			name:    "timestamp before 1970",
			payload: `{"timestamp":"0001-01-01T00:00:00Z"}`,
			want:    Event{Cuts: []Cut{{Field: "timestamp", Reason: CutInvalid}}},
		},
		{
			name:    "level alias",
			payload: `{"level":"WARN"}`,
			want:    Event{Level: LevelWarning},
		},
		{
			name:    "level as a Python logging number",
			payload: `{"level":40}`,
			want:    Event{Level: LevelError},
		},
		{
			name:    "field of the wrong type is dropped, the rest kept",
			payload: `{"release":5,"environment":"prod","modules":{"a":"1"}}`,
			want:    Event{Environment: "prod", Modules: map[string]string{"a": "1"}, Cuts: []Cut{{Field: "release", Reason: CutInvalid}}},
		},
		{
			name:    "frames leniently",
			payload: `{"exception":[{"type":"E","stacktrace":{"frames":[null,{"function":"f","lineno":"12","colno":"x","in_app":"yes","pre_context":["a",null]}]}}]}`,
			want:    Event{Exception: Exceptions{{Type: "E", Stacktrace: &Stacktrace{Frames: []Frame{{Function: "f", Lineno: 12, PreContext: []string{"a", ""}}}}}}},
		},
		{
			name:    "numeric ids",
			payload: `{"user":{"id":42,"ip_address":"{{auto}}"},"exception":[{"type":"E","thread_id":7}]}`,
			want:    Event{User: &User{ID: "42", IPAddress: "{{auto}}"}, Exception: Exceptions{{Type: "E", ThreadID: "7"}}},
		},
		{
			name:    "threads as values",
			payload: `{"threads":{"values":[{"id":1,"crashed":true,"stacktrace":` + frames + `}]}}`,
			want:    Event{Threads: Threads{{ID: "1", Crashed: true, Stacktrace: wantFrames}}},
		},
		{
			name:    "request headers as pairs",
			payload: `{"request":{"url":"https://shop.example/cart","method":"POST","headers":[["Accept","*/*"]],"query_string":{"a":"1"},"data":{"id":1}}}`,
			want: Event{Request: &Request{URL: "https://shop.example/cart", Method: "POST", Headers: Pairs{{"Accept", "*/*"}},
				QueryString: json.RawMessage(`{"a":"1"}`), Data: json.RawMessage(`{"id":1}`)}},
		},
		{
			name:    "fingerprint with a number",
			payload: `{"fingerprint":["{{ default }}",503]}`,
			want:    Event{Fingerprint: []string{"{{ default }}", "503"}},
		},
		{
			name:    "legacy store interfaces",
			payload: `{"sentry.interfaces.Exception":{"values":[{"type":"E","value":"v"}]},"sentry.interfaces.Message":{"message":"m %s","params":["x"]},"sentry.interfaces.User":{"id":"u"}}`,
			want: Event{Exception: Exceptions{{Type: "E", Value: "v"}}, User: &User{ID: "u"},
				LogEntry: &LogEntry{Message: "m %s", Params: []json.RawMessage{json.RawMessage(`"x"`)}}},
		},
		{
			name:    "event id as an upper-case UUID",
			payload: `{"event_id":"01234567-89AB-CDEF-0123-456789ABCDEF"}`,
			want:    Event{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent([]byte(tt.payload))
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if got.Size != len(tt.payload) {
				t.Errorf("Size = %d, want %d", got.Size, len(tt.payload))
			}
			if len(got.EventID) != 32 {
				t.Errorf("EventID = %q, want 32 hex digits", got.EventID)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Event{}, "EventID", "Size")); diff != "" {
				t.Errorf("DecodeEvent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEventID(t *testing.T) {
	tests := []struct {
		payload  string
		want     string // "" for a new one
		wantCuts []Cut
	}{
		{`{"event_id":"` + testID + `"}`, testID, nil},
		{`{"event_id":"01234567-89AB-CDEF-0123-456789ABCDEF"}`, testID, nil},
		{`{}`, "", nil},
		{`{"event_id":null}`, "", nil},
		{`{"event_id":"not-an-id"}`, "", []Cut{{Field: "event_id", Reason: CutInvalid}}},
		{`{"event_id":12}`, "", []Cut{{Field: "event_id", Reason: CutInvalid}}},
	}
	for _, tt := range tests {
		e, err := DecodeEvent([]byte(tt.payload))
		if err != nil {
			t.Fatalf("DecodeEvent(%s): %v", tt.payload, err)
		}
		if _, ok := normalizeEventID(e.EventID); !ok || e.EventID != strings.ToLower(e.EventID) {
			t.Errorf("DecodeEvent(%s).EventID = %q, want 32 lowercase hex digits", tt.payload, e.EventID)
		}
		if tt.want != "" && e.EventID != tt.want {
			t.Errorf("DecodeEvent(%s).EventID = %q, want %q", tt.payload, e.EventID, tt.want)
		}
		if diff := cmp.Diff(tt.wantCuts, e.Cuts); diff != "" {
			t.Errorf("DecodeEvent(%s).Cuts (-want +got):\n%s", tt.payload, diff)
		}
	}
	if a, b := NewEventID(), NewEventID(); a == b {
		t.Errorf("NewEventID returned %q twice", a)
	}
}

func TestDecodeEventInvalid(t *testing.T) {
	for _, payload := range []string{
		``,
		`   `,
		`null`,
		`[]`,
		`"event"`,
		`42`,
		`{`,
		`{"message":"x"`,
		`{"message":"x"} trailing`,
		`{"message":"x",}`,
		strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000),
	} {
		e, err := DecodeEvent([]byte(payload))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeEvent(%.40q) = %v, want ErrInvalid", payload, err)
		}
		if e.EventID != "" {
			t.Errorf("DecodeEvent(%.40q) returned an event with an error", payload)
		}
	}
}

// TestEventRoundTrip checks that what json.Marshal writes of an event, as the store
// keeps it, decodes to the same event.
func TestEventRoundTrip(t *testing.T) {
	payload := `{"event_id":"` + testID + `","timestamp":1772600767.25,"platform":"python","level":"warning",
		"logger":"app","transaction":"/cart","server_name":"web-1","release":"shop@3f2a9c1","dist":"1","environment":"prod",
		"logentry":{"message":"user %s not found","params":["42"]},
		"exception":{"values":[{"type":"KeyError","value":"'id'","module":"builtins","mechanism":{"type":"generic","handled":false},
			"stacktrace":{"frames":[{"filename":"app/views.py","abs_path":"/srv/app/views.py","function":"cart","module":"app.views",
			"lineno":12,"colno":3,"in_app":true,"context_line":"x = d['id']","pre_context":["a"],"post_context":["b"],"vars":{"d":"{}"}}]}}]},
		"threads":{"values":[{"id":"1","name":"main","current":true}]},
		"tags":[["region","eu"],["region","us"]],
		"breadcrumbs":{"values":[{"timestamp":"2026-03-04T05:06:07Z","type":"http","category":"httplib","level":"info","message":"GET","data":{"a":1}}]},
		"user":{"id":"42","email":"a@example.com","ip_address":"10.0.0.1","geo":{"city":"Berlin"}},
		"request":{"url":"https://shop.example/cart","method":"GET","headers":{"Accept":"*/*"},"cookies":"a=b","env":{"REMOTE_ADDR":"10.0.0.2"}},
		"contexts":{"os":{"name":"Linux"}},"extra":{"order":{"id":7}},"fingerprint":["{{ default }}","eu"],
		"modules":{"django":"5.0"},"sdk":{"name":"sentry.python","version":"2.0.0","integrations":["django"],"packages":[{"name":"pypi:sentry-sdk","version":"2.0.0"}]}}`
	e, err := DecodeEvent([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	e.Normalize()
	if len(e.Cuts) != 0 {
		t.Fatalf("cuts %v", e.Cuts)
	}
	if e.LogEntry.Formatted != "user 42 not found" {
		t.Errorf("formatted message %q", e.LogEntry.Formatted)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	back.Normalize()
	if diff := cmp.Diff(e, back, cmpopts.IgnoreFields(Event{}, "Size")); diff != "" {
		t.Errorf("round trip (-want +got):\n%s\n%s", diff, b)
	}
	for _, canonical := range []string{`"exception":{"values":[`, `"breadcrumbs":{"values":[`, `"threads":{"values":[`, `"tags":[["region","eu"],["region","us"]]`, `"logentry":{`} {
		if !strings.Contains(string(b), canonical) {
			t.Errorf("encoded event lacks %s:\n%s", canonical, b)
		}
	}
}

func TestNormalizeLimits(t *testing.T) {
	frames := make([]Frame, 300)
	for i := range frames {
		frames[i] = Frame{Function: "f" + strings.Repeat("x", i%3), Lineno: i}
	}
	crumbs := make(Breadcrumbs, 150)
	for i := range crumbs {
		crumbs[i] = Breadcrumb{Message: strings.Repeat("b", i%5)}
		crumbs[i].Data = json.RawMessage(`{"i":` + strings.Repeat("1", i%3+1) + `}`)
	}
	longMessage := strings.Repeat("é", MaxMessageLength) // 2 bytes each
	e := Event{
		EventID:     "nope",
		Level:       "catastrophic",
		LogEntry:    &LogEntry{Formatted: longMessage},
		Exception:   Exceptions{{Type: "E", Stacktrace: &Stacktrace{Frames: frames}}},
		Breadcrumbs: crumbs,
		Tags:        Pairs{{"", "no key"}, {"k", strings.Repeat("v", 300)}},
		Contexts:    map[string]json.RawMessage{"big": json.RawMessage(`"` + strings.Repeat("x", MaxRawLength) + `"`), "small": json.RawMessage(`{}`)},
	}
	e.Exception[0].Stacktrace.Frames[299].PreContext = []string{"1", "2", "3", "4", "5", "6", "7"}
	e.Normalize()

	if _, ok := normalizeEventID(e.EventID); !ok {
		t.Errorf("event id %q", e.EventID)
	}
	if e.Level != LevelError || e.Platform != "other" {
		t.Errorf("level %q, platform %q", e.Level, e.Platform)
	}
	st := e.Exception[0].Stacktrace
	if len(st.Frames) != MaxFrames || st.Frames[0].Lineno != 0 || st.Frames[124].Lineno != 124 || st.Frames[125].Lineno != 175 || st.Frames[249].Lineno != 299 {
		t.Errorf("kept %d frames, lines %d..%d %d..%d", len(st.Frames), st.Frames[0].Lineno, st.Frames[124].Lineno, st.Frames[125].Lineno, st.Frames[len(st.Frames)-1].Lineno)
	}
	if diff := cmp.Diff([]int{125, 175}, st.FramesOmitted); diff != "" {
		t.Errorf("frames_omitted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"3", "4", "5", "6", "7"}, st.Frames[249].PreContext); diff != "" {
		t.Errorf("pre_context (-want +got):\n%s", diff)
	}
	if len(e.Breadcrumbs) != MaxBreadcrumbs || e.Breadcrumbs[0].Message != crumbs[50].Message {
		t.Errorf("kept %d breadcrumbs", len(e.Breadcrumbs))
	}
	if m := e.LogEntry.Formatted; len(m) > MaxMessageLength || !strings.HasSuffix(m, "...") || !strings.HasPrefix(longMessage, strings.TrimSuffix(m, "...")) {
		t.Errorf("message of %d bytes ends %q", len(m), m[len(m)-8:])
	}
	if diff := cmp.Diff(Pairs{{"k", strings.Repeat("v", MaxTagLength-3) + "..."}}, e.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if _, ok := e.Contexts["big"]; ok || len(e.Contexts) != 1 {
		t.Errorf("contexts %v", e.Contexts)
	}
	wantCuts := []Cut{
		{Field: "event_id", Reason: CutInvalid},
		{Field: "level", Reason: CutInvalid},
		{Field: "logentry.formatted", Reason: CutTruncated, Original: 2 * MaxMessageLength},
		{Field: "exception.values.0.stacktrace.frames", Reason: CutTruncated, Original: 300},
		{Field: "exception.values.0.stacktrace.frames.249.pre_context", Reason: CutTruncated, Original: 7},
		{Field: "tags", Reason: CutInvalid},
		{Field: "tags.0.1", Reason: CutTruncated, Original: 300},
		{Field: "breadcrumbs.values", Reason: CutTruncated, Original: 150},
		{Field: "contexts.big", Reason: CutDropped, Original: MaxRawLength + 2},
	}
	if diff := cmp.Diff(wantCuts, e.Cuts); diff != "" {
		t.Errorf("cuts (-want +got):\n%s", diff)
	}

	// Normalize is idempotent: a second run cuts nothing more.
	again := e
	again.Cuts = slicesClone(e.Cuts)
	again.Normalize()
	if diff := cmp.Diff(e, again); diff != "" {
		t.Errorf("second Normalize changed the event (-first +second):\n%s", diff)
	}
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg..."},
		{"ééééé", 6, "é..."},  // 2-byte runes: never split one
		{"日本語日本語", 8, "日..."}, // 3-byte runes
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.max); got != tt.want || len(got) > tt.max {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
		}
	}
}

func TestFormatMessage(t *testing.T) {
	tests := []struct {
		tmpl   string
		params string
		want   string
	}{
		{"user %s not found", `["42"]`, "user 42 not found"},
		{"%d of %d done, 100%% sure", `[3, 5]`, "3 of 5 done, 100% sure"},
		{"took %.2f s", `[1.5]`, "took 1.5 s"},
		{"user {} in {}", `["ann","eu"]`, "user ann in eu"},
		{"{1} before {0}", `["a","b"]`, "b before a"},
		{"more %s than %s", `["x"]`, "more x than %s"},
		{"no params %s", `[]`, "no params %s"},
		{"object {}", `[{"a":1}]`, `object {"a":1}`},
		{"unclosed {", `["x"]`, "unclosed {"},
	}
	for _, tt := range tests {
		var params []json.RawMessage
		if err := json.Unmarshal([]byte(tt.params), &params); err != nil {
			t.Fatal(err)
		}
		if got := formatMessage(tt.tmpl, params); got != tt.want {
			t.Errorf("formatMessage(%q, %s) = %q, want %q", tt.tmpl, tt.params, got, tt.want)
		}
	}
	// A template that multiplies a long parameter stops at the limit.
	huge := formatMessage(strings.Repeat("{0}", 10000), []json.RawMessage{json.RawMessage(`"` + strings.Repeat("x", 10000) + `"`)})
	if len(huge) > MaxMessageLength+10000 {
		t.Errorf("formatMessage built %d bytes", len(huge))
	}
}

func TestNormalizeCapsCuts(t *testing.T) {
	e := Event{Level: "bogus", Tags: make(Pairs, MaxTags)} // 101 cuts
	for i := range e.Tags {
		e.Tags[i] = Pair{"k", strings.Repeat("v", MaxTagLength+1)}
	}
	e.Normalize()
	if len(e.Cuts) != MaxCuts {
		t.Fatalf("%d cuts, want %d", len(e.Cuts), MaxCuts)
	}
	if diff := cmp.Diff(Cut{Field: "_cuts", Reason: CutTruncated, Original: MaxTags + 1}, e.Cuts[MaxCuts-1]); diff != "" {
		t.Errorf("last cut (-want +got):\n%s", diff)
	}
	before := slicesClone(e.Cuts)
	e.Normalize()
	if diff := cmp.Diff(before, e.Cuts); diff != "" {
		t.Errorf("second Normalize changed the cuts (-want +got):\n%s", diff)
	}
}
