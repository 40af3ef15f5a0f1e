package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/errtrack/internal/jsonbits"
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
			if i = jsonbits.SkipNumber(p, i); i < 0 {
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
	next, _ := jsonbits.SkipString(p, i)
	return next
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

// tooDeepAt returns the offset of the first '{' or '[' that opens level maxDepth+1, or
// -1. It skips strings, so brackets inside them do not count. For invalid JSON its answer
// means nothing, which is fine: json.Valid rejects such input next.
func tooDeepAt(p []byte, maxDepth int) int {
	depth := 0
	var s jsonbits.Strings
	for i, c := range p {
		if s.Next(c) {
			continue
		}
		switch c {
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
