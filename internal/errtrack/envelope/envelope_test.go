package envelope_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

// The envelopes here are hand-built: each exercises one rule of the format
// (https://develop.sentry.dev/sdk/data-model/envelopes/). What the SDK really sends is
// tested in sdk_test.go.

const header = `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://e12d836b15bb49d7bbf99e64295d995b@sentry.io/42"}`

// item is the part of an Item the tests compare.
type item struct {
	Type, ContentType, Filename, Payload string
}

func items(env envelope.Envelope) []item {
	var out []item
	for _, it := range env.Items {
		out = append(out, item{it.Type, it.ContentType, it.Filename, string(it.Payload)})
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []item
	}{
		{
			name: "the example of the envelope docs",
			body: header + "\n" +
				`{"type":"event","length":41,"content_type":"application/json"}` + "\n" +
				`{"message":"hello world","level":"error"}` + "\n" +
				`{"type":"attachment","length":10,"content_type":"text/plain","filename":"application.log"}` + "\n" +
				"\xef\xbb\xbfHello\r\n" + "\n",
			want: []item{
				{"event", "application/json", "", `{"message":"hello world","level":"error"}`},
				{"attachment", "text/plain", "application.log", "\xef\xbb\xbfHello\r\n"},
			},
		},
		{
			name: "implicit lengths",
			body: header + "\n" + `{"type":"event"}` + "\n" + `{"message":"a"}` + "\n" + `{"type":"session"}` + "\n" + `{"sid":"x"}`,
			want: []item{{Type: "event", Payload: `{"message":"a"}`}, {Type: "session", Payload: `{"sid":"x"}`}},
		},
		{
			name: "binary payload with newlines, length given",
			body: header + "\n" + `{"type":"attachment","length":6}` + "\n" + "a\nb\x00\nc" + "\n",
			want: []item{{Type: "attachment", Payload: "a\nb\x00\nc"}},
		},
		{
			name: "last payload without its newline",
			body: header + "\n" + `{"type":"attachment","length":3}` + "\n" + "abc",
			want: []item{{Type: "attachment", Payload: "abc"}},
		},
		{
			name: "empty payloads",
			body: header + "\n" + `{"type":"attachment","length":0}` + "\n\n" + `{"type":"attachment","length":0}` + "\n",
			want: []item{{Type: "attachment"}, {Type: "attachment"}},
		},
		{
			name: "item header at the end of the body",
			body: header + "\n" + `{"type":"client_report","length":0}`,
			want: []item{{Type: "client_report"}},
		},
		{
			name: "header only",
			body: header,
		},
		{
			name: "blank lines before the header",
			body: "\r\n\n " + header + " \n" + `{"type":"event"}` + "\n{}",
			want: []item{{Type: "event", Payload: "{}"}},
		},
		{
			name: "header only with a newline",
			body: header + "\n",
		},
		{
			name: "blank lines and CRLF between items",
			body: header + "\r\n\r\n" + `{"type":"event","length":2}` + "\r\n" + "{}" + "\n\n\n" + `{"type":"check_in"}` + "\n" + `{"status":"ok"}` + "\n\n",
			want: []item{{Type: "event", Payload: "{}"}, {Type: "check_in", Payload: `{"status":"ok"}`}},
		},
		{
			name: "every item type is kept, unknown ones too",
			body: header + "\n" +
				`{"type":"transaction"}` + "\n" + `{"type":"transaction"}` + "\n" +
				`{"type":"sessions"}` + "\n" + `{"aggregates":[]}` + "\n" +
				`{"type":"statsd","length":6}` + "\n" + "a:1|c\n" + "\n" +
				`{"type":"profile"}` + "\n" + `{}` + "\n" +
				`{"type":"replay_event"}` + "\n" + `{}` + "\n" +
				`{"type":"something_new_in_2030","extra":{"a":[1,2]}}` + "\n" + `whatever` + "\n",
			want: []item{
				{Type: "transaction", Payload: `{"type":"transaction"}`},
				{Type: "sessions", Payload: `{"aggregates":[]}`},
				{Type: "statsd", Payload: "a:1|c\n"},
				{Type: "profile", Payload: "{}"},
				{Type: "replay_event", Payload: "{}"},
				{Type: "something_new_in_2030", Payload: "whatever"},
			},
		},
		{
			name: "an attachment over the event limit is fine",
			body: header + "\n" + fmt.Sprintf(`{"type":"attachment","length":%d}`, envelope.DefaultMaxEvent+1) + "\n" + strings.Repeat("x", envelope.DefaultMaxEvent+1),
			want: []item{{Type: "attachment", Payload: strings.Repeat("x", envelope.DefaultMaxEvent+1)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := envelope.Parse([]byte(tt.body), envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if env.Header.EventID != "9ec79c33ec9942ab8353589fcb2e04dc" {
				t.Errorf("event ID = %q", env.Header.EventID)
			}
			if diff := cmp.Diff(tt.want, items(env)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name string
		line string
		want envelope.Header
	}{
		{
			name: "all fields",
			line: `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://k@h/1","sent_at":"2026-01-02T03:04:05.678Z","sdk":{"name":"sentry.python","version":"2.1.0","packages":[]},"trace":{"trace_id":"x"}}`,
			want: envelope.Header{
				EventID: "9ec79c33ec9942ab8353589fcb2e04dc",
				DSN:     "https://k@h/1",
				SentAt:  time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC),
				SDK:     envelope.SDK{Name: "sentry.python", Version: "2.1.0"},
			},
		},
		{
			name: "event ID as a dashed upper-case UUID",
			line: `{"event_id":"9EC79C33-EC99-42AB-8353-589FCB2E04DC"}`,
			want: envelope.Header{EventID: "9ec79c33ec9942ab8353589fcb2e04dc"},
		},
		{
			name: "nothing",
			line: `{}`,
		},
		{
			name: "advisory fields of the wrong type are ignored",
			line: `{"event_id":null,"sent_at":"yesterday","sdk":"sentry.go"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := envelope.Parse([]byte(tt.line+"\n"), envelope.DefaultLimits())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Raw = []byte(tt.line)
			if diff := cmp.Diff(tt.want, env.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBadInput(t *testing.T) {
	event := func(payload string) string {
		return header + "\n" + `{"type":"event"}` + "\n" + payload + "\n"
	}
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	tests := []struct {
		name     string
		body     string
		limits   envelope.Limits
		wantErr  error
		wantItem *envelope.ItemError // nil when the error is not about one item
	}{
		{name: "empty", body: "", wantErr: envelope.ErrMalformed},
		{name: "blank", body: "\n\n", wantErr: envelope.ErrMalformed},
		{name: "header not JSON", body: "hello\n", wantErr: envelope.ErrMalformed},
		{name: "header an array", body: "[]\n", wantErr: envelope.ErrMalformed},
		{name: "header null", body: "null\n", wantErr: envelope.ErrMalformed},
		{name: "header broken JSON", body: `{"event_id":` + "\n", wantErr: envelope.ErrMalformed},
		{name: "header with trailing garbage", body: `{} {}` + "\n", wantErr: envelope.ErrMalformed},
		{name: "event_id not hex", body: `{"event_id":"not-an-id"}`, wantErr: envelope.ErrMalformed},
		{name: "event_id a number", body: `{"event_id":42}`, wantErr: envelope.ErrMalformed},
		{name: "event_id in braces", body: `{"event_id":"{9ec79c33-ec99-42ab-8353-589fcb2e04dc}"}`, wantErr: envelope.ErrMalformed},
		{name: "dsn a number", body: `{"dsn":42}`, wantErr: envelope.ErrMalformed},
		{
			name: "item header not JSON", body: header + "\nhello\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0},
		},
		{
			name: "item header without type", body: header + "\n" + `{"length":2}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0},
		},
		{
			name: "item type not a string", body: header + "\n" + `{"type":1}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0},
		},
		{
			name: "length not an integer", body: header + "\n" + `{"type":"event","length":2.5}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0},
		},
		{
			name: "length negative", body: header + "\n" + `{"type":"attachment","length":-1}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "attachment"},
		},
		{
			name: "length past the end", body: header + "\n" + `{"type":"event","length":100}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "length huge", body: header + "\n" + `{"type":"event","length":9223372036854775807}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "length short: the payload goes on", body: header + "\n" + `{"type":"event","length":5}` + "\n" + `{"a":1}` + "\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "length lies on the second item", body: header + "\n" + `{"type":"session"}` + "\n{}\n" + `{"type":"attachment","length":1}` + "\nabc\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 1, Type: "attachment"},
		},
		{
			name: "event over 1 MiB", body: event(`{"m":"` + strings.Repeat("x", envelope.DefaultMaxEvent) + `"}`),
			wantErr: envelope.ErrTooLarge, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "transaction over 1 MiB", body: header + "\n" + `{"type":"transaction"}` + "\n" + `{"m":"` + strings.Repeat("x", envelope.DefaultMaxEvent) + `"}`,
			wantErr: envelope.ErrTooLarge, wantItem: &envelope.ItemError{Index: 0, Type: "transaction"},
		},
		{
			name: "event over a lower limit", body: event(`{"message":"0123456789"}`), limits: envelope.Limits{MaxEvent: 10},
			wantErr: envelope.ErrTooLarge, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "event nested 10,000 deep", body: event(deep),
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "event with invalid UTF-8", body: event(`{"message":"caf` + "\xe9" + `"}`),
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "event an array", body: event(`[{"message":"a"}]`),
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "event broken JSON", body: event(`{"message":"a"`),
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 0, Type: "event"},
		},
		{
			name: "two events", body: event(`{}`) + `{"type":"event"}` + "\n{}\n",
			wantErr: envelope.ErrMalformed, wantItem: &envelope.ItemError{Index: 1, Type: "event"},
		},
		{
			name: "too many items", body: header + "\n" + strings.Repeat(`{"type":"x","length":0}`+"\n\n", 4),
			limits: envelope.Limits{MaxItems: 3}, wantErr: envelope.ErrTooLarge,
		},
		{
			name: "body over the decompressed limit", body: header + "\n" + strings.Repeat(" ", 100),
			limits: envelope.Limits{MaxDecompressed: 100}, wantErr: envelope.ErrTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := envelope.Parse([]byte(tt.body), tt.limits)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			var ie *envelope.ItemError
			isItem := errors.As(err, &ie)
			if tt.wantItem == nil {
				if isItem {
					t.Fatalf("Parse error = %v, want no ItemError", err)
				}
				return
			}
			if !isItem {
				t.Fatalf("Parse error = %v, want an ItemError", err)
			}
			if ie.Index != tt.wantItem.Index || ie.Type != tt.wantItem.Type {
				t.Errorf("ItemError names item %d (%q), want %d (%q)", ie.Index, ie.Type, tt.wantItem.Index, tt.wantItem.Type)
			}
			// The header is still there, to log the event ID.
			if env.Header.EventID != "9ec79c33ec9942ab8353589fcb2e04dc" {
				t.Errorf("envelope header lost: %+v", env.Header)
			}
		})
	}
}

// An oversized event is reported as Sentry reports it: 413 for the whole envelope, and
// the caller can see it was the event.
func TestParseOversizedEventMessage(t *testing.T) {
	body := header + "\n" + `{"type":"session"}` + "\n{}\n" + `{"type":"event"}` + "\n" + `{"m":"` + strings.Repeat("x", envelope.DefaultMaxEvent) + `"}`
	_, err := envelope.Parse([]byte(body), envelope.DefaultLimits())
	want := fmt.Sprintf("envelope item 1 (event): payload too large: event is %d bytes, over the %d-byte limit", envelope.DefaultMaxEvent+8, envelope.DefaultMaxEvent)
	if err == nil || err.Error() != want {
		t.Fatalf("Parse error = %v, want %q", err, want)
	}
}

func TestParseStore(t *testing.T) {
	const event = `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"hello"}`
	tests := []struct {
		name    string
		body    []byte
		limits  envelope.Limits
		want    string
		wantErr error
	}{
		{name: "JSON", body: []byte(event), want: event},
		{name: "JSON with whitespace", body: []byte("\n  " + event + "\n"), want: event},
		{name: "base64 of zlib", body: legacyEncode(t, []byte(event)), want: event},
		{name: "base64 of zlib, wrapped at 76 columns", body: wrap76(legacyEncode(t, []byte(event))), want: event},
		{name: "base64 of JSON", body: b64(event), want: event},
		{name: "base64 without padding", body: bytes.TrimRight(b64(event+" "), "="), want: event},
		{name: "empty", body: nil, wantErr: envelope.ErrMalformed},
		{name: "not base64", body: []byte("hello, world"), wantErr: envelope.ErrMalformed},
		{name: "base64 of neither JSON nor zlib", body: b64("hello, world"), wantErr: envelope.ErrMalformed},
		{name: "base64 of truncated zlib", body: b64(string(zlibBytes(t, []byte(event))[:20])), wantErr: envelope.ErrMalformed},
		{name: "JSON array", body: []byte(`[` + event + `]`), wantErr: envelope.ErrMalformed},
		{name: "invalid UTF-8", body: []byte(`{"message":"\xff"}`), wantErr: envelope.ErrMalformed},
		{name: "deep", body: []byte(strings.Repeat(`{"a":`, 10000)), wantErr: envelope.ErrMalformed},
		{name: "over the event limit", body: []byte(event), limits: envelope.Limits{MaxEvent: 20}, wantErr: envelope.ErrTooLarge},
		{
			name: "zlib bomb", body: []byte(base64Std(zlibBytes(t, []byte(`{"m":"`+strings.Repeat("x", 8<<20)+`"}`)))),
			wantErr: envelope.ErrTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := envelope.ParseStore(tt.body, tt.limits)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseStore error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("ParseStore = %q, want %q", got, tt.want)
			}
		})
	}
}

func b64(s string) []byte { return []byte(base64Std([]byte(s))) }

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func wrap76(b []byte) []byte {
	var out []byte
	for len(b) > 76 {
		out = append(append(out, b[:76]...), '\r', '\n')
		b = b[76:]
	}
	return append(out, b...)
}
