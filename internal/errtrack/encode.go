package errtrack

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ferrycd/ferry/internal/errtrack/internal/jsonbits"
)

// MarshalEvent returns the document Ferry stores of e: the bytes json.Marshal(e) returns,
// which DecodeEvent reads back to e, written without reflection. It writes strings as
// encoding/json does (<, >, & and U+2028/2029 escaped, invalid UTF-8 as U+FFFD), maps in
// key order, and raw JSON compact with the same escapes. Raw JSON is checked in one pass
// that does not allocate, as encoding/json checks it, then copied, compacted if need be;
// one that fails the check (not valid JSON, or not valid UTF-8, which encoding/json copies
// as it is) goes through json.Marshal, to come out the same or fail the same. The error,
// like json.Marshal's, is for raw JSON that is not valid or a time that RFC 3339 cannot
// write.
func MarshalEvent(e Event) ([]byte, error) {
	return AppendEvent(make([]byte, 0, e.Size+e.Size/8+512), e)
}

// AppendEvent appends MarshalEvent's document of e to dst, a buffer to reuse, and returns
// the extended buffer.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	enc := encoder{buf: dst}
	enc.event(&e)
	if enc.err != nil {
		return nil, fmt.Errorf("marshal event: %w", enc.err)
	}
	return enc.buf, nil
}

// encoder appends JSON to buf; the first error sticks.
type encoder struct {
	buf []byte
	err error
}

// sep writes the comma before a member or an element, unless it is the first: the last
// byte written then opens the object or the list.
func (enc *encoder) sep() {
	if c := enc.buf[len(enc.buf)-1]; c != '{' && c != '[' {
		enc.buf = append(enc.buf, ',')
	}
}

// key writes the name of an object member, a name of a struct field that needs no
// escaping.
func (enc *encoder) key(name string) {
	enc.sep()
	enc.buf = append(enc.buf, '"')
	enc.buf = append(enc.buf, name...)
	enc.buf = append(enc.buf, '"', ':')
}

// str writes s as the value of member name, unless it is empty (omitempty).
func (enc *encoder) str(name, s string) {
	if s != "" {
		enc.key(name)
		enc.buf = appendString(enc.buf, s)
	}
}

// int writes n as the value of member name, unless it is 0 (omitempty).
func (enc *encoder) int(name string, n int) {
	if n != 0 {
		enc.key(name)
		enc.buf = strconv.AppendInt(enc.buf, int64(n), 10)
	}
}

// bool writes b as the value of member name, unless it is false (omitempty).
func (enc *encoder) bool(name string, b bool) {
	if b {
		enc.key(name)
		enc.buf = append(enc.buf, "true"...)
	}
}

// time writes t as the value of member name, unless it is zero (omitzero).
func (enc *encoder) time(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, '"')
	b, err := t.AppendText(enc.buf)
	if err != nil {
		_, err = t.MarshalJSON() // for json.Marshal's message
		enc.fail(name, err)
		return
	}
	enc.buf = append(b, '"')
}

// strs writes list as the value of member name, unless it is empty (omitempty).
func (enc *encoder) strs(name string, list []string) {
	if len(list) == 0 {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, '[')
	for i, s := range list {
		if i > 0 {
			enc.buf = append(enc.buf, ',')
		}
		enc.buf = appendString(enc.buf, s)
	}
	enc.buf = append(enc.buf, ']')
}

// raw writes m as the value of member name, unless it is empty (omitempty).
func (enc *encoder) raw(name string, m json.RawMessage) {
	if len(m) > 0 {
		enc.key(name)
		enc.rawValue(name, m)
	}
}

// rawValue writes m as json.Marshal writes a json.RawMessage: nil as null, the rest
// compact, with the escapes of strings. Raw JSON that is not valid, or not valid UTF-8,
// goes through json.Marshal, to fail or come out as it says.
func (enc *encoder) rawValue(name string, m json.RawMessage) {
	if m == nil {
		enc.buf = append(enc.buf, "null"...)
		return
	}
	r := reader{b: m}
	r.skip()
	r.end()
	if !r.failed {
		enc.buf = appendCompact(enc.buf, m)
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		enc.fail(name, err)
		return
	}
	enc.buf = append(enc.buf, b...)
}

func (enc *encoder) fail(name string, err error) {
	if enc.err == nil {
		enc.err = fmt.Errorf("%s: %w", name, err)
	}
}

