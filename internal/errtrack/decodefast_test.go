package errtrack

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// oddPayloads are forms the lenient path takes and the fast path must either read the
// same or give up on: the forms of TestDecodeEventForms and the corners of encoding/json
// (names matched case-insensitively, repeated names, null, empty lists, escapes).
var oddPayloads = []string{
	`{"exception":{"values":[{"type":"KeyError","value":"'id'","stacktrace":{"frames":[{"function":"handle","module":"app.views","lineno":12,"in_app":true}]}}]}}`,
	`{"exception":{"type":"KeyError","value":"'id'","stacktrace":{"frames":[{"function":"handle"}]}}}`,
	`{"exception":{"values":[null,1,"x",{"type":"E"}]}}`,
	`{"exception":{"values":[null,{"type":"E"},{}]}}`,
	`{"exception":{"values":null,"type":"E"}}`,
	`{"exception":{"values":[],"type":"E"}}`,
	`{"exception":{"values":5,"type":"E"}}`,
	`{"exception":{"type":"E","values":[{"type":"F"}]}}`,
	`{"exception":{"type":5,"values":[{"type":"F"}]}}`,
	`{"exception":"x","threads":3,"breadcrumbs":true}`,
	`{"exception":null,"threads":null,"breadcrumbs":null,"tags":null,"user":null,"request":null,"sdk":null,"stacktrace":null}`,
	`{"exception":[{"type":"E","thread_id":{"a":[1, 2]},"mechanism":null}]}`,
	`{"exception":[{"type":"E","stacktrace":5}]}`,
	`{"exception":[{"type":"E","stacktrace":{"frames":[null,{"function":"f","lineno":"12","colno":"x","in_app":"yes","pre_context":["a",null]}]}}]}`,
	`{"tags":{"region":"eu","retries":3,"beta":true,"none":null,"obj":{ "a" : [1] }}}`,
	`{"tags":[["region","eu"],["retries",3],["lonely"],"x",["a","b","c"],null,[{"k":1},null]]}`,
	`{"tags":"region=eu"}`,
	`{"tags":{"a":"1","a":"2"},"contexts":{"a":1,"a":{"b":2}}}`,
	`{"breadcrumbs":[{"timestamp":1772600767.5,"category":"http","message":"GET /","level":"warn","data":{"status":500}}]}`,
	`{"breadcrumbs":{"values":[{"timestamp":"2026-03-04T05:06:07.5Z","level":"warning","data":null},null,{}],"other":1}}`,
	`{"breadcrumbs":{"values":null}}`,
	`{"breadcrumbs":{"values":[],"values":[{"message":"m"}]}}`,
	`{"breadcrumbs":{"other":[1]}}`,
	`{"breadcrumbs":[{"timestamp":"yesterday","message":"m"},{"timestamp":"\u0032026-03-04T05:06:07Z"}]}`,
	`{"threads":{"values":[{"id":1,"crashed":true,"main":null,"stacktrace":{"frames":[{"function":"f"}]}}]}}`,
	`{"threads":[{"id":"t","name":"main","current":1}]}`,
	`{"message":"disk full"}`,
	`{"message":{"message":"user %s not found","params":["42"],"formatted":"user 42 not found"}}`,
	`{"logentry":{"message":"user %s not found","params":[42]},"message":"user 42 not found"}`,
	`{"logentry":{"message":"m %s","params":"x"},"message":{"formatted":"f"},"sentry.interfaces.Message":"legacy"}`,
	`{"timestamp":"2026-03-04T06:06:07.5+01:00"}`,
	`{"timestamp":1772600767.5,"level":40}`,
	`{"timestamp":"yesterday","level":"WARN"}`,
	`{"timestamp":null,"level":null,"event_id":null,"fingerprint":null,"_cuts":null}`,
	`{"release":5,"environment":"prod","modules":{"a":"1"}}`,
	`{"release":null,"platform":"go","logger":"l","transaction":"t","server_name":"s","dist":"d"}`,
	`{"user":{"id":42,"ip_address":"{{auto}}","geo":null,"data":{"a":1}}}`,
	`{"user":"x","request":[1],"sdk":5,"stacktrace":"s"}`,
	`{"user":{"id":{ "a" : 1 },"name":["x", 2]}}`,
	`{"request":{"url":"https://shop.example/cart","method":"POST","headers":[["Accept","*/*"]],"query_string":{"a":"1"},"data":{"id":1}}}`,
	`{"request":{"headers":null,"cookies":"a=b","env":null,"fragment":7}}`,
	`{"fingerprint":["{{ default }}",503]}`,
	`{"sentry.interfaces.Exception":{"values":[{"type":"E","value":"v"}]},"sentry.interfaces.Message":{"message":"m %s","params":["x"]},"sentry.interfaces.User":{"id":"u"}}`,
	`{"sentry.interfaces.Stacktrace":{"frames":[{"function":"f"}]},"sentry.interfaces.Http":{"url":"u"},"sentry.interfaces.Breadcrumbs":[{"message":"m"}]}`,
	`{"exception":[{"type":"A"}],"sentry.interfaces.Exception":[{"type":"B"}]}`,
	`{"event_id":"01234567-89AB-CDEF-0123-456789ABCDEF"}`,
	`{"event_id":"not-an-id"}`,
	`{"event_id":12}`,
	`{"event_id":"0123456789abcdef0123456789abcdef","_cuts":[{"field":"x","reason":"invalid"},{"field":"y","reason":"truncated","original":3}]}`,
	`{"_cuts":[{"field":1}]}`,
	`{"stacktrace":5}`,
	`{"stacktrace":{"frames":[]}}`,
	`{"stacktrace":{"frames":null,"frames_omitted":[1,2]}}`,
	`{"stacktrace":{"frames_omitted":[1,null],"registers":{"rip":"0x1"}}}`,
	`{"stacktrace":{"frames_omitted":[1,2,3]}}`,
	`{"stacktrace":{"frames_omitted":[1.5,2]}}`,
	`{"stacktrace":{"frames":[{"pre_context":[]},{"post_context":null},{}]}}`,
	`{"stacktrace":{"frames":[{"lineno":-5,"colno":1e2}]}}`,
	`{"stacktrace":{"frames":[{"lineno":99999999999},{"lineno":-0,"colno":2147483648}]}}`,
	`{"stacktrace":{"frames":[{"lineno":123456789012345678901}]}}`,
	`{"stacktrace":{"frames":[{"in_app":null,"vars":null},{"in_app":false,"vars":{"a":"b"}}]}}`,
	`{"stacktrace":{"frames":[{"function":"f","function":"g"}]}}`,
	`{"stacktrace":{"frames":[1]}}`,
	`{"Release":"x","ENVIRONMENT":"y"}`,
	`{"ſdk":{"name":"x"}}`,
	`{"exception":[{"type":"E","stac` + "\u212a" + `trace":{"frames":[{"function":"f"}]}}]}`,
	`{"exception":[{"Type":"E"}]}`,
	`{"stacktrace":{"Frames":[{"function":"f"}]}}`,
	`{"stacktrace":{"frames":[{"Function":"f"}]}}`,
	`{"user":{"Email":"e"},"request":{"URL":"u"},"sdk":{"Name":"n"}}`,
	`{"breadcrumbs":{"Values":[{"message":"m"}]},"threads":[{"Name":"t"}]}`,
	`{"rel\u0065ase":"x","tags":{"k\u0065y":"v"}}`,
	`{"size":3,"Size":4,"unknown":{"deep":[[[{}]]]}}`,
	`{"message":"a\"b\\ \u00e9 \ud83d\ude00 \ud800x \ud800\u0041 \udc00 \t\n\r\b\f\/"}`,
	`{"release":"\ud800\u0041","tags":{"k\n":"v` + "\u2028" + `<&>"}}`,
	`{"modules":{"a":null,"b":"1"}}`,
	`{"modules":{"a":1}}`,
	`{"modules":{},"contexts":{},"extra":null}`,
	`{"contexts":{"os":null,"trace":{"span_id":"x"}},"extra":{"a":[ 1 , 2 ]}}`,
	`{"contexts":[]}`,
	`{"sdk":{"name":"sentry.go","version":1,"integrations":[1,"a",null,{"b":2}],"packages":[{"name":"p"}]}}`,
	`{"sdk":{"integrations":[]}}`,
	`{"sdk":{"integrations":"x"}}`,
	` { "release" : "x" , "tags" : { "a" : 1 } , "exception" : [ { "type" : "E" } ] } `,
	`{"release":"` + "\xff" + `"}`,
	`{"release":"x"} trailing`,
	`{"release":"x",}`,
	`{"release":"x"`,
	`{"extra":{"a":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}}`,
	`{"a":01}`,
	`{}`,
}

