package envelope

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// slowAccepts is what CheckEvent accepted before validEvent: the three separate checks.
func slowAccepts(p []byte, maxDepth int) bool {
	i := skipSpace(p, 0)
	return utf8.Valid(p) && i < len(p) && p[i] == '{' && tooDeepAt(p[i:], maxDepth) < 0 && json.Valid(p)
}

// FuzzValidEvent checks that the one-pass validEvent accepts exactly what the separate
// checks accept, at every depth limit.
func FuzzValidEvent(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` {"a":[1,true,null,"x"]} `, `{"m":"caf\u00e9 ☕ \"q\" \\ [{","n":-1.5e3}`, `{"a":[[[]]]}`,
		`{"a":{"b":{}}}`, `{"a":1,}`, `{"a" 1}`, `{"a":[1:2]}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`,
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"` + "\xe9" + `"}`, `{"a":"` + "\x01" + `"}`, `{} x`, `{}{}`, `[]`, `{"a":[}]}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":{"b":[1,{"c":"]"}]}}`, `{"é":1}`, `{` + "\xc3\x28" + `:1}`, strings.Repeat(`{"a":`, 70),
	} {
		f.Add([]byte(seed), uint8(3))
		f.Add([]byte(seed), uint8(64))
	}
	f.Fuzz(func(t *testing.T, p []byte, depth uint8) {
		d := int(depth)%maxCheckDepth + 1
		if got, want := validEvent(p, d), slowAccepts(p, d); got != want {
			t.Fatalf("validEvent(%q, %d) = %v, the separate checks say %v", p, d, got, want)
		}
	})
}
