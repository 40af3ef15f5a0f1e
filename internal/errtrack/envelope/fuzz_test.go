package envelope_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

// The seed corpora in testdata/fuzz hold envelopes the real sentry-go SDK sent
// (exception, message), compressed bodies in every encoding, and the bad inputs of the
// table tests; f.Add adds a few more.

// fuzzLimits are small, so the fuzzer reaches every limit with small inputs.
var fuzzLimits = envelope.Limits{MaxCompressed: 8 << 10, MaxDecompressed: 16 << 10, MaxEvent: 4 << 10, MaxItems: 16, MaxDepth: 8}

func FuzzParse(f *testing.F) {
	f.Add([]byte(header + "\n" + `{"type":"event","length":2}` + "\n{}\n"))
	f.Add([]byte(header + "\n" + `{"type":"attachment"}` + "\n" + `abc` + "\n" + `{"type":"event"}` + "\n{\"a\":[[]]}"))
	f.Add([]byte(`{}` + "\n" + `{"type":"x","length":0}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := envelope.Parse(body, fuzzLimits)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) && !errors.Is(err, envelope.ErrTooLarge) {
				t.Fatalf("Parse error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		if len(env.Items) > fuzzLimits.MaxItems {
			t.Fatalf("%d items, over the limit of %d", len(env.Items), fuzzLimits.MaxItems)
		}
		events := 0
		for i, it := range env.Items {
			if it.Type == "" {
				t.Fatalf("item %d has no type", i)
			}
			if !within(body, it.Payload) || !within(body, it.Header) {
				t.Fatalf("item %d is not a part of the body", i)
			}
			if it.IsEvent() {
				events++
				if int64(len(it.Payload)) > fuzzLimits.MaxEvent {
					t.Fatalf("event of %d bytes accepted", len(it.Payload))
				}
				if err := envelope.CheckEvent(it.Payload, fuzzLimits.MaxDepth); err != nil {
					t.Fatalf("event accepted that CheckEvent rejects: %v", err)
				}
			}
		}
		if events > 1 {
			t.Fatalf("%d events accepted", events)
		}

		// Written back out with explicit lengths, the envelope parses to the same items.
		var out bytes.Buffer
		out.Write(env.Header.Raw)
		out.WriteByte('\n')
		for _, it := range env.Items {
			h, err := json.Marshal(map[string]any{"type": it.Type, "length": len(it.Payload)})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "%s\n%s\n", h, it.Payload)
		}
		again, err := envelope.Parse(out.Bytes(), envelope.Limits{MaxEvent: fuzzLimits.MaxEvent, MaxItems: fuzzLimits.MaxItems, MaxDepth: fuzzLimits.MaxDepth})
		if err != nil {
			t.Fatalf("re-encoded envelope does not parse: %v\n%q", err, out.Bytes())
		}
		if len(again.Items) != len(env.Items) {
			t.Fatalf("re-encoded envelope has %d items, want %d", len(again.Items), len(env.Items))
		}
		for i := range env.Items {
			if again.Items[i].Type != env.Items[i].Type || !bytes.Equal(again.Items[i].Payload, env.Items[i].Payload) {
				t.Fatalf("item %d changed on re-encoding", i)
			}
		}
	})
}

// within reports whether part is a sub-slice of whole, not a copy.
func within(whole, part []byte) bool {
	if len(part) == 0 {
		return true
	}
	for i := range whole {
		if &whole[i] == &part[0] {
			return len(whole)-i >= len(part)
		}
	}
	return false
}

// FuzzBody feeds Body bytes labelled with each encoding (mostly garbage to the
// decoders) and, when asked, the same bytes really encoded, which must come back whole.
func FuzzBody(f *testing.F) {
	f.Add(uint8(0), false, []byte(header))
	f.Add(uint8(1), true, []byte(header))
	f.Add(uint8(4), true, bytes.Repeat([]byte("a"), 17<<10))
	f.Add(uint8(5), false, []byte{0x78, 0x9c, 0x03, 0x00})
	f.Fuzz(func(t *testing.T, which uint8, encode bool, data []byte) {
		enc := encodings[int(which)%len(encodings)]
		body := data
		if encode {
			body = enc.encode(t, data)
		}
		got, err := envelope.Body(bodyRequest(bytes.NewReader(body), enc.header), fuzzLimits)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) && !errors.Is(err, envelope.ErrTooLarge) {
				t.Fatalf("Body error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			if encode && len(data) <= int(fuzzLimits.MaxDecompressed) && len(body) <= int(fuzzLimits.MaxCompressed) {
				t.Fatalf("Body refused a %d-byte %s body within the limits: %v", len(body), enc.name, err)
			}
			return
		}
		if int64(len(got)) > fuzzLimits.MaxDecompressed || int64(cap(got)) > fuzzLimits.MaxDecompressed+1 {
			t.Fatalf("Body returned %d bytes (capacity %d), over the limit of %d", len(got), cap(got), fuzzLimits.MaxDecompressed)
		}
		if (encode || enc.name == "identity") && !bytes.Equal(got, data) {
			t.Fatalf("Body returned %d bytes, want the %d encoded", len(got), len(data))
		}
	})
}

// FuzzCheckEvent checks CheckEvent against encoding/json: what it accepts, json.Unmarshal
// decodes to an object.
func FuzzCheckEvent(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"c\"]"}]}`))
	f.Add(benchEvent())
	f.Add([]byte(`{"m":"` + "\xff" + `"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		err := envelope.CheckEvent(payload, 8)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("CheckEvent error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !utf8.Valid(payload) {
			t.Fatal("CheckEvent accepted invalid UTF-8")
		}
		var obj map[string]any
		if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
			t.Fatalf("CheckEvent accepted what json.Unmarshal rejects as an object: %v", err)
		}
		if d := depth(obj); d > 8 {
			t.Fatalf("CheckEvent accepted depth %d", d)
		}
	})
}

// depth returns the nesting depth of a decoded JSON value (shallow in this test).
func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}
