package errtrack

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeEvent feeds DecodeEvent arbitrary payloads. The seed corpus in
// testdata/fuzz/FuzzDecodeEvent holds events the official Go SDK sent (an exception, a
// message, a recovered panic) and odd shapes of other SDKs. For every payload: no panic;
// an error only for what is not a JSON object, wrapping ErrInvalid; a normalized event
// within the limits; and what the store would write of it reads back to the same bytes,
// hash, title and culprit.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"exception":{"values":[{"type":"E","value":"order 7","stacktrace":{"frames":[{"module":"m","function":"f","in_app":true}]}}]}}`,
		`{"exception":[{"type":"E"},null,3],"threads":{"values":[{"crashed":true,"stacktrace":{"frames":[{"filename":"a.js:1:2"}]}}]}}`,
		`{"message":{"message":"user %s in {0}","params":["x"]},"fingerprint":["{{ default }}",1]}`,
		`{"tags":[["a",1],["b"]],"breadcrumbs":{"values":[{"timestamp":1.5e9}]},"timestamp":"2026-01-02T03:04:05"}`,
		`{"level":40,"user":{"id":7,"ip_address":"::ffff:10.0.0.1"},"request":{"headers":{"A":["x"]},"env":{"REMOTE_ADDR":"10.0.0.2"}}}`,
		`{"event_id":"x","release":5,"sentry.interfaces.Message":{"message":"m"}}`,
		`[1]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := DecodeEvent(payload)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeEvent error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if e.Size != len(payload) {
			t.Fatalf("Size %d for %d bytes", e.Size, len(payload))
		}
		// Before Normalize too, nothing panics.
		Fingerprint(e)
		Title(e)
		Culprit(e)
		UserKey(e)
		EventTags(e)

		e.Normalize()
		checkLimits(t, e)
		hash, kind := Fingerprint(e)
		title, culprit := Title(e), Culprit(e)
		if len(title) > MaxTitleLength || len(culprit) > MaxCulpritLength {
			t.Fatalf("title of %d bytes, culprit of %d", len(title), len(culprit))
		}
		issue := NewIssue(1, e)
		if issue.Fingerprint != hash || issue.Grouping != kind {
			t.Fatalf("NewIssue grouped as %s %s, Fingerprint as %s %s", issue.Fingerprint, issue.Grouping, hash, kind)
		}

		stored, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("json.Marshal of a normalized event: %v", err)
		}
		back, err := DecodeEvent(stored)
		if err != nil {
			t.Fatalf("DecodeEvent of a stored event: %v\n%s", err, stored)
		}
		back.Normalize()
		again, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored, again) {
			t.Fatalf("the stored event reads back differently:\n%s\n%s", stored, again)
		}
		if h, k := Fingerprint(back); h != hash || k != kind {
			t.Fatalf("the stored event hashes %s (%s), the event %s (%s)", h, k, hash, kind)
		}
		if Title(back) != title || Culprit(back) != culprit {
			t.Fatalf("the stored event's title and culprit differ: %q %q, %q %q", Title(back), Culprit(back), title, culprit)
		}
	})
}

func checkLimits(t *testing.T, e Event) {
	t.Helper()
	if _, ok := normalizeEventID(e.EventID); !ok || len(e.EventID) != 32 {
		t.Fatalf("event id %q", e.EventID)
	}
	if normalizeLevel(e.Level) != e.Level || e.Level == "" {
		t.Fatalf("level %q", e.Level)
	}
	if len(e.Exception) > MaxExceptions || len(e.Breadcrumbs) > MaxBreadcrumbs || len(e.Threads) > MaxThreads ||
		len(e.Tags) > MaxTags || len(e.Fingerprint) > MaxFingerprint || len(e.Cuts) > MaxCuts {
		t.Fatalf("%d exceptions, %d breadcrumbs, %d threads, %d tags, %d fingerprint elements",
			len(e.Exception), len(e.Breadcrumbs), len(e.Threads), len(e.Tags), len(e.Fingerprint))
	}
	stacks := []*Stacktrace{e.Stacktrace}
	for _, ex := range e.Exception {
		if len(ex.Value) > MaxMessageLength || len(ex.Type) > MaxNameLength {
			t.Fatalf("exception type of %d bytes, value of %d", len(ex.Type), len(ex.Value))
		}
		stacks = append(stacks, ex.Stacktrace)
	}
	for _, th := range e.Threads {
		stacks = append(stacks, th.Stacktrace)
	}
	for _, st := range stacks {
		if st == nil {
			continue
		}
		if len(st.Frames) > MaxFrames {
			t.Fatalf("%d frames", len(st.Frames))
		}
		for _, f := range st.Frames {
			if len(f.Function) > MaxNameLength || len(f.ContextLine) > MaxLineLength || len(f.Vars) > MaxRawLength ||
				len(f.PreContext) > MaxContextLines || len(f.PostContext) > MaxContextLines {
				t.Fatalf("frame over the limits: %+v", f)
			}
		}
	}
	if le := e.LogEntry; le != nil && (len(le.Formatted) > MaxMessageLength || len(le.Message) > MaxMessageLength) {
		t.Fatalf("message of %d bytes, template of %d", len(le.Formatted), len(le.Message))
	}
	for _, kv := range e.Tags {
		if kv.Key == "" || len(kv.Key) > MaxTagLength || len(kv.Value) > MaxTagLength {
			t.Fatalf("tag %q=%q", kv.Key, kv.Value)
		}
	}
	for _, raw := range e.Contexts {
		if len(raw) > MaxRawLength {
			t.Fatalf("context of %d bytes", len(raw))
		}
	}
}

// FuzzNormalizeValue checks that normalizing a value twice changes nothing more: the
// grouping of a stored event must not depend on how often it was normalized.
func FuzzNormalizeValue(f *testing.F) {
	for _, seed := range []string{
		"user 42 not found", "dial tcp 10.0.0.12:5432", "[2001:db8::1]:443", "'order_12345'",
		"ann@example.com", "2026-03-04T05:06:07Z", "0xc000123abc", "3f2a9c1e-7b4d-4c2a-9f1e-0a1b2c3d4e5f",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := normalizeValue(s)
		if twice := normalizeValue(once); twice != once {
			t.Fatalf("normalizeValue(%q) = %q, then %q", s, once, twice)
		}
	})
}
