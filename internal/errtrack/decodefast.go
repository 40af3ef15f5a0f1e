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

// fields reads the members of the object being read, its '{' consumed, into a struct:
// field reads the value of the member name and returns the number (0 to 63) of the field
// it went to, or -1, having read nothing, for a name it does not take. The object gives
// up as once and unknown have it.
func (d *fastDecoder) fields(known []string, field func(name []byte) int) {
	r := &d.r
	var seen uint64
	for n := 0; ; n++ {
		name, ok := r.member(n)
		if !ok {
			return
		}
		if k := field(name); k >= 0 {
			d.once(&seen, uint(k))
		} else {
			d.unknown(name, known)
			r.skip()
		}
	}
}

// object reads an object, as fields does; anything else fails.
func (d *fastDecoder) object(known []string, field func(name []byte) int) {
	d.r.object()
	d.fields(known, field)
}

// lenientObject reads what the UnmarshalJSON methods of User, Request and SDK do: null is
// nil, any value but an object an empty T, and the members of an object field reads into
// a new T, as fields has them.
func lenientObject[T any](d *fastDecoder, known []string, field func(x *T, name []byte) int) *T {
	r := &d.r
	if r.null() {
		return nil
	}
	x := new(T)
	if r.peek() != '{' {
		r.skip()
		return x
	}
	r.i++
	d.fields(known, func(name []byte) int { return field(x, name) })
	return x
}

func (d *fastDecoder) event(w *wireEvent) {
	r := &d.r
	d.object(eventNames, func(name []byte) int {
		switch string(name) {
		case "event_id":
			w.EventID = r.raw()
			return 0
		case "timestamp":
			w.Timestamp = r.raw()
			return 1
		case "platform":
			w.Platform = r.str()
			return 2
		case "level":
			w.Level = r.raw()
			return 3
		case "logger":
			w.Logger = r.str()
			return 4
		case "transaction":
			w.Transaction = r.str()
			return 5
		case "server_name":
			w.ServerName = r.str()
			return 6
		case "release":
			w.Release = r.str()
			return 7
		case "dist":
			w.Dist = r.str()
			return 8
		case "environment":
			w.Environment = r.str()
			return 9
		case "message":
			w.Message = r.raw()
			return 10
		case "logentry":
			w.LogEntry = r.raw()
			return 11
		case "exception":
			w.Exception = d.exceptions()
			return 12
		case "stacktrace":
			w.Stacktrace = d.stacktrace(true)
			return 13
		case "threads":
			w.Threads = d.threads()
			return 14
		case "tags":
			w.Tags = d.pairs()
			return 15
		case "breadcrumbs":
			w.Breadcrumbs = d.breadcrumbs()
			return 16
		case "user":
			w.User = d.user()
			return 17
		case "request":
			w.Request = d.request()
			return 18
		case "contexts":
			w.Contexts = d.rawMap()
			return 19
		case "extra":
			w.Extra = d.rawMap()
			return 20
		case "fingerprint":
			w.Fingerprint = r.raw()
			return 21
		case "modules":
			w.Modules = d.stringMap()
			return 22
		case "sdk":
			w.SDK = d.sdk()
			return 23
		case "_cuts":
			w.Cuts = r.raw()
			return 24
		case "sentry.interfaces.Exception":
			w.LegacyException = d.exceptions()
			return 25
		case "sentry.interfaces.Message":
			w.LegacyMessage = r.raw()
			return 26
		case "sentry.interfaces.Stacktrace":
			w.LegacyStacktrace = d.stacktrace(true)
			return 27
		case "sentry.interfaces.User":
			w.LegacyUser = d.user()
			return 28
		case "sentry.interfaces.Http":
			w.LegacyRequest = d.request()
			return 29
		case "sentry.interfaces.Breadcrumbs":
			w.LegacyBreadcrumbs = d.breadcrumbs()
			return 30
		}
		return -1
	})
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
		values := false
		d.fields(exceptionsNames, func(name []byte) int {
			if string(name) != "values" {
				return d.exceptionField(&one, name)
			}
			// With "values": null the object is the one exception.
			if !r.null() {
				values = true
				d.exceptionList(&x)
			}
			return 63
		})
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
		d.object(exceptionNames, func(name []byte) int { return d.exceptionField(&ex, name) })
		x.add(ex)
	}
}