func (enc *encoder) event(e *Event) {
	enc.buf = append(enc.buf, `{"event_id":`...)
	enc.buf = appendString(enc.buf, e.EventID)
	enc.time("timestamp", e.Timestamp)
	enc.str("platform", e.Platform)
	enc.str("level", string(e.Level))
	enc.str("logger", e.Logger)
	enc.str("transaction", e.Transaction)
	enc.str("server_name", e.ServerName)
	enc.str("release", e.Release)
	enc.str("dist", e.Dist)
	enc.str("environment", e.Environment)
	if le := e.LogEntry; le != nil {
		enc.key("logentry")
		enc.buf = append(enc.buf, '{')
		enc.str("formatted", le.Formatted)
		enc.str("message", le.Message)
		if len(le.Params) > 0 {
			enc.key("params")
			enc.buf = append(enc.buf, '[')
			for _, p := range le.Params {
				enc.sep()
				enc.rawValue("logentry.params", p)
			}
			enc.buf = append(enc.buf, ']')
		}
		enc.buf = append(enc.buf, '}')
	}
	enc.values("exception", len(e.Exception), func(i int) { enc.exception(&e.Exception[i]) })
	enc.stacktrace("stacktrace", e.Stacktrace)
	enc.values("threads", len(e.Threads), func(i int) { enc.thread(&e.Threads[i]) })
	enc.pairs("tags", e.Tags)
	enc.values("breadcrumbs", len(e.Breadcrumbs), func(i int) { enc.breadcrumb(&e.Breadcrumbs[i]) })
	if u := e.User; u != nil {
		enc.key("user")
		enc.buf = append(enc.buf, '{')
		enc.str("id", u.ID)
		enc.str("email", u.Email)
		enc.str("ip_address", u.IPAddress)
		enc.str("username", u.Username)
		enc.str("name", u.Name)
		enc.str("segment", u.Segment)
		enc.raw("geo", u.Geo)
		enc.raw("data", u.Data)
		enc.buf = append(enc.buf, '}')
	}
	if r := e.Request; r != nil {
		enc.key("request")
		enc.buf = append(enc.buf, '{')
		enc.str("url", r.URL)
		enc.str("method", r.Method)
		enc.pairs("headers", r.Headers)
		enc.raw("query_string", r.QueryString)
		enc.raw("cookies", r.Cookies)
		enc.raw("data", r.Data)
		enc.raw("env", r.Env)
		enc.str("fragment", r.Fragment)
		enc.buf = append(enc.buf, '}')
	}
	enc.rawMap("contexts", e.Contexts)
	enc.rawMap("extra", e.Extra)
	enc.strs("fingerprint", e.Fingerprint)
	enc.stringMap("modules", e.Modules)
	if s := e.SDK; s != nil {
		enc.key("sdk")
		enc.buf = append(enc.buf, '{')
		enc.str("name", s.Name)
		enc.str("version", s.Version)
		enc.strs("integrations", s.Integrations)
		enc.raw("packages", s.Packages)
		enc.buf = append(enc.buf, '}')
	}
	if len(e.Cuts) > 0 {
		enc.key("_cuts")
		enc.buf = append(enc.buf, '[')
		for _, c := range e.Cuts {
			enc.sep()
			enc.buf = append(enc.buf, `{"field":`...)
			enc.buf = appendString(enc.buf, c.Field)
			enc.buf = append(enc.buf, `,"reason":`...)
			enc.buf = appendString(enc.buf, c.Reason)
			enc.int("original", c.Original)
			enc.buf = append(enc.buf, '}')
		}
		enc.buf = append(enc.buf, ']')
	}
	enc.buf = append(enc.buf, '}')
}

// values writes a list of n items as the value of member name, as {"values": [...]} with
// item writing the one numbered i, unless n is 0 (omitempty).
func (enc *encoder) values(name string, n int, item func(i int)) {
	if n == 0 {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, `{"values":[`...)
	for i := range n {
		enc.sep()
		item(i)
	}
	enc.buf = append(enc.buf, "]}"...)
}

func (enc *encoder) exception(ex *Exception) {
	enc.buf = append(enc.buf, '{')
	enc.str("type", ex.Type)
	enc.str("value", ex.Value)
	enc.str("module", ex.Module)
	enc.str("thread_id", ex.ThreadID)
	enc.raw("mechanism", ex.Mechanism)
	enc.stacktrace("stacktrace", ex.Stacktrace)
	enc.buf = append(enc.buf, '}')
}

func (enc *encoder) thread(th *Thread) {
	enc.buf = append(enc.buf, '{')
	enc.str("id", th.ID)
	enc.str("name", th.Name)
	enc.bool("crashed", th.Crashed)
	enc.bool("current", th.Current)
	enc.bool("main", th.Main)
	enc.stacktrace("stacktrace", th.Stacktrace)
	enc.buf = append(enc.buf, '}')
}

func (enc *encoder) breadcrumb(b *Breadcrumb) {
	enc.buf = append(enc.buf, '{')
	enc.time("timestamp", b.Timestamp)
	enc.str("type", b.Type)
	enc.str("category", b.Category)
	enc.str("level", string(b.Level))
	enc.str("message", b.Message)
	enc.raw("data", b.Data)
	enc.buf = append(enc.buf, '}')
}

