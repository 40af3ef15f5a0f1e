package jsonbits

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestEightBytes checks Plain8 and HTMLSafe8 against the byte-at-a-time rules, on words
// of the bytes at the edges of the rules, and on each byte at each place in a plain word.
func TestEightBytes(t *testing.T) {
	isPlain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	isHTMLSafe := func(c byte) bool { return isPlain(c) && c != '<' && c != '>' && c != '&' }
	check := func(word [8]byte) {
		t.Helper()
		wantPlain, wantHTML := true, true
		for _, c := range word {
			wantPlain = wantPlain && isPlain(c)
			wantHTML = wantHTML && isHTMLSafe(c)
			if plain[c] != isPlain(c) {
				t.Fatalf("plain[%#x] = %v", c, plain[c])
			}
		}
		w := binary.LittleEndian.Uint64(word[:])
		if got := Plain8(w); got != wantPlain {
			t.Fatalf("Plain8(%q) = %v", word, got)
		}
		if got := HTMLSafe8(w); got != wantHTML {
			t.Fatalf("HTMLSafe8(%q) = %v", word, got)
		}
	}
	var word [8]byte
	for c := range 256 {
		for at := range word {
			for i := range word {
				word[i] = 'a'
			}
			word[at] = byte(c)
			check(word)
		}
	}
	edges := []byte{0, 0x1f, 0x20, 0x21, '"', '#', '&', '<', '>', '[', '\\', ']', 'a', 0x7f, 0x80, 0xc3, 0xe2, 0xff}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		for i := range word {
			if rng.IntN(4) == 0 {
				word[i] = byte(rng.IntN(256))
			} else {
				word[i] = edges[rng.IntN(len(edges))]
			}
		}
		check(word)
	}
}

// TestStrings checks Strings against SkipString: in valid JSON, the bytes inside strings
// are those from each '"' outside a string to the end SkipString finds.
func TestStrings(t *testing.T) {
	for _, text := range []string{
		`{}`,
		`{"a\"}":["x\\",{"b":1}], "c":"é", "d":"\u0022[", "e":""}`,
		`["\\\"]", "]"]`,
	} {
		p := []byte(text)
		want := make([]bool, len(p))
		for i := 0; i < len(p); i++ {
			if p[i] != '"' {
				continue
			}
			end, _ := SkipString(p, i)
			if end < 0 {
				t.Fatalf("SkipString(%s, %d) = -1", text, i)
			}
			for ; i < end; i++ {
				want[i] = true
			}
			i--
		}
		var s Strings
		for i, c := range p {
			if got := s.Next(c); got != want[i] {
				t.Errorf("Strings over %s: byte %d (%q) in a string = %v, want %v", text, i, c, got, want[i])
			}
		}
	}
}
