package errtrack

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/errtrack/internal/jsonbits"
)

// reader reads the JSON values of a byte slice in order, checking syntax and UTF-8 as it
// goes: the tokenizer of decodeFast. Failure is sticky: the first error, or a value of a
// kind the caller cannot take, sets failed and moves to the end of the input, after which
// every read returns a zero value. A caller checks failed once, at the end.
type reader struct {
	b      []byte
	i      int
	failed bool
	// buf holds the last string unquoted, names holds the last member name unquoted; both
	// only for the rare strings with escapes.
	buf, names []byte
}

func (r *reader) fail() {
	r.failed = true
	r.i = len(r.b)
}

// peek returns the first byte of the next value, 0 at the end of the input (or at a NUL
// byte, which no value starts with).
func (r *reader) peek() byte {
	for r.i < len(r.b) {
		switch c := r.b[r.i]; c {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return c
		}
	}
	return 0
}

// end fails unless only whitespace is left.
func (r *reader) end() {
	if r.peek(); r.i != len(r.b) {
		r.fail()
	}
}

// null consumes the next value if it is null and reports whether it did.
func (r *reader) null() bool {
	if r.peek() != 'n' {
		return false
	}
	r.literal("null")
	return true
}

// object consumes the '{' that opens the next value, or fails.
func (r *reader) object() {
	if r.peek() != '{' {
		r.fail()
		return
	}
	r.i++
}

// array consumes the '[' that opens the next value, or fails.
func (r *reader) array() {
	if r.peek() != '[' {
		r.fail()
		return
	}
	r.i++
}

// member reads the name of the next member of the object being read, with the colon
// after it; n is the number of members read before. It returns false, having consumed
// the '}', at the end of the object. The name is valid until the next read.
func (r *reader) member(n int) ([]byte, bool) {
	c := r.peek()
	if c == '}' {
		r.i++
		return nil, false
	}
	if n > 0 {
		if c != ',' {
			r.fail()
			return nil, false
		}
		r.i++
		c = r.peek()
	}
	if c != '"' {
		r.fail()
		return nil, false
	}
	start, end, escaped := r.stringSpan()
	if r.peek() != ':' {
		r.fail()
		return nil, false
	}
	r.i++
	if !escaped {
		return r.b[start:end], true
	}
	r.names = appendUnquoted(r.names[:0], r.b[start:end])
	return r.names, true
}

// element reports whether the array being read has another element, consuming the comma
// before it or the ']' after the last; n is the number of elements read before.
func (r *reader) element(n int) bool {
	c := r.peek()
	if c == ']' {
		r.i++
		return false
	}
	if n > 0 {
		if c != ',' {
			r.fail()
			return false
		}
		r.i++
	}
	return !r.failed
}

// str reads a string, or null as ""; anything else fails.
func (r *reader) str() string {
	return r.sameStr("")
}

// sameStr is str that returns prev, without allocating, when the string equals it: the
// frames of a stack trace repeat their module and file names.
func (r *reader) sameStr(prev string) string {
	t := r.text()
	if string(t) == prev {
		return prev
	}
	return string(t)
}

// text reads a string, or null as nothing, and returns its text, valid until the next
// read; anything else fails.
func (r *reader) text() []byte {
	switch r.peek() {
	case '"':
		start, end, escaped := r.stringSpan()
		if !escaped {
			return r.b[start:end]
		}
		r.buf = appendUnquoted(r.buf[:0], r.b[start:end])
		return r.buf
	case 'n':
		r.literal("null")
	default:
		r.fail()
	}
	return nil
}

// lenientStr reads any value as lenientString does.
func (r *reader) lenientStr() string {
	switch r.peek() {
	case '"', 'n':
		return r.str()
	}
	return lenientString(r.raw())
}

// boolean reads true, false, or null as false; anything else fails.
func (r *reader) boolean() bool {
	switch r.peek() {
	case 't':
		r.literal("true")
		return true
	case 'f':
		r.literal("false")
	case 'n':
		r.literal("null")
	default:
		r.fail()
	}
	return false
}

// optBool reads true or false as a pointer into slab, or null as nil; anything else
// fails. Pointers into one slab save an allocation per frame's in_app.
func (r *reader) optBool(slab *[]bool) *bool {
	if r.null() {
		return nil
	}
	v := r.boolean()
	if len(*slab) == 0 {
		*slab = make([]bool, 64)
	}
	p := &(*slab)[0]
	*slab = (*slab)[1:]
	*p = v
	return p
}