// seedPayloads returns what the fast path and MarshalEvent are checked on: the seed corpus
// of FuzzDecodeEvent, richPayload, oddPayloads, and events as sentry-go encodes them.
func seedPayloads(tb testing.TB) [][]byte {
	tb.Helper()
	out := append(corpus(tb, "FuzzDecodeEvent"), []byte(richPayload))
	for _, p := range oddPayloads {
		out = append(out, []byte(p))
	}
	return append(out, sdkPayloads(tb)...)
}

// sdkPayloads are events sentry-go encodes: the end-to-end benchmark's, and those of the
// seed corpus.
func sdkPayloads(tb testing.TB) [][]byte {
	tb.Helper()
	out := [][]byte{ingestEvent(tb)}
	for _, name := range []string{"sentry-go-exception", "sentry-go-message", "sentry-go-panic"} {
		out = append(out, corpusFile(tb, filepath.Join("testdata", "fuzz", "FuzzDecodeEvent", name)))
	}
	return out
}

// corpus reads the seed corpus of a fuzz target: files of one []byte each.
func corpus(tb testing.TB, target string) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("seed corpus of %s: %d files, %v", target, len(files), err)
	}
	var out [][]byte
	for _, file := range files {
		out = append(out, corpusFile(tb, file))
	}
	return out
}

