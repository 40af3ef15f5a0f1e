package errtrack

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// checkMarshal fails unless MarshalEvent writes e as json.Marshal does, or fails where
// json.Marshal fails.
func checkMarshal(t *testing.T, e Event) []byte {
	t.Helper()
	want, wantErr := json.Marshal(e)
	got, err := MarshalEvent(e)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("MarshalEvent error %v, json.Marshal error %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalEvent wrote\n%s\njson.Marshal\n%s", got, want)
	}
	return got
}

// TestMarshalEvent checks MarshalEvent against json.Marshal on the events of the seed
// payloads, as decoded and as normalized, and that what it writes of the SDKs' events
// reads back the same. (Not every odd payload does: a frame of nothing but an empty list,
// {"pre_context":[]}, is kept, written as {}, and that reads back as no frame, the same
// with json.Marshal.)
func TestMarshalEvent(t *testing.T) {
	for _, p := range seedPayloads(t) {
		e, err := DecodeEvent(p)
		if err != nil {
			continue
		}
		checkMarshal(t, e)
		e.Normalize()
		checkMarshal(t, e)
	}
	for _, p := range sdkPayloads(t) {
		e, err := DecodeEvent(p)
		if err != nil {
			t.Fatal(err)
		}
		e.Normalize()
		doc := checkMarshal(t, e)
		back, err := DecodeEvent(doc)
		if err != nil {
			t.Fatalf("DecodeEvent(%s): %v", doc, err)
		}
		back.Normalize()
		if diff := cmp.Diff(e, back, cmpopts.IgnoreFields(Event{}, "Size")); diff != "" {
			t.Fatalf("%s reads back (-want +got):\n%s", doc, diff)
		}
	}
}

// TestMarshalEventEveryField fills every field of an Event, so that a field added to the
// types and not to MarshalEvent shows, with strings and raw JSON that need escaping and
// compacting.
func TestMarshalEventEveryField(t *testing.T) {
	var e Event
	fill(reflect.ValueOf(&e).Elem())
	checkMarshal(t, e)

	// Empty, as opposed to nil: a stack trace's frames are written as [], not null.
	e.Exception[0].Stacktrace.Frames = []Frame{}
	e.Exception[1].Stacktrace.Frames = nil
	e.Breadcrumbs[0].Timestamp = time.Time{}
	e.Contexts["nil"] = nil
	e.LogEntry.Params = append(e.LogEntry.Params, nil)
	checkMarshal(t, e)
}

// fill sets every field reachable from v to a value that is not zero.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(`a "q" \ <b>&` + "\t\x01\u2028\u2029é\xff " + v.Type().Name())
	case reflect.Int:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 4, 5, 6, 7, 8000, time.FixedZone("CET", 3600))))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(" {\"a\" : [ 1 , \"<b> \u2028 x\" ] ,\n\"c\":{}} "))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0))
		fill(s.Index(1))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"b", "a<", "é", "A", "a"} {
			val := reflect.New(v.Type().Elem()).Elem()
			fill(val)
			m.SetMapIndex(reflect.ValueOf(k), val)
		}
		v.Set(m)
	}
}

// TestMarshalEventErrors checks that MarshalEvent fails where json.Marshal does.
func TestMarshalEventErrors(t *testing.T) {
	for name, e := range map[string]Event{
		"invalid raw JSON":     {Contexts: map[string]json.RawMessage{"os": json.RawMessage(`{"name":`)}},
		"two raw values":       {Extra: map[string]json.RawMessage{"a": json.RawMessage(`1 2`)}},
		"empty raw value":      {LogEntry: &LogEntry{Params: []json.RawMessage{{}}}},
		"whitespace raw value": {User: &User{Geo: json.RawMessage(" ")}},
		"year 10000":           {Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"negative year":        {Breadcrumbs: Breadcrumbs{{Timestamp: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := json.Marshal(e); err == nil {
				t.Fatal("json.Marshal did not fail")
			}
			if _, err := MarshalEvent(e); err == nil {
				t.Fatal("MarshalEvent did not fail")
			}
		})
	}
	// Raw JSON with invalid UTF-8 in a string is written as json.Marshal writes it.
	checkMarshal(t, Event{Extra: map[string]json.RawMessage{"a": json.RawMessage("\"\xff\"")}})
}

// FuzzMarshalEvent checks MarshalEvent against json.Marshal on decoded events, as they are
// and with their raw JSON indented. The seeds are those of FuzzDecodeFast.
func FuzzMarshalEvent(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := DecodeEvent(payload)
		if err != nil {
			return
		}
		checkMarshal(t, e)
		for k, v := range e.Contexts {
			var b bytes.Buffer
			if json.Indent(&b, v, "", " \t") == nil {
				e.Contexts[k] = b.Bytes()
			}
		}
		checkMarshal(t, e)
		e.Normalize()
		checkMarshal(t, e)
	})
}

// FuzzMarshalRaw checks MarshalEvent against json.Marshal on raw JSON set by hand: valid
// or not, compact or not, with characters to escape.
func FuzzMarshalRaw(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : [ 1 , "<b>&" ] } `, "\"\u2028\u2029\"", `"\u2028"`, "[1,\n2]", `{"a":`, `1 2`, ``,
		" ", "\"\xff\"", `"a\"<"`, `nul`, `-0.5e+3`, `{"a":{"b":[true,false,null]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkMarshal(t, Event{Extra: map[string]json.RawMessage{"a": raw}, User: &User{Geo: raw}})
	})
}
