package errtrack

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// decodeFast reads payload into w in one pass, checking the JSON as it goes, and reports
// whether it could. It takes what the SDKs send when every field has the documented type,
// and reads it to exactly what json.Unmarshal and the lenient UnmarshalJSON methods make
// of it. It gives up on anything those read in a way not worth copying: a field of the
// wrong type (which the lenient path records as a Cut), a member name that is repeated
// or matches a field only case-insensitively, invalid UTF-8 (which encoding/json
// replaces), nesting deeper than maxReadDepth. DecodeEvent then starts again with the
// lenient path, so giving up costs time, never correctness; FuzzDecodeFast checks that
// both paths agree whenever this one succeeds.
//
// It is hand-written because the libraries are not this: encoding/json validates each
// nested value again before every UnmarshalJSON method, which made decoding most of the
// error tracker's CPU, and github.com/go-json-experiment/json, one pass, spends about a
// quarter of this whole decode only checking the payload with jsontext, and decodes names,
// repeated members, null and invalid UTF-8 differently from encoding/json, which the stored
// events and the lenient path follow.
//
// The raw fields of w that DecodeEvent only reads (event_id, timestamp, level, the
// messages, fingerprint, _cuts) point into payload; the raw JSON an Event keeps is copied.
func (w *wireEvent) decodeFast(payload []byte) bool {
	d := decoders.Get().(*fastDecoder)
	d.r = reader{b: payload, buf: d.r.buf[:0], names: d.r.names[:0]}
	d.event(w)
	d.r.end()
	ok := !d.r.failed
	d.r.b, d.bools = nil, nil
	decoders.Put(d)
	return ok
}

// fastDecoder is the state of one decodeFast. Its buffers outlive it, in decoders, so
// that lists are built once at their final size.
type fastDecoder struct {
	r reader
	// bools is the slab that frames' in_app pointers point into.
	bools []bool
	// frameBuf, crumbBuf and pairBuf hold the items of the list being read, then
	// cleared.
	frameBuf []Frame
	crumbBuf []Breadcrumb
	pairBuf  []Pair
}

var decoders = sync.Pool{New: func() any { return new(fastDecoder) }}

// The names encoding/json decodes into each type the lenient path reads, for unknown to
// check a name against.
var (
	eventNames      = jsonNames(reflect.TypeFor[wireEvent]())
	exceptionNames  = jsonNames(reflect.TypeFor[strictException]())
	exceptionsNames = append([]string{"values"}, exceptionNames...) // one exception or {"values": [...]}
	valuesNames     = []string{"values"}
	stacktraceNames = jsonNames(reflect.TypeFor[strictStacktrace]())
	frameNames      = jsonNames(reflect.TypeFor[strictFrame]())
	threadNames     = jsonNames(reflect.TypeFor[strictThread]())
	breadcrumbNames = jsonNames(reflect.TypeFor[strictBreadcrumb]())
	userNames       = jsonNames(reflect.TypeFor[User]())
	requestNames    = jsonNames(reflect.TypeFor[Request]())
	sdkNames        = jsonNames(reflect.TypeFor[SDK]())
)

// jsonNames returns the member names encoding/json decodes into struct type t, those of
// embedded structs included.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			names = append(names, jsonNames(f.Type)...)
		case !f.IsExported() || tag == "-":
		case name == "":
			names = append(names, f.Name)
		default:
			names = append(names, name)
		}
	}
	return names
}

// unknown gives up on a member name that the switch reading the object did not take but
// encoding/json would: one that equals a known name but for case (encoding/json matches
// names case-insensitively, the way bytes.EqualFold does), or one the switch misses.
func (d *fastDecoder) unknown(name []byte, known []string) {
	for _, k := range known {
		if strings.EqualFold(string(name), k) {
			d.r.fail()
			return
		}
	}
}

// once marks the field numbered bit of an object as read, and gives up when it was read
// before: encoding/json keeps the last of repeated names, except that a null leaves the
// value alone, and copying that is not worth it.
func (d *fastDecoder) once(seen *uint64, bit uint) {
	if *seen&(1<<bit) != 0 {
		d.r.fail()
	}
	*seen |= 1 << bit
}