func corpusFile(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		tb.Fatalf("%s is not a corpus file of one []byte", file)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	return []byte(s)
}

// checkFastAgrees fails when the fast path reads payload to another event, or another
// error, than the lenient path. It reports whether the fast path took the payload.
func checkFastAgrees(t *testing.T, payload []byte) bool {
	t.Helper()
	var w wireEvent
	took := firstByte(payload) == '{' && w.decodeFast(payload)
	fast, fastErr := decodeEvent(payload, true)
	lenient, lenientErr := decodeEvent(payload, false)
	if (fastErr != nil) != (lenientErr != nil) {
		t.Fatalf("decodeEvent(%q) errors: fast %v, lenient %v", payload, fastErr, lenientErr)
	}
	if diff := cmp.Diff(lenient, fast); diff != "" {
		t.Fatalf("decodeEvent(%q) (-lenient +fast):\n%s", payload, diff)
	}
	return took
}

func TestDecodeFastAgrees(t *testing.T) {
	for _, p := range seedPayloads(t) {
		checkFastAgrees(t, p)
	}
	// The fast path must take what the SDKs send, or it is no faster.
	for _, p := range append(sdkPayloads(t), []byte(richPayload)) {
		if !checkFastAgrees(t, p) {
			t.Errorf("the fast path gave up on an event sentry-go sent: %.200s", p)
		}
	}
	// And it must give up where encoding/json reads more than it does.
	for _, p := range []string{`{"Release":"x"}`, `{"ſdk":{}}`, `{"release":"a","release":null}`, `{"release":5}`, `{"release":"` + "\xff" + `"}`} {
		var w wireEvent
		if w.decodeFast([]byte(p)) {
			t.Errorf("the fast path took %q", p)
		}
	}
}

// FuzzDecodeFast checks that whenever the fast path takes a payload, it reads it to the
// same Event as the lenient path. The seeds are those of FuzzDecodeEvent, oddPayloads
// and events sentry-go encodes.
func FuzzDecodeFast(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkFastAgrees(t, payload)
	})
}

// FuzzUnquote checks that strings with escapes read as encoding/json reads them.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a\"b\\\/\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"\ud800\ud800\udc00"`, `"é` + "\u2028" + `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		r := reader{b: s}
		if r.peek() != '"' {
			return
		}
		got := r.str()
		r.end()
		var want string
		wantErr := json.Unmarshal(s, &want)
		if r.failed {
			if wantErr == nil && utf8.Valid(s) {
				t.Fatalf("reader refused %q, encoding/json reads it as %q", s, want)
			}
			return
		}
		if wantErr != nil || got != want {
			t.Fatalf("reader read %q as %q, encoding/json as %q (%v)", s, got, want, wantErr)
		}
	})
}