// exceptionField reads the value of the member name of an exception, as strictException,
// for fields.
func (d *fastDecoder) exceptionField(ex *Exception, name []byte) int {
	r := &d.r
	switch string(name) {
	case "type":
		ex.Type = r.str()
		return 0
	case "value":
		ex.Value = r.str()
		return 1
	case "module":
		ex.Module = r.str()
		return 2
	case "thread_id":
		ex.ThreadID = r.lenientStr()
		return 3
	case "mechanism":
		ex.Mechanism = r.optRaw()
		return 4
	case "stacktrace":
		ex.Stacktrace = d.stacktrace(false)
		return 5
	}
	return -1
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
	d.fields(stacktraceNames, func(name []byte) int {
		switch string(name) {
		case "frames":
			d.frames(st)
			return 0
		case "frames_omitted":
			if fo := d.ints(); len(fo) == 2 {
				st.FramesOmitted = fo
			}
			return 1
		case "registers":
			st.Registers = r.optRaw()
			return 2
		}
		return -1
	})
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
	d.object(frameNames, func(name []byte) int {
		switch string(name) {
		case "filename":
			f.Filename = r.sameStr(prev.Filename)
			return 0
		case "abs_path":
			f.AbsPath = r.sameStr(prev.AbsPath)
			return 1
		case "function":
			f.Function = r.sameStr(prev.Function)
			return 2
		case "raw_function":
			f.RawFunction = r.sameStr(prev.RawFunction)
			return 3
		case "module":
			f.Module = r.sameStr(prev.Module)
			return 4
		case "package":
			f.Package = r.sameStr(prev.Package)
			return 5
		case "platform":
			f.Platform = r.sameStr(prev.Platform)
			return 6
		case "lineno":
			f.Lineno = lineNumber(r.integer())
			return 7
		case "colno":
			f.Colno = lineNumber(r.integer())
			return 8
		case "in_app":
			f.InApp = r.optBool(&d.bools)
			return 9
		case "context_line":
			f.ContextLine = r.sameStr(prev.ContextLine)
			return 10
		case "pre_context":
			f.PreContext = d.strs()
			return 11
		case "post_context":
			f.PostContext = d.strs()
			return 12
		case "vars":
			f.Vars = r.optRaw()
			return 13
		case "instruction_addr":
			f.InstructionAddr = r.str()
			return 14
		case "symbol":
			f.Symbol = r.sameStr(prev.Symbol)
			return 15
		}
		return -1
	})
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
		d.object(threadNames, func(name []byte) int {
			switch string(name) {
			case "id":
				th.ID = r.lenientStr()
				return 0
			case "name":
				th.Name = r.str()
				return 1
			case "crashed":
				th.Crashed = r.boolean()
				return 2
			case "current":
				th.Current = r.boolean()
				return 3
			case "main":
				th.Main = r.boolean()
				return 4
			case "stacktrace":
				th.Stacktrace = d.stacktrace(false)
				return 5
			}
			return -1
		})
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
		d.object(breadcrumbNames, func(name []byte) int {
			switch string(name) {
			case "timestamp":
				b.Timestamp, _ = parseTimestamp(r.raw())
				return 0
			case "type":
				b.Type = r.sameStr(prev.Type)
				return 1
			case "category":
				b.Category = r.sameStr(prev.Category)
				return 2
			case "level":
				b.Level = normalizeLevel(Level(r.text())) // keeps nothing of the text: no copy
				return 3
			case "message":
				b.Message = r.sameStr(prev.Message)
				return 4
			case "data":
				b.Data = r.optRaw()
				return 5
			}
			return -1
		})
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
	return lenientObject(d, userNames, func(u *User, name []byte) int {
		switch string(name) {
		case "id":
			u.ID = r.lenientStr()
			return 0
		case "email":
			u.Email = r.lenientStr()
			return 1
		case "ip_address":
			u.IPAddress = r.lenientStr()
			return 2
		case "username":
			u.Username = r.lenientStr()
			return 3
		case "name":
			u.Name = r.lenientStr()
			return 4
		case "segment":
			u.Segment = r.lenientStr()
			return 5
		case "geo":
			u.Geo = r.optRaw()
			return 6
		case "data":
			u.Data = r.optRaw()
			return 7
		}
		return -1
	})
}

// request reads what Request.UnmarshalJSON does; any value but an object or null is an
// empty request.
func (d *fastDecoder) request() *Request {
	r := &d.r
	return lenientObject(d, requestNames, func(req *Request, name []byte) int {
		switch string(name) {
		case "url":
			req.URL = r.lenientStr()
			return 0
		case "method":
			req.Method = r.lenientStr()
			return 1
		case "headers":
			req.Headers = d.pairs()
			return 2
		case "query_string":
			req.QueryString = r.optRaw()
			return 3
		case "cookies":
			req.Cookies = r.optRaw()
			return 4
		case "data":
			req.Data = r.optRaw()
			return 5
		case "env":
			req.Env = r.optRaw()
			return 6
		case "fragment":
			req.Fragment = r.lenientStr()
			return 7
		}
		return -1
	})
}

// sdk reads what SDK.UnmarshalJSON does; any value but an object or null is an empty
// SDK.
func (d *fastDecoder) sdk() *SDK {
	r := &d.r
	return lenientObject(d, sdkNames, func(s *SDK, name []byte) int {
		switch string(name) {
		case "name":
			s.Name = r.lenientStr()
			return 0
		case "version":
			s.Version = r.lenientStr()
			return 1
		case "integrations":
			s.Integrations = d.lenientStrs()
			return 2
		case "packages":
			s.Packages = r.optRaw()
			return 3
		}
		return -1
	})
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