func (d *fastDecoder) event(w *wireEvent) {
	r := &d.r
	r.object()
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return
		}
		switch string(name) {
		case "event_id":
			d.once(&seen, 0)
			w.EventID = r.raw()
		case "timestamp":
			d.once(&seen, 1)
			w.Timestamp = r.raw()
		case "platform":
			d.once(&seen, 2)
			w.Platform = r.str()
		case "level":
			d.once(&seen, 3)
			w.Level = r.raw()
		case "logger":
			d.once(&seen, 4)
			w.Logger = r.str()
		case "transaction":
			d.once(&seen, 5)
			w.Transaction = r.str()
		case "server_name":
			d.once(&seen, 6)
			w.ServerName = r.str()
		case "release":
			d.once(&seen, 7)
			w.Release = r.str()
		case "dist":
			d.once(&seen, 8)
			w.Dist = r.str()
		case "environment":
			d.once(&seen, 9)
			w.Environment = r.str()
		case "message":
			d.once(&seen, 10)
			w.Message = r.raw()
		case "logentry":
			d.once(&seen, 11)
			w.LogEntry = r.raw()
		case "exception":
			d.once(&seen, 12)
			w.Exception = d.exceptions()
		case "stacktrace":
			d.once(&seen, 13)
			w.Stacktrace = d.stacktrace(true)
		case "threads":
			d.once(&seen, 14)
			w.Threads = d.threads()
		case "tags":
			d.once(&seen, 15)
			w.Tags = d.pairs()
		case "breadcrumbs":
			d.once(&seen, 16)
			w.Breadcrumbs = d.breadcrumbs()
		case "user":
			d.once(&seen, 17)
			w.User = d.user()
		case "request":
			d.once(&seen, 18)
			w.Request = d.request()
		case "contexts":
			d.once(&seen, 19)
			w.Contexts = d.rawMap()
		case "extra":
			d.once(&seen, 20)
			w.Extra = d.rawMap()
		case "fingerprint":
			d.once(&seen, 21)
			w.Fingerprint = r.raw()
		case "modules":
			d.once(&seen, 22)
			w.Modules = d.stringMap()
		case "sdk":
			d.once(&seen, 23)
			w.SDK = d.sdk()
		case "_cuts":
			d.once(&seen, 24)
			w.Cuts = r.raw()
		case "sentry.interfaces.Exception":
			d.once(&seen, 25)
			w.LegacyException = d.exceptions()
		case "sentry.interfaces.Message":
			d.once(&seen, 26)
			w.LegacyMessage = r.raw()
		case "sentry.interfaces.Stacktrace":
			d.once(&seen, 27)
			w.LegacyStacktrace = d.stacktrace(true)
		case "sentry.interfaces.User":
			d.once(&seen, 28)
			w.LegacyUser = d.user()
		case "sentry.interfaces.Http":
			d.once(&seen, 29)
			w.LegacyRequest = d.request()
		case "sentry.interfaces.Breadcrumbs":
			d.once(&seen, 30)
			w.LegacyBreadcrumbs = d.breadcrumbs()
		default:
			d.unknown(name, eventNames)
			r.skip()
		}
	}
}

// exceptions reads what Exceptions.UnmarshalJSON does: a list, {"values": [...]}, or
// one exception object; null or another scalar is no exceptions.
func (d *fastDecoder) exceptions() Exceptions {
	r := &d.r
	var x Exceptions
	switch r.peek() {
	case '[':
		d.exceptionList(&x)
	case '{':
		r.i++
		var one Exception
		var seen uint64
		values := false
		for n := 0; ; n++ {
			name, ok := r.member(n)
			if !ok {
				break
			}
			if string(name) == "values" {
				d.once(&seen, 63)
				// With "values": null the object is the one exception.
				if !r.null() {
					values = true
					d.exceptionList(&x)
				}
				continue
			}
			d.exceptionField(&one, name, &seen, exceptionsNames)
		}
		if !values {
			x.add(one)
		}
	default:
		r.skip()
	}
	return x
}

// exceptionList reads a list of exceptions; a null item is an empty exception, which add
// drops.
func (d *fastDecoder) exceptionList(x *Exceptions) {
	r := &d.r
	r.array()
	for n := 0; r.element(n); n++ {
		if r.null() {
			continue
		}
		var ex Exception
		var seen uint64
		r.object()
		for m := 0; ; m++ {
			name, ok := r.member(m)
			if !ok {
				break
			}
			d.exceptionField(&ex, name, &seen, exceptionNames)
		}
		x.add(ex)
	}
}

// exceptionField reads the value of the member name of an exception, as strictException.
func (d *fastDecoder) exceptionField(ex *Exception, name []byte, seen *uint64, known []string) {
	r := &d.r
	switch string(name) {
	case "type":
		d.once(seen, 0)
		ex.Type = r.str()
	case "value":
		d.once(seen, 1)
		ex.Value = r.str()
	case "module":
		d.once(seen, 2)
		ex.Module = r.str()
	case "thread_id":
		d.once(seen, 3)
		ex.ThreadID = r.lenientStr()
	case "mechanism":
		d.once(seen, 4)
		ex.Mechanism = r.optRaw()
	case "stacktrace":
		d.once(seen, 5)
		ex.Stacktrace = d.stacktrace(false)
	default:
		d.unknown(name, known)
		r.skip()
	}
}

