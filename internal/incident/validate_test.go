package incident

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// badFields lists the fields of every *FieldError joined in err.
func badFields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	many := func(n int) []string {
		l := make([]string, n)
		for i := range l {
			l[i] = "t"
		}
		return l
	}
	nested := map[string]any{}
	deep := nested
	for range MaxAttributesDepth + 1 {
		next := map[string]any{}
		deep["n"] = next
		deep = next
	}
	tests := []struct {
		name string
		mod  func(*Alert)
		want []string // the fields reported, in order
	}{
		{"valid", func(*Alert) {}, nil},
		{"valid at the bounds", func(a *Alert) {
			a.Resource, a.Text, a.Value, a.RawData = long(MaxNameLen), long(MaxTextLen), long(MaxValueLen), long(MaxRawDataLen)
			a.Tags, a.Timeout = many(MaxListLen), MaxTimeout
		}, nil},
		{"valid with any status", func(a *Alert) { a.Status = StatusBlackout }, nil},
		{"valid with json numbers", func(a *Alert) { a.Attributes = map[string]any{"n": json.Number("12345678901234567890")} }, nil},
		{"required fields", func(a *Alert) { a.Resource, a.Event, a.Environment, a.Severity = "", " ", "", "" },
			[]string{"resource", "event", "environment", "severity"}},
		{"unknown severity", func(a *Alert) { a.Severity = "Critical" }, []string{"severity"}},
		{"unknown status", func(a *Alert) { a.Status = "notValid" }, []string{"status"}},
		{"resource too long", func(a *Alert) { a.Resource = long(MaxNameLen + 1) }, []string{"resource"}},
		{"text too long", func(a *Alert) { a.Text = long(MaxTextLen + 1) }, []string{"text"}},
		{"value too long", func(a *Alert) { a.Value = long(MaxValueLen + 1) }, []string{"value"}},
		{"rawData too long", func(a *Alert) { a.RawData = long(MaxRawDataLen + 1) }, []string{"rawData"}},
		{"NUL in event", func(a *Alert) { a.Event = "a\x00b" }, []string{"event"}},
		{"invalid UTF-8 in group", func(a *Alert) { a.Group = "\xff" }, []string{"group"}},
		{"NUL in customer", func(a *Alert) { a.Customer = "\x00" }, []string{"customer"}},
		{"too many tags", func(a *Alert) { a.Tags = many(MaxListLen + 1) }, []string{"tags"}},
		{"bad tag", func(a *Alert) { a.Tags = []string{"ok", "b\x00d"} }, []string{"tags[1]"}},
		{"bad service", func(a *Alert) { a.Service = []string{long(MaxNameLen + 1)} }, []string{"service[0]"}},
		{"bad correlate", func(a *Alert) { a.Correlate = []string{"\xfe"} }, []string{"correlate[0]"}},
		{"negative timeout", func(a *Alert) { a.Timeout = -1 }, []string{"timeout"}},
		{"huge timeout", func(a *Alert) { a.Timeout = MaxTimeout + 1 }, []string{"timeout"}},
		{"negative duplicateCount", func(a *Alert) { a.DuplicateCount = -1 }, []string{"duplicateCount"}},
		{"too many attributes", func(a *Alert) {
			a.Attributes = map[string]any{}
			for i := range MaxAttributes + 1 {
				a.Attributes[long(i+1)] = 1
			}
		}, []string{"attributes"}},
		{"empty attribute name", func(a *Alert) { a.Attributes = map[string]any{"": "x"} }, []string{"attributes"}},
		{"NUL in attribute name", func(a *Alert) { a.Attributes = map[string]any{"a\x00": "x"} }, []string{"attributes"}},
		{"NUL in nested attribute", func(a *Alert) {
			a.Attributes = map[string]any{"a": []any{map[string]any{"b": "\x00"}}}
		}, []string{"attributes.a"}},
		{"attributes too large", func(a *Alert) {
			a.Attributes = map[string]any{"a": long(MaxAttributesSize / 2), "b": long(MaxAttributesSize / 2)}
		}, []string{"attributes"}},
		{"number too large for a float64", func(a *Alert) { a.Attributes = map[string]any{"n": json.Number("1e400")} }, []string{"attributes.n"}},
		{"not a JSON number", func(a *Alert) { a.Attributes = map[string]any{"n": []any{math.Inf(1)}} }, []string{"attributes.n"}},
		{"attributes too deep", func(a *Alert) { a.Attributes = nested }, []string{"attributes.n"}},
		{"several at once", func(a *Alert) { a.Resource, a.Timeout, a.Tags = "", -5, []string{"\x00"} },
			[]string{"resource", "tags[0]", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := incoming(tt.mod)
			err := a.Validate()
			if diff := cmp.Diff(tt.want, badFields(err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}
