package envelope_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/ferrycd/ferry/internal/errtrack/envelope"
)

// Limits at their extremes neither overflow nor refuse an ordinary body.
func TestLimitsExtremes(t *testing.T) {
	body := []byte(header + "\n" + `{"type":"event"}` + "\n{}\n")
	for _, l := range []envelope.Limits{
		{},
		{MaxCompressed: -1, MaxDecompressed: -1, MaxEvent: -1, MaxItems: -1, MaxDepth: -1},
		{MaxCompressed: math.MaxInt64, MaxDecompressed: math.MaxInt64, MaxEvent: math.MaxInt64, MaxItems: math.MaxInt, MaxDepth: math.MaxInt},
	} {
		for _, enc := range encodings {
			got, err := envelope.Body(bodyRequest(bytes.NewReader(enc.encode(t, body)), enc.header), l)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("Body with %+v, %s: %v", l, enc.name, err)
			}
		}
		if _, err := envelope.Parse(body, l); err != nil {
			t.Fatalf("Parse with %+v: %v", l, err)
		}
		if _, err := envelope.ParseStore([]byte(`{}`), l); err != nil {
			t.Fatalf("ParseStore with %+v: %v", l, err)
		}
	}
}
