// Package jsonbits holds the byte-level pieces of JSON that the error tracker's one-pass
// reader and writer (package errtrack) and its payload check (package envelope) share:
// skipping strings and numbers, and testing eight string bytes at once.
package jsonbits

import (
	"encoding/binary"
	"unicode/utf8"
)

// Most bytes of an event are in strings, and most of those need nothing done: testing
// eight at once, as a uint64, reads them several times faster than a byte at a time.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// Plain8 reports whether the eight bytes of w are all plain: ASCII, not a control
// character, not '"' or '\\', the bytes a JSON string holds as they are. A byte of x is
// below n (n <= 0x80) when (x-n)&^x has its high bit set, and zero when (x-1)&^x has; the
// first such byte is found exactly, which is all these tests need.
func Plain8(w uint64) bool {
	q := w ^ ones*'"'
	bs := w ^ ones*'\\'
	return (w|(w-ones*0x20)&^w|(q-ones)&^q|(bs-ones)&^bs)&highs == 0
}

// HTMLSafe8 reports whether the eight bytes of w are all plain and none is '<', '>' or
// '&': the bytes encoding/json writes in a string as they are.
func HTMLSafe8(w uint64) bool {
	q, bs := w^ones*'"', w^ones*'\\'
	lt, gt, amp := w^ones*'<', w^ones*'>', w^ones*'&'
	return (w|(w-ones*0x20)&^w|(q-ones)&^q|(bs-ones)&^bs|(lt-ones)&^lt|(gt-ones)&^gt|(amp-ones)&^amp)&highs == 0
}

// plain holds the bytes a JSON string may hold as they are, one at a time, as Plain8
// tests eight.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// SkipString returns the index just after the string that starts at p[i] == '"', and
// whether it has escapes; next is -1 if it is not a valid JSON string of valid UTF-8.
func SkipString(p []byte, i int) (next int, escaped bool) {
	for i++; i < len(p); {
		if i+8 <= len(p) && Plain8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
			continue
		}
		c := p[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, escaped
		case c == '\\':
			escaped = true
			if i+1 == len(p) {
				return -1, false
			}
			switch p[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(p) || !isHex(p[i+2]) || !isHex(p[i+3]) || !isHex(p[i+4]) || !isHex(p[i+5]) {
					return -1, false
				}
				i += 6
			default:
				return -1, false
			}
		case c < utf8.RuneSelf: // a control character
			return -1, false
		default:
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				return -1, false
			}
			i += size
		}
	}
	return -1, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// SkipNumber returns the index just after the number that starts at p[i], or -1 if no
// valid JSON number starts there.
func SkipNumber(p []byte, i int) int {
	if i < len(p) && p[i] == '-' {
		i++
	}
	switch {
	case i < len(p) && p[i] == '0':
		i++
	case i < len(p) && '1' <= p[i] && p[i] <= '9':
		i = skipDigits(p, i)
	default:
		return -1
	}
	if i < len(p) && p[i] == '.' {
		j := skipDigits(p, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		j := skipDigits(p, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(p []byte, i int) int {
	for i < len(p) && '0' <= p[i] && p[i] <= '9' {
		i++
	}
	return i
}

// Strings follows JSON text a byte at a time to tell the bytes inside strings from the
// rest, for scans that only need to skip strings over text already known to be valid (or
// whose answer does not matter when it is not). The zero value is outside a string.
type Strings struct {
	in, escaped bool
}

// Next takes the next byte of the text and reports whether it is part of a string, its
// quotes included.
func (s *Strings) Next(c byte) bool {
	switch {
	case !s.in:
		s.in = c == '"'
		return s.in
	case s.escaped:
		s.escaped = false
	case c == '\\':
		s.escaped = true
	case c == '"':
		s.in = false
	}
	return true
}