// stacktrace reads a stack trace as strictStacktrace, null as nil. Another kind of value
// is an empty stack trace for event-level ones, whose Stacktrace.UnmarshalJSON takes it
// so, and fails inside exceptions and threads, where it is a type error.
func (d *fastDecoder) stacktrace(eventLevel bool) *Stacktrace {
	r := &d.r
	switch r.peek() {
	case 'n':
		r.null()
		return nil
	case '{':
		r.i++
	default:
		if !eventLevel {
			r.fail()
			return nil
		}
		r.skip()
		return &Stacktrace{}
	}
	st := &Stacktrace{}
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			break
		}
		switch string(name) {
		case "frames":
			d.once(&seen, 0)
			d.frames(st)
		case "frames_omitted":
			d.once(&seen, 1)
			if fo := d.ints(); len(fo) == 2 {
				st.FramesOmitted = fo
			}
		case "registers":
			d.once(&seen, 2)
			st.Registers = r.optRaw()
		default:
			d.unknown(name, stacktraceNames)
			r.skip()
		}
	}
	return st
}

// frames reads a list of frames into st, dropping empty ones (null items among them).
func (d *fastDecoder) frames(st *Stacktrace) {
	r := &d.r
	if r.null() {
		return
	}
	r.array()
	var none Frame
	for n := 0; r.element(n); n++ {
		if r.null() {
			continue
		}
		prev := &none
		if k := len(d.frameBuf); k > 0 {
			prev = &d.frameBuf[k-1]
		}
		var f Frame
		d.frame(&f, prev)
		if !reflect.ValueOf(f).IsZero() {
			d.frameBuf = append(d.frameBuf, f)
		}
	}
	st.Frames = collect(&d.frameBuf)
}

// collect returns a copy of the items in *scratch, nil for none, and empties it.
func collect[T any](scratch *[]T) []T {
	var out []T
	if len(*scratch) > 0 {
		out = make([]T, len(*scratch))
		copy(out, *scratch)
	}
	clear(*scratch) // the pool must not keep what the items point to
	*scratch = (*scratch)[:0]
	return out
}

// frame reads a frame as strictFrame; strings equal to prev's share its memory.
func (d *fastDecoder) frame(f, prev *Frame) {
	r := &d.r
	r.object()
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return
		}
		switch string(name) {
		case "filename":
			d.once(&seen, 0)
			f.Filename = r.sameStr(prev.Filename)
		case "abs_path":
			d.once(&seen, 1)
			f.AbsPath = r.sameStr(prev.AbsPath)
		case "function":
			d.once(&seen, 2)
			f.Function = r.sameStr(prev.Function)
		case "raw_function":
			d.once(&seen, 3)
			f.RawFunction = r.sameStr(prev.RawFunction)
		case "module":
			d.once(&seen, 4)
			f.Module = r.sameStr(prev.Module)
		case "package":
			d.once(&seen, 5)
			f.Package = r.sameStr(prev.Package)
		case "platform":
			d.once(&seen, 6)
			f.Platform = r.sameStr(prev.Platform)
		case "lineno":
			d.once(&seen, 7)
			f.Lineno = lineNumber(r.integer())
		case "colno":
			d.once(&seen, 8)
			f.Colno = lineNumber(r.integer())
		case "in_app":
			d.once(&seen, 9)
			f.InApp = r.optBool(&d.bools)
		case "context_line":
			d.once(&seen, 10)
			f.ContextLine = r.sameStr(prev.ContextLine)
		case "pre_context":
			d.once(&seen, 11)
			f.PreContext = d.strs()
		case "post_context":
			d.once(&seen, 12)
			f.PostContext = d.strs()
		case "vars":
			d.once(&seen, 13)
			f.Vars = r.optRaw()
		case "instruction_addr":
			d.once(&seen, 14)
			f.InstructionAddr = r.str()
		case "symbol":
			d.once(&seen, 15)
			f.Symbol = r.sameStr(prev.Symbol)
		default:
			d.unknown(name, frameNames)
			r.skip()
		}
	}
}