// integer reads a number written as an integer, or null as 0, as encoding/json reads it
// into an int; a number with a fraction or an exponent, or one too long to add up here
// (over 18 digits), fails.
func (r *reader) integer() int {
	if r.null() {
		return 0
	}
	start := r.i
	r.number()
	lit := r.b[start:r.i]
	neg := len(lit) > 0 && lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	if len(lit) == 0 || len(lit) > 18 {
		r.fail()
		return 0
	}
	n := 0
	for _, c := range lit {
		if c < '0' || c > '9' {
			r.fail()
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n
}

// raw reads any value and returns its text, a part of the input.
func (r *reader) raw() []byte {
	r.peek()
	start := r.i
	r.skip()
	if r.failed {
		return nil
	}
	return r.b[start:r.i]
}

// rawCopy reads any value and returns a copy of its text: a json.RawMessage an Event
// keeps.
func (r *reader) rawCopy() []byte {
	raw := r.raw()
	if r.failed {
		return nil
	}
	return append([]byte(nil), raw...)
}

// optRaw is rawCopy with null as nil, as rawOrNil has it.
func (r *reader) optRaw() []byte {
	if r.null() {
		return nil
	}
	return r.rawCopy()
}

// maxReadDepth bounds the nesting skip follows, with a fixed stack of bits; deeper input
// fails, and DecodeEvent's lenient path reads it instead.
const maxReadDepth = 1024

// skip reads any value, without recursing.
func (r *reader) skip() {
	var inObject [maxReadDepth / 64]uint64 // one bit per level: an object, not an array
	depth := 0
	for !r.failed {
		// A value starts here.
		switch c := r.peek(); c {
		case '{', '[':
			if depth == maxReadDepth {
				r.fail()
				return
			}
			bit := uint64(1) << (depth % 64)
			if c == '{' {
				inObject[depth/64] |= bit
			} else {
				inObject[depth/64] &^= bit
			}
			depth++
			r.i++
			if end := r.peek(); c == '{' && end == '}' || c == '[' && end == ']' {
				r.i++
				depth--
				break
			}
			if c == '{' {
				r.member(0)
			}
			continue
		case '"':
			r.stringSpan()
		case 't':
			r.literal("true")
		case 'f':
			r.literal("false")
		case 'n':
			r.literal("null")
		default:
			r.number()
		}
		// A value ended: close the containers that end here, then go on to the next
		// value of the innermost one still open.
		for !r.failed && depth > 0 {
			object := inObject[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := r.peek()
			if c == '}' && object || c == ']' && !object {
				r.i++
				depth--
				continue
			}
			if c != ',' {
				r.fail()
				return
			}
			if object {
				r.member(1) // reads the comma
			} else {
				r.i++
			}
			break
		}
		if depth == 0 {
			return
		}
	}
}

// literal consumes lit (true, false or null), or fails.
func (r *reader) literal(lit string) {
	if len(r.b)-r.i < len(lit) || string(r.b[r.i:r.i+len(lit)]) != lit {
		r.fail()
		return
	}
	r.i += len(lit)
}

// number consumes a number, or fails.
func (r *reader) number() {
	if i := jsonbits.SkipNumber(r.b, r.i); i >= 0 {
		r.i = i
		return
	}
	r.fail()
}

// stringSpan consumes the string at r.i (r.b[r.i] == '"') and returns where its text
// starts and ends, and whether it has escapes.
func (r *reader) stringSpan() (start, end int, escaped bool) {
	next, escaped := jsonbits.SkipString(r.b, r.i)
	if next < 0 {
		r.fail()
		return 0, 0, false
	}
	start = r.i + 1
	r.i = next
	return start, next - 1, escaped
}

// appendUnquoted appends the text of a string with escapes, s being what stringSpan
// checked, decoded as encoding/json decodes it: a \u escape of half a surrogate pair
// that has no other half is U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch c := s[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			rn := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(rn) {
				if len(s)-i >= 6 && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(rn, hex4(s[i+2:])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				rn = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, rn)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// hex4 reads the four hex digits at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var n rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		n = n<<4 | rune(c)
	}
	return n
}
