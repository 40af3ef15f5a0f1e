package envelope

import (
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
// It does not decode the payload, and it never recurses: one pass counts the nesting
// depth, so a payload nested 10,000 levels deep is refused at level maxDepth+1, then
// json.Valid checks the syntax with its iterative scanner. Neither allocates. (A
// json.Decoder token walk does the same job about eight times slower, with an allocation
// per token, which at thousands of events per second is most of a core.)
func CheckEvent(payload []byte, maxDepth int) error {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
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