// listStart reads up to the items of a list sent as {"values": [...]} or as a bare list,
// as decodeStrict does without single. With items true the reader is inside the array;
// with rest true the object around it has members left, for listEnd. null and other
// kinds of values, and an object without values or with "values": null, have no items.
func (d *fastDecoder) listStart() (items, rest bool) {
	r := &d.r
	switch r.peek() {
	case '[':
		r.i++
		return true, false
	case '{':
		r.i++
		var seen uint64
		for n := 0; ; n++ {
			name, ok := r.member(n)
			if !ok {
				return false, false
			}
			if string(name) != "values" {
				d.unknown(name, valuesNames)
				r.skip()
				continue
			}
			d.once(&seen, 0)
			if !r.null() {
				r.array()
				return true, true
			}
		}
	}
	r.skip()
	return false, false
}

// listEnd reads the members of a {"values": [...]} object left after the list.
func (d *fastDecoder) listEnd(rest bool) {
	r := &d.r
	for n := 1; rest; n++ {
		name, ok := r.member(n)
		if !ok {
			return
		}
		d.unknown(name, valuesNames) // a second "values" too
		r.skip()
	}
}

func (d *fastDecoder) threads() Threads {
	r := &d.r
	var t Threads
	items, rest := d.listStart()
	for n := 0; items && r.element(n); n++ {
		if r.null() {
			continue
		}
		var th Thread
		var seen uint64
		r.object()
		for m := 0; ; m++ {
			name, ok := r.member(m)
			if !ok {
				break
			}
			switch string(name) {
			case "id":
				d.once(&seen, 0)
				th.ID = r.lenientStr()
			case "name":
				d.once(&seen, 1)
				th.Name = r.str()
			case "crashed":
				d.once(&seen, 2)
				th.Crashed = r.boolean()
			case "current":
				d.once(&seen, 3)
				th.Current = r.boolean()
			case "main":
				d.once(&seen, 4)
				th.Main = r.boolean()
			case "stacktrace":
				d.once(&seen, 5)
				th.Stacktrace = d.stacktrace(false)
			default:
				d.unknown(name, threadNames)
				r.skip()
			}
		}
		t.add(th)
	}
	d.listEnd(rest)
	return t
}

func (d *fastDecoder) breadcrumbs() Breadcrumbs {
	r := &d.r
	items, rest := d.listStart()
	for n := 0; items && r.element(n); n++ {
		if r.null() {
			continue
		}
		prev := &Breadcrumb{}
		if k := len(d.crumbBuf); k > 0 {
			prev = &d.crumbBuf[k-1]
		}
		var b Breadcrumb
		var seen uint64
		r.object()
		for m := 0; ; m++ {
			name, ok := r.member(m)
			if !ok {
				break
			}
			switch string(name) {
			case "timestamp":
				d.once(&seen, 0)
				b.Timestamp, _ = parseTimestamp(r.raw())
			case "type":
				d.once(&seen, 1)
				b.Type = r.sameStr(prev.Type)
			case "category":
				d.once(&seen, 2)
				b.Category = r.sameStr(prev.Category)
			case "level":
				d.once(&seen, 3)
				b.Level = normalizeLevel(Level(r.text())) // keeps nothing of the text: no copy
			case "message":
				d.once(&seen, 4)
				b.Message = r.sameStr(prev.Message)
			case "data":
				d.once(&seen, 5)
				b.Data = r.optRaw()
			default:
				d.unknown(name, breadcrumbNames)
				r.skip()
			}
		}
		if !reflect.ValueOf(b).IsZero() {
			d.crumbBuf = append(d.crumbBuf, b)
		}
	}
	d.listEnd(rest)
	return collect(&d.crumbBuf)
}

// pairs reads what Pairs.UnmarshalJSON does: an object, or a list of pairs in which items
// that are not lists of two are dropped; anything else is no pairs.
func (d *fastDecoder) pairs() Pairs {
	r := &d.r
	switch r.peek() {
	case '{':
		r.i++
		for n := 0; ; n++ {
			name, ok := r.member(n)
			if !ok {
				break
			}
			k := string(name)
			d.pairBuf = append(d.pairBuf, Pair{Key: k, Value: r.lenientStr()})
		}
	case '[':
		r.i++
		for n := 0; r.element(n); n++ {
			if r.peek() != '[' {
				r.skip()
				continue
			}
			r.i++
			var kv [2]string
			m := 0
			for ; r.element(m); m++ {
				if m < 2 {
					kv[m] = r.lenientStr()
				} else {
					r.skip()
				}
			}
			if m == 2 {
				d.pairBuf = append(d.pairBuf, Pair{Key: kv[0], Value: kv[1]})
			}
		}
	default:
		r.skip()
	}
	return collect(&d.pairBuf)
}

