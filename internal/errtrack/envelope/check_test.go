package envelope_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

func TestCheckEvent(t *testing.T) {
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	tests := []struct {
		name     string
		payload  string
		maxDepth int
		wantErr  bool
	}{
		{name: "empty object", payload: `{}`},
		{name: "whitespace around", payload: " \r\n\t{\"a\":[1,true,null,\"x\"]}\n "},
		{name: "unicode and escapes", payload: `{"m":"caf\u00e9 ☕ \"quoted\" \\ back\\slash [{","n":-1.5e3}`},
		{name: "brackets inside strings do not count", payload: `{"m":"` + strings.Repeat("[{", 100) + `"}`, maxDepth: 2},
		{name: "escaped quote does not end a string", payload: `{"m":"\"[[[[\\\"{{{{"}`, maxDepth: 1},
		{name: "depth exactly the limit", payload: `{"a":` + nest("[", "]", 63) + `}`},
		{name: "depth one past the limit", payload: `{"a":` + nest("[", "]", 64) + `}`, wantErr: true},
		{name: "a lower limit", payload: `{"a":{"b":{}}}`, maxDepth: 2, wantErr: true},
		{name: "objects 10,000 deep", payload: strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), wantErr: true},
		{name: "arrays 10,000 deep", payload: `{"a":` + nest("[", "]", 10000) + `}`, wantErr: true},
		{name: "unclosed 10,000 deep", payload: strings.Repeat(`{"a":[`, 5000), wantErr: true},
		{name: "invalid UTF-8 in a string", payload: `{"m":"caf` + "\xe9" + `"}`, wantErr: true},
		{name: "invalid UTF-8 in a key", payload: `{"` + "\xc3\x28" + `":1}`, wantErr: true},
		{name: "overlong encoding", payload: `{"m":"` + "\xc0\xaf" + `"}`, wantErr: true},
		{name: "surrogate half encoded as UTF-8", payload: `{"m":"` + "\xed\xa0\x80" + `"}`, wantErr: true},
		{name: "truncated sequence at the end", payload: `{}` + "\xe2\x82", wantErr: true},
		{name: "empty", payload: ``, wantErr: true},
		{name: "only whitespace", payload: " \n", wantErr: true},
		{name: "array", payload: `[]`, wantErr: true},
		{name: "string", payload: `"{}"`, wantErr: true},
		{name: "null", payload: `null`, wantErr: true},
		{name: "two objects", payload: `{}{}`, wantErr: true},
		{name: "trailing garbage", payload: `{} x`, wantErr: true},
		{name: "unclosed", payload: `{"a":1`, wantErr: true},
		{name: "unclosed string", payload: `{"a":"1}`, wantErr: true},
		{name: "single quotes", payload: `{'a':1}`, wantErr: true},
		{name: "trailing comma", payload: `{"a":1,}`, wantErr: true},
		{name: "more closers than openers", payload: `{}]]]]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := envelope.CheckEvent([]byte(tt.payload), tt.maxDepth)
			if tt.wantErr != (err != nil) {
				t.Fatalf("CheckEvent error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("CheckEvent error = %v, want ErrMalformed", err)
			}
		})
	}
}

// The error says what is wrong and where, for the client to read.
func TestCheckEventMessages(t *testing.T) {
	tests := []struct {
		payload string
		want    string
	}{
		{`{"a":` + strings.Repeat("[", 10000), "malformed payload: event nests objects and arrays deeper than 64 levels (at byte 68)"},
		{`{"m":"caf` + "\xe9" + `"}`, "malformed payload: event has invalid UTF-8 at byte 9"},
		{`[]`, "malformed payload: event is not a JSON object"},
		{`{"a":1,}`, "malformed payload: event is not valid JSON at byte 8: invalid character '}' looking for beginning of object key string"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := envelope.CheckEvent([]byte(tt.payload), 0)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("CheckEvent error = %v, want %q", err, tt.want)
			}
		})
	}
}

// benchEvent is an event the size the benchmark names: a stack trace of 30
// frames, about 7 KB.
func benchEvent() []byte {
	var b strings.Builder
	b.WriteString(`{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","level":"error","platform":"go",` +
		`"exception":[{"type":"*errors.errorString","value":"charge order 17: card declined","stacktrace":{"frames":[`)
	for i := range 30 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"function":"Func%d","module":"github.com/acme/shop/pay","abs_path":"/src/pay/f%d.go",`+
			`"lineno":%d,"in_app":true,"pre_context":["a","b"],"context_line":"x := y()","post_context":["c"]}`, i, i, 10*i)
	}
	b.WriteString(`]}}],"tags":{"region":"eu"},"contexts":{"os":{"name":"linux"}},"release":"shop@1a2b3c4"}`)
	return []byte(b.String())
}

func BenchmarkCheckEvent(b *testing.B) {
	p := benchEvent()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := envelope.CheckEvent(p, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// benchEnvelope is an envelope as sentry-go sends it, around benchEvent.
func benchEnvelope() []byte {
	ev := benchEvent()
	return fmt.Appendf(nil, "%s\n{\"type\":\"event\",\"length\":%d}\n%s\n", header, len(ev), ev)
}

func BenchmarkParse(b *testing.B) {
	body := benchEnvelope()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.Parse(body, envelope.DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBodyGzip(b *testing.B) {
	raw := benchEnvelope()
	gz := gzipBytes(b, raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.Body(bodyRequest(bytes.NewReader(gz), "gzip"), envelope.DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}