// richPayload has every field DecodeEvent reads, in the common forms.
const richPayload = `{"event_id":"0123456789abcdef0123456789abcdef","timestamp":1772600767.25,"platform":"python",
	"level":"warning","logger":"app","transaction":"/cart","server_name":"web-1","release":"shop@3f2a9c1","dist":"1",
	"environment":"prod","logentry":{"message":"user %s not found","params":["42"]},"message":"m",
	"exception":{"values":[{"type":"KeyError","value":"'id'","module":"builtins","thread_id":1,"mechanism":{"type":"generic"},
		"stacktrace":{"frames":[{"filename":"app/views.py","abs_path":"/srv/app/views.py","function":"cart","raw_function":"r",
		"module":"app.views","package":"p","platform":"python","lineno":12,"colno":3,"in_app":true,"context_line":"x = d['id']",
		"pre_context":["a"],"post_context":["b"],"vars":{"d":"{}"},"instruction_addr":"0x1","symbol":"s"}],
		"frames_omitted":[1,2],"registers":{"rip":"0x1"}}}]},
	"stacktrace":{"frames":[{"function":"f"}]},
	"threads":{"values":[{"id":"1","name":"main","crashed":true,"current":true,"main":true,"stacktrace":{"frames":[{"function":"g"}]}}]},
	"tags":{"region":"eu","n":1},
	"breadcrumbs":{"values":[{"timestamp":"2026-03-04T05:06:07Z","type":"http","category":"httplib","level":"info","message":"GET","data":{"a":1}}]},
	"user":{"id":"42","email":"a@example.com","ip_address":"10.0.0.1","username":"ann","name":"Ann","segment":"s","geo":{"city":"Berlin"},"data":{}},
	"request":{"url":"https://shop.example/cart","method":"GET","headers":[["Accept","*/*"]],"query_string":"a=1","cookies":"a=b",
		"data":{"x":1},"env":{"REMOTE_ADDR":"10.0.0.2"},"fragment":"f"},
	"contexts":{"os":{"name":"Linux"}},"extra":{"order":{"id":7}},"fingerprint":["{{ default }}","eu"],
	"modules":{"django":"5.0"},"sdk":{"name":"sentry.python","version":"2.0.0","integrations":["django"],"packages":[{"name":"p"}]},
	"_cuts":[{"field":"x","reason":"dropped","original":3}],
	"sentry.interfaces.Exception":[{"type":"L"}],"sentry.interfaces.Message":"lm","sentry.interfaces.Stacktrace":{"frames":[]},
	"sentry.interfaces.User":{"id":"u"},"sentry.interfaces.Http":{"url":"u"},"sentry.interfaces.Breadcrumbs":[{"message":"b"}]}`

// TestDecodeFastMutations checks the fast path against the lenient one on every variant of
// a few payloads with one value replaced by a value of another kind, or one member name
// written in other case, or repeated.
func TestDecodeFastMutations(t *testing.T) {
	others := []string{`null`, `0`, `-1`, `1.5`, `1e2`, `"x"`, `"12"`, `"\u00e9\n"`, `true`, `{}`, `[]`, `[null]`,
		`["a",1]`, `{"values":[]}`, `{"values":null}`, `[[]]`, `[{}]`}
	payloads := [][]byte{[]byte(richPayload), corpusFile(t, filepath.Join("testdata", "fuzz", "FuzzDecodeEvent", "sentry-go-exception"))}
	variants, took := 0, 0
	for _, p := range payloads {
		var values, names [][2]int
		r := reader{b: p}
		walk(&r, &values, &names)
		if r.failed {
			t.Fatalf("walk failed on %s", p)
		}
		check := func(parts ...[]byte) {
			variants++
			if checkFastAgrees(t, bytes.Join(parts, nil)) {
				took++
			}
		}
		for _, v := range values {
			for _, o := range others {
				check(p[:v[0]], []byte(o), p[v[1]:])
			}
		}
		for _, n := range names {
			name := p[n[0]:n[1]]
			check(p[:n[0]], bytes.ToUpper(name), p[n[1]:])
			check(p[:n[0]], name, []byte(`:null,`), p[n[0]:])
			check(p[:n[0]], name, []byte(`:{"x":1},`), p[n[0]:])
		}
	}
	t.Logf("%d variants, %d read by the fast path", variants, took)
}

// walk records where each value and each member name of the JSON value at r starts and
// ends.
func walk(r *reader, values, names *[][2]int) {
	c := r.peek()
	start := r.i
	switch c {
	case '{', '[':
		r.i++
		for n := 0; ; n++ {
			if c == '{' {
				r.peek()
				at := r.i
				if n > 0 && r.b[at] == ',' {
					at++
					for r.b[at] == ' ' || r.b[at] == '\t' || r.b[at] == '\n' {
						at++
					}
				}
				if _, ok := r.member(n); !ok {
					break
				}
				end := bytes.IndexByte(r.b[at:], ':') + at
				*names = append(*names, [2]int{at, bytes.LastIndexByte(r.b[:end], '"') + 1})
			} else if !r.element(n) {
				break
			}
			walk(r, values, names)
		}
	default:
		r.skip()
	}
	*values = append(*values, [2]int{start, r.i})
}

// TestDecodeEventCopies checks that an Event shares no memory with its payload, which the
// caller may reuse: overwriting the payload after DecodeEvent changes nothing.
func TestDecodeEventCopies(t *testing.T) {
	for _, p := range append(sdkPayloads(t), []byte(richPayload)) {
		payload := bytes.Clone(p)
		e, err := DecodeEvent(payload)
		if err != nil {
			t.Fatal(err)
		}
		before, err := MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		for i := range payload {
			payload[i] = 'x'
		}
		after, err := MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("the event changed with its payload:\n%s\n%s", before, after)
		}
	}
}