// user reads what User.UnmarshalJSON does; any value but an object or null is an empty
// user.
func (d *fastDecoder) user() *User {
	r := &d.r
	if r.null() {
		return nil
	}
	u := &User{}
	if r.peek() != '{' {
		r.skip()
		return u
	}
	r.i++
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return u
		}
		switch string(name) {
		case "id":
			d.once(&seen, 0)
			u.ID = r.lenientStr()
		case "email":
			d.once(&seen, 1)
			u.Email = r.lenientStr()
		case "ip_address":
			d.once(&seen, 2)
			u.IPAddress = r.lenientStr()
		case "username":
			d.once(&seen, 3)
			u.Username = r.lenientStr()
		case "name":
			d.once(&seen, 4)
			u.Name = r.lenientStr()
		case "segment":
			d.once(&seen, 5)
			u.Segment = r.lenientStr()
		case "geo":
			d.once(&seen, 6)
			u.Geo = r.optRaw()
		case "data":
			d.once(&seen, 7)
			u.Data = r.optRaw()
		default:
			d.unknown(name, userNames)
			r.skip()
		}
	}
}

// request reads what Request.UnmarshalJSON does; any value but an object or null is an
// empty request.
func (d *fastDecoder) request() *Request {
	r := &d.r
	if r.null() {
		return nil
	}
	req := &Request{}
	if r.peek() != '{' {
		r.skip()
		return req
	}
	r.i++
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return req
		}
		switch string(name) {
		case "url":
			d.once(&seen, 0)
			req.URL = r.lenientStr()
		case "method":
			d.once(&seen, 1)
			req.Method = r.lenientStr()
		case "headers":
			d.once(&seen, 2)
			req.Headers = d.pairs()
		case "query_string":
			d.once(&seen, 3)
			req.QueryString = r.optRaw()
		case "cookies":
			d.once(&seen, 4)
			req.Cookies = r.optRaw()
		case "data":
			d.once(&seen, 5)
			req.Data = r.optRaw()
		case "env":
			d.once(&seen, 6)
			req.Env = r.optRaw()
		case "fragment":
			d.once(&seen, 7)
			req.Fragment = r.lenientStr()
		default:
			d.unknown(name, requestNames)
			r.skip()
		}
	}
}

// sdk reads what SDK.UnmarshalJSON does; any value but an object or null is an empty
// SDK.
func (d *fastDecoder) sdk() *SDK {
	r := &d.r
	if r.null() {
		return nil
	}
	s := &SDK{}
	if r.peek() != '{' {
		r.skip()
		return s
	}
	r.i++
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return s
		}
		switch string(name) {
		case "name":
			d.once(&seen, 0)
			s.Name = r.lenientStr()
		case "version":
			d.once(&seen, 1)
			s.Version = r.lenientStr()
		case "integrations":
			d.once(&seen, 2)
			s.Integrations = d.lenientStrs()
		case "packages":
			d.once(&seen, 3)
			s.Packages = r.optRaw()
		default:
			d.unknown(name, sdkNames)
			r.skip()
		}
	}
}

// strs reads a list of strings, null items as "", or null as nil; anything else fails.
// An empty list is an empty slice, not nil, as encoding/json makes it.
func (d *fastDecoder) strs() []string {
	r := &d.r
	if r.null() {
		return nil
	}
	r.array()
	out := []string{}
	for n := 0; r.element(n); n++ {
		out = append(out, r.str())
	}
	return out
}

// lenientStrs reads what lenientStrings does.
func (d *fastDecoder) lenientStrs() []string {
	r := &d.r
	if r.peek() != '[' {
		r.skip()
		return nil
	}
	r.i++
	out := []string{}
	for n := 0; r.element(n); n++ {
		out = append(out, r.lenientStr())
	}
	return out
}

// ints reads a list of integers, null items as 0, or null as nil; anything else fails.
func (d *fastDecoder) ints() []int {
	r := &d.r
	if r.null() {
		return nil
	}
	r.array()
	out := []int{}
	for n := 0; r.element(n); n++ {
		out = append(out, r.integer())
	}
	return out
}

// rawMap reads an object of raw values (a null value is the text null), or null as nil;
// anything else fails. Of repeated names the last counts, as in encoding/json.
func (d *fastDecoder) rawMap() map[string]json.RawMessage {
	r := &d.r
	if r.null() {
		return nil
	}
	r.object()
	m := map[string]json.RawMessage{}
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return m
		}
		k := string(name)
		m[k] = r.rawCopy()
	}
}

// stringMap reads an object of strings (null values as ""), or null as nil; anything else
// fails.
func (d *fastDecoder) stringMap() map[string]string {
	r := &d.r
	if r.null() {
		return nil
	}
	r.object()
	m := map[string]string{}
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return m
		}
		k := string(name)
		m[k] = r.str()
	}
}
