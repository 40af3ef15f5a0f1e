package errtrack

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestEightBytes checks plain8 and htmlSafe8 against the byte-at-a-time tables, on words
// of the bytes at the edges of the rules.
func TestEightBytes(t *testing.T) {
	edges := []byte{0, 0x1f, 0x20, 0x21, '"', '#', '&', '<', '>', '[', '\\', ']', 'a', 0x7f, 0x80, 0xc3, 0xe2, 0xff}
	rng := rand.New(rand.NewPCG(1, 2))
	var word [8]byte
	for range 200000 {
		for i := range word {
			if rng.IntN(4) == 0 {
				word[i] = byte(rng.IntN(256))
			} else {
				word[i] = edges[rng.IntN(len(edges))]
			}
		}
		wantPlain, wantHTML := true, true
		for _, c := range word {
			wantPlain = wantPlain && plain[c]
			wantHTML = wantHTML && c < utf8.RuneSelf && htmlSafe[c]
		}
		if got := plain8(binary.LittleEndian.Uint64(word[:])); got != wantPlain {
			t.Fatalf("plain8(%q) = %v", word, got)
		}
		if got := htmlSafe8(string(word[:])); got != wantHTML {
			t.Fatalf("htmlSafe8(%q) = %v", word, got)
		}
	}
}
