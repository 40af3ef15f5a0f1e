package envelope

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// CheckEvent reports whether payload is an event the rest of Ferry can safely decode and
// store: valid UTF-8, one JSON object and nothing after it, objects and arrays nested at
// most maxDepth levels deep (DefaultMaxDepth when maxDepth <= 0). The error wraps
// ErrMalformed and says where the payload goes wrong.
//
// It does not decode the payload, and it never recurses, so a payload nested 10,000
// levels deep is refused at level maxDepth+1. An event that passes, the common case, is
// checked in one pass that does not allocate (validEvent); only a payload it refuses
// goes through the separate checks, in the order that decides which error it gets.
func CheckEvent(payload []byte, maxDepth int) error {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if maxDepth <= maxCheckDepth && validEvent(payload, maxDepth) {
		return nil
	}
	if !utf8.Valid(payload) {
		return fmt.Errorf("%w: event has invalid UTF-8 at byte %d", ErrMalformed, invalidUTF8At(payload))
	}
	i := 0
	for i < len(payload) && isSpace(payload[i]) {
		i++
	}
	if i == len(payload) {
		return fmt.Errorf("%w: event is empty", ErrMalformed)
	}
	if payload[i] != '{' {
		return fmt.Errorf("%w: event is not a JSON object", ErrMalformed)
	}
	if at := tooDeepAt(payload[i:], maxDepth); at >= 0 {
		return fmt.Errorf("%w: event nests objects and arrays deeper than %d levels (at byte %d)", ErrMalformed, maxDepth, i+at)
	}
	if !json.Valid(payload) {
		var v json.RawMessage
		err := json.Unmarshal(payload, &v) // only to say where, on this rare path
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("%w: event is not valid JSON at byte %d: %w", ErrMalformed, syn.Offset, syn)
		}
		return fmt.Errorf("%w: event is not valid JSON", ErrMalformed)
	}
	return nil
}

// maxCheckDepth is the deepest limit validEvent keeps track of, in a fixed array on the
// stack; CheckEvent checks a payload against a higher limit the slow way.
const maxCheckDepth = 1024

// validEvent reports whether p is valid UTF-8 holding one JSON object, with only
// whitespace around it, nested at most maxDepth (<= maxCheckDepth) levels deep. It
// accepts exactly what CheckEvent's separate checks accept: for valid JSON, tooDeepAt's
// count of brackets outside strings is the nesting depth, and outside strings any byte
// that is not ASCII is a syntax error, so only strings need their UTF-8 checked.
func validEvent(p []byte, maxDepth int) bool {
	var inObject [maxCheckDepth / 64]uint64 // one bit per level: an object, not an array
	depth := 0
	i := skipSpace(p, 0)
	if i == len(p) || p[i] != '{' {
		return false
	}
	for {
		// A value starts at i (after a name's colon, a comma or an opening bracket).
		i = skipSpace(p, i)
		if i == len(p) {
			return false
		}
		switch c := p[i]; c {
		case '{', '[':
			if depth == maxDepth {
				return false
			}
			bit := uint64(1) << (depth % 64)
			if c == '{' {
				inObject[depth/64] |= bit
			} else {
				inObject[depth/64] &^= bit
			}
			depth++
			i = skipSpace(p, i+1)
			if i < len(p) && (c == '{' && p[i] == '}' || c == '[' && p[i] == ']') {
				depth--
				i++
				break // an empty object or array is a whole value
			}
			if c == '{' {
				if i = memberName(p, i); i < 0 {
					return false
				}
			}
			continue
		case '"':
			if i = skipString(p, i); i < 0 {
				return false
			}
		case 't':
			if i = skipLiteral(p, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = skipLiteral(p, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = skipLiteral(p, i, "null"); i < 0 {
				return false
			}
		default:
			if i = skipNumber(p, i); i < 0 {
				return false
			}
		}
		// A value ended at i: close the containers that end here, then move on to the
		// next value of the innermost one still open.
		for {
			i = skipSpace(p, i)
			if depth == 0 {
				return i == len(p)
			}
			if i == len(p) {
				return false
			}
			object := inObject[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			if c := p[i]; c == '}' && object || c == ']' && !object {
				depth--
				i++
				continue
			}
			if p[i] != ',' {
				return false
			}
			i++
			if object {
				if i = memberName(p, skipSpace(p, i)); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// memberName skips an object member's name and the colon after it, starting at i; it
// returns where the value may start, or -1.
func memberName(p []byte, i int) int {
	if i == len(p) || p[i] != '"' {
		return -1
	}
	if i = skipString(p, i); i < 0 {
		return -1
	}
	i = skipSpace(p, i)
	if i == len(p) || p[i] != ':' {
		return -1
	}
	return i + 1
}

// skipString returns the index just after the string that starts at p[i] == '"', or -1
// if it is not a valid JSON string of valid UTF-8.
func skipString(p []byte, i int) int {
	for i++; i < len(p); {
		if i+8 <= len(p) && plain8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
			continue
		}
		c := p[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			i++
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 == len(p) {
				return -1
			}
			switch p[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(p) || !isHex(p[i+2]) || !isHex(p[i+3]) || !isHex(p[i+4]) || !isHex(p[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				return -1
			}
			i += size
		}
	}
	return -1
}

// Most bytes of an event are in strings, and most of those are plain: testing eight at
// once, as a uint64, reads them several times faster than a byte at a time.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether the eight bytes of w are all plain: ASCII, not a control
// character, not '"' or '\\'. A byte of x is below n (n <= 0x80) when (x-n)&^x has its
// high bit set, and zero when (x-1)&^x has; the first such byte is found exactly, which
// is all this test needs.
func plain8(w uint64) bool {
	q := w ^ ones*'"'
	bs := w ^ ones*'\\'
	return (w|(w-ones*0x20)&^w|(q-ones)&^q|(bs-ones)&^bs)&highs == 0
}

// skipNumber returns the index just after the number that starts at p[i], or -1.
func skipNumber(p []byte, i int) int {
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

// skipLiteral returns the index just after lit at p[i], or -1.
func skipLiteral(p []byte, i int, lit string) int {
	if len(p)-i < len(lit) || string(p[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && isSpace(p[i]) {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// tooDeepAt returns the offset of the first '{' or '[' that opens level maxDepth+1, or
// -1. It skips strings, so brackets inside them do not count. For invalid JSON its answer
// means nothing, which is fine: json.Valid rejects such input next.
func tooDeepAt(p []byte, maxDepth int) int {
	depth := 0
	inString, escaped := false, false
	for i, c := range p {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return i
			}
		case '}', ']':
			depth--
		}
	}
	return -1
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence in p.
func invalidUTF8At(p []byte) int {
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(p)
}