// stacktrace writes st as the value of member name, unless it is nil. Its frames are
// written even when there are none, as null or [], since they have no omitempty.
func (enc *encoder) stacktrace(name string, st *Stacktrace) {
	if st == nil {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, `{"frames":`...)
	if st.Frames == nil {
		enc.buf = append(enc.buf, "null"...)
	} else {
		enc.buf = append(enc.buf, '[')
		for i := range st.Frames {
			enc.sep()
			enc.frame(&st.Frames[i])
		}
		enc.buf = append(enc.buf, ']')
	}
	if len(st.FramesOmitted) > 0 {
		enc.key("frames_omitted")
		enc.buf = append(enc.buf, '[')
		for i, n := range st.FramesOmitted {
			if i > 0 {
				enc.buf = append(enc.buf, ',')
			}
			enc.buf = strconv.AppendInt(enc.buf, int64(n), 10)
		}
		enc.buf = append(enc.buf, ']')
	}
	enc.raw("registers", st.Registers)
	enc.buf = append(enc.buf, '}')
}

func (enc *encoder) frame(f *Frame) {
	enc.buf = append(enc.buf, '{')
	enc.str("filename", f.Filename)
	enc.str("abs_path", f.AbsPath)
	enc.str("function", f.Function)
	enc.str("raw_function", f.RawFunction)
	enc.str("module", f.Module)
	enc.str("package", f.Package)
	enc.str("platform", f.Platform)
	enc.int("lineno", f.Lineno)
	enc.int("colno", f.Colno)
	if f.InApp != nil {
		enc.key("in_app")
		enc.buf = strconv.AppendBool(enc.buf, *f.InApp)
	}
	enc.str("context_line", f.ContextLine)
	enc.strs("pre_context", f.PreContext)
	enc.strs("post_context", f.PostContext)
	enc.raw("vars", f.Vars)
	enc.str("instruction_addr", f.InstructionAddr)
	enc.str("symbol", f.Symbol)
	enc.buf = append(enc.buf, '}')
}

// pairs writes p as Pairs.MarshalJSON does, unless it is empty (omitempty).
func (enc *encoder) pairs(name string, p Pairs) {
	if len(p) == 0 {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, '[')
	for _, kv := range p {
		enc.sep()
		enc.buf = append(enc.buf, '[')
		enc.buf = appendString(enc.buf, kv.Key)
		enc.buf = append(enc.buf, ',')
		enc.buf = appendString(enc.buf, kv.Value)
		enc.buf = append(enc.buf, ']')
	}
	enc.buf = append(enc.buf, ']')
}

// rawMap writes m in key order, unless it is empty (omitempty).
func (enc *encoder) rawMap(name string, m map[string]json.RawMessage) {
	if len(m) == 0 {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, '{')
	var arr [16]string
	for _, k := range sortedKeys(arr[:0], m) {
		enc.sep()
		enc.buf = appendString(enc.buf, k)
		enc.buf = append(enc.buf, ':')
		enc.rawValue(name+"."+k, m[k])
	}
	enc.buf = append(enc.buf, '}')
}

// stringMap writes m in key order, unless it is empty (omitempty).
func (enc *encoder) stringMap(name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	enc.key(name)
	enc.buf = append(enc.buf, '{')
	var arr [16]string
	for _, k := range sortedKeys(arr[:0], m) {
		enc.sep()
		enc.buf = appendString(enc.buf, k)
		enc.buf = append(enc.buf, ':')
		enc.buf = appendString(enc.buf, m[k])
	}
	enc.buf = append(enc.buf, '}')
}

// sortedKeys appends the keys of m to keys, sorted as encoding/json sorts them.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendCompact appends src, valid JSON, without the whitespace outside strings and with
// <, >, & and U+2028/2029 escaped, as json.Marshal writes a json.RawMessage. Raw JSON
// that DecodeEvent kept from an SDK that writes it compact is copied as it is.
func appendCompact(dst, src []byte) []byte {
	start := 0
	var s jsonbits.Strings
	for i := 0; i < len(src); i++ {
		switch c := src[i]; {
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8:
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
			i += 2
			start = i + 1
		case s.Next(c): // a string: copied as it is
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// appendString appends s as a JSON string, escaped as encoding/json escapes it with its
// default HTML escaping.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && htmlSafe8(s[i:i+8]) {
			i += 8
			continue
		}
		if b := s[i]; b < utf8.RuneSelf {
			if htmlSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control characters, <, > and &
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// htmlSafe8 reports whether the first eight bytes of s are all htmlSafe.
func htmlSafe8(s string) bool {
	return jsonbits.HTMLSafe8(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
}

const hexDigits = "0123456789abcdef"

// htmlSafe holds the ASCII bytes a string is written with as they are.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		switch c {
		case '"', '\\', '<', '>', '&':
		default:
			t[c] = true
		}
	}
	return t
}()
