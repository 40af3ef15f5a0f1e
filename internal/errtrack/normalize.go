package errtrack

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The limits Normalize applies. They bound what one event costs to store and show; the
// ingest's own cap (1 MB per event) bounds the rest.
const (
	// MaxFrames is the number of frames kept per stack trace: the oldest and the newest
	// halves, so both the entry point and the crash site survive deep recursion.
	MaxFrames = 250
	// MaxBreadcrumbs is the number of breadcrumbs kept, the newest.
	MaxBreadcrumbs = 100
	// MaxExceptions is the number of chained exceptions kept, the newest.
	MaxExceptions = 25
	// MaxThreads is the number of threads kept, the first.
	MaxThreads = 50
	// MaxTags is the number of tags kept, the first; request headers share it.
	MaxTags = 100
	// MaxContextLines is the number of source lines kept before and after a frame's line.
	MaxContextLines = 5
	// MaxFingerprint is the number of client fingerprint elements kept.
	MaxFingerprint = 50
	// MaxCuts is the number of cuts recorded; the last one then says how many there were.
	MaxCuts = 100

	// MaxMessageLength bounds, in bytes, messages, exception values and breadcrumbs'
	// messages.
	MaxMessageLength = 8192
	// MaxTagLength bounds tag keys and values, as Sentry does.
	MaxTagLength = 200
	// MaxNameLength bounds names: types, modules, functions, file names, releases,
	// environments, user fields, fingerprint elements.
	MaxNameLength = 256
	// MaxLineLength bounds source lines, URLs and header values.
	MaxLineLength = 1024
	// MaxRawLength bounds each value kept as raw JSON (a context, an extra, request data,
	// a frame's variables); a longer one is dropped, since JSON cannot be cut.
	MaxRawLength = 16 << 10
)

// Normalize brings e within the limits above and fills defaults: an event id when there
// is none, level error, platform "other", a formatted message from a template and its
// parameters. Everything it cuts is appended to e.Cuts. First it filters the credentials
// the event carries (see scrub), so they are never stored. It is idempotent.
func (e *Event) Normalize() {
	e.scrub()
	n := normalizer{cuts: e.Cuts}
	if id, ok := normalizeEventID(e.EventID); ok {
		e.EventID = id
	} else {
		if e.EventID != "" {
			n.cut(at("event_id"), CutInvalid, 0)
		}
		e.EventID = NewEventID()
	}
	if l := normalizeLevel(e.Level); l != "" {
		e.Level = l
	} else {
		if e.Level != "" {
			n.cut(at("level"), CutInvalid, 0)
		}
		e.Level = LevelError
	}
	if e.Platform == "" {
		e.Platform = "other"
	}
	n.str(&e.Platform, at("platform"), MaxNameLength)
	n.str(&e.Logger, at("logger"), MaxNameLength)
	n.str(&e.Transaction, at("transaction"), MaxNameLength)
	n.str(&e.ServerName, at("server_name"), MaxNameLength)
	n.str(&e.Release, at("release"), MaxNameLength)
	n.str(&e.Dist, at("dist"), MaxNameLength)
	n.str(&e.Environment, at("environment"), MaxNameLength)

	if le := e.LogEntry; le != nil {
		if le.Formatted == "" {
			le.Formatted = formatMessage(le.Message, le.Params)
		}
		n.str(&le.Formatted, at("logentry.formatted"), MaxMessageLength)
		n.str(&le.Message, at("logentry.message"), MaxMessageLength)
		for i := range le.Params {
			n.raw(&le.Params[i], at("logentry.params").index(i))
		}
	}

	if len(e.Exception) > MaxExceptions {
		n.cut(at("exception.values"), CutTruncated, len(e.Exception))
		e.Exception = e.Exception[len(e.Exception)-MaxExceptions:]
	}
	for i := range e.Exception {
		ex := &e.Exception[i]
		p := at("exception.values").index(i)
		n.str(&ex.Type, p.field("type"), MaxNameLength)
		n.str(&ex.Value, p.field("value"), MaxMessageLength)
		n.str(&ex.Module, p.field("module"), MaxNameLength)
		n.str(&ex.ThreadID, p.field("thread_id"), MaxNameLength)
		n.raw(&ex.Mechanism, p.field("mechanism"))
		if ex.Stacktrace != nil {
			n.stacktrace(ex.Stacktrace, p.String()+".stacktrace")
		}
	}
	if e.Stacktrace != nil {
		n.stacktrace(e.Stacktrace, "stacktrace")
	}
	if len(e.Threads) > MaxThreads {
		n.cut(at("threads.values"), CutTruncated, len(e.Threads))
		e.Threads = e.Threads[:MaxThreads]
	}
	for i := range e.Threads {
		th := &e.Threads[i]
		p := at("threads.values").index(i)
		n.str(&th.ID, p.field("id"), MaxNameLength)
		n.str(&th.Name, p.field("name"), MaxNameLength)
		if th.Stacktrace != nil {
			n.stacktrace(th.Stacktrace, p.String()+".stacktrace")
		}
	}

	e.Tags = n.pairs(e.Tags, "tags", MaxTagLength)

	if len(e.Breadcrumbs) > MaxBreadcrumbs {
		n.cut(at("breadcrumbs.values"), CutTruncated, len(e.Breadcrumbs))
		e.Breadcrumbs = e.Breadcrumbs[len(e.Breadcrumbs)-MaxBreadcrumbs:]
	}
	for i := range e.Breadcrumbs {
		b := &e.Breadcrumbs[i]
		p := at("breadcrumbs.values").index(i)
		n.str(&b.Type, p.field("type"), MaxNameLength)
		n.str(&b.Category, p.field("category"), MaxNameLength)
		n.str(&b.Message, p.field("message"), MaxMessageLength)
		n.raw(&b.Data, p.field("data"))
		b.Level = normalizeLevel(b.Level)
	}

	if u := e.User; u != nil {
		n.str(&u.ID, at("user.id"), MaxNameLength)
		n.str(&u.Email, at("user.email"), MaxNameLength)
		n.str(&u.IPAddress, at("user.ip_address"), MaxNameLength)
		n.str(&u.Username, at("user.username"), MaxNameLength)
		n.str(&u.Name, at("user.name"), MaxNameLength)
		n.str(&u.Segment, at("user.segment"), MaxNameLength)
		n.raw(&u.Geo, at("user.geo"))
		n.raw(&u.Data, at("user.data"))
	}

	if r := e.Request; r != nil {
		n.str(&r.URL, at("request.url"), MaxLineLength)
		n.str(&r.Method, at("request.method"), MaxNameLength)
		n.str(&r.Fragment, at("request.fragment"), MaxLineLength)
		r.Headers = n.pairs(r.Headers, "request.headers", MaxLineLength)
		n.raw(&r.QueryString, at("request.query_string"))
		n.raw(&r.Cookies, at("request.cookies"))
		n.raw(&r.Data, at("request.data"))
		n.raw(&r.Env, at("request.env"))
	}

	n.rawMap(e.Contexts, "contexts")
	n.rawMap(e.Extra, "extra")

	if len(e.Fingerprint) > MaxFingerprint {
		n.cut(at("fingerprint"), CutTruncated, len(e.Fingerprint))
		e.Fingerprint = e.Fingerprint[:MaxFingerprint]
	}
	for i := range e.Fingerprint {
		n.str(&e.Fingerprint[i], at("fingerprint").index(i), MaxNameLength)
	}

	if s := e.SDK; s != nil {
		n.str(&s.Name, at("sdk.name"), MaxNameLength)
		n.str(&s.Version, at("sdk.version"), MaxNameLength)
		n.raw(&s.Packages, at("sdk.packages"))
	}
	if len(n.cuts) > MaxCuts {
		all := len(n.cuts)
		n.cuts = append(n.cuts[:MaxCuts-1:MaxCuts-1], Cut{Field: "_cuts", Reason: CutTruncated, Original: all})
	}
	e.Cuts = n.cuts
}

// normalizer collects the cuts of one Normalize.
type normalizer struct {
	cuts []Cut
}

func (n *normalizer) cut(field fieldPath, reason string, original int) {
	n.cuts = append(n.cuts, Cut{Field: field.String(), Reason: reason, Original: original})
}

// str truncates *s to max bytes.
func (n *normalizer) str(s *string, field fieldPath, max int) {
	if len(*s) <= max {
		return
	}
	n.cut(field, CutTruncated, len(*s))
	*s = truncate(*s, max)
}

// raw drops a raw JSON value longer than MaxRawLength and reports whether it did.
func (n *normalizer) raw(r *json.RawMessage, field fieldPath) bool {
	if len(*r) <= MaxRawLength {
		return false
	}
	n.cut(field, CutDropped, len(*r))
	*r = nil
	return true
}

// fieldPath names a field for a Cut, "base.i.name.j" with the parts that are set. It is
// written out only when something is cut: building every field's name up front cost
// more than the rest of Normalize.
type fieldPath struct {
	base string
	i    int // -1: none
	name string
	j    int // -1: none
}

func at(base string) fieldPath { return fieldPath{base: base, i: -1, j: -1} }

func (p fieldPath) index(i int) fieldPath       { p.i = i; return p }
func (p fieldPath) field(name string) fieldPath { p.name = name; return p }
func (p fieldPath) sub(j int) fieldPath         { p.j = j; return p }

func (p fieldPath) String() string {
	s := p.base
	if p.i >= 0 {
		s += "." + strconv.Itoa(p.i)
	}
	if p.name != "" {
		s += "." + p.name
	}
	if p.j >= 0 {
		s += "." + strconv.Itoa(p.j)
	}
	return s
}

// rawMap drops the values of m longer than MaxRawLength, in key order so that the cuts
// come out the same every time.
func (n *normalizer) rawMap(m map[string]json.RawMessage, field string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if n.raw(&v, at(field).field(k)) {
			delete(m, k)
		}
	}
}

// pairs drops pairs without a key, keeps the first MaxTags and truncates keys to
// MaxTagLength and values to max.
func (n *normalizer) pairs(ps Pairs, field string, max int) Pairs {
	out := ps[:0]
	for _, kv := range ps {
		if kv.Key == "" {
			n.cut(at(field), CutInvalid, 0)
			continue
		}
		out = append(out, kv)
	}
	if len(out) > MaxTags {
		n.cut(at(field), CutTruncated, len(out))
		out = out[:MaxTags]
	}
	for i := range out {
		n.str(&out[i].Key, at(field).index(i).sub(0), MaxTagLength)
		n.str(&out[i].Value, at(field).index(i).sub(1), max)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (n *normalizer) stacktrace(st *Stacktrace, field string) {
	frames := at(field + ".frames")
	if len(st.Frames) > MaxFrames {
		n.cut(frames, CutTruncated, len(st.Frames))
		half := MaxFrames / 2
		end := len(st.Frames) - half
		st.Frames = append(st.Frames[:half:half], st.Frames[end:]...)
		st.FramesOmitted = []int{half, end}
	}
	if len(st.FramesOmitted) != 0 && len(st.FramesOmitted) != 2 {
		st.FramesOmitted = nil
	}
	n.raw(&st.Registers, at(field+".registers"))
	for i := range st.Frames {
		f := &st.Frames[i]
		p := frames.index(i)
		n.str(&f.Filename, p.field("filename"), MaxNameLength)
		n.str(&f.AbsPath, p.field("abs_path"), MaxNameLength)
		n.str(&f.Function, p.field("function"), MaxNameLength)
		n.str(&f.RawFunction, p.field("raw_function"), MaxNameLength)
		n.str(&f.Module, p.field("module"), MaxNameLength)
		n.str(&f.Package, p.field("package"), MaxNameLength)
		n.str(&f.Platform, p.field("platform"), MaxNameLength)
		n.str(&f.InstructionAddr, p.field("instruction_addr"), MaxNameLength)
		n.str(&f.Symbol, p.field("symbol"), MaxNameLength)
		n.str(&f.ContextLine, p.field("context_line"), MaxLineLength)
		if len(f.PreContext) > MaxContextLines {
			n.cut(p.field("pre_context"), CutTruncated, len(f.PreContext))
			f.PreContext = f.PreContext[len(f.PreContext)-MaxContextLines:]
		}
		if len(f.PostContext) > MaxContextLines {
			n.cut(p.field("post_context"), CutTruncated, len(f.PostContext))
			f.PostContext = f.PostContext[:MaxContextLines]
		}
		for j := range f.PreContext {
			n.str(&f.PreContext[j], p.field("pre_context").sub(j), MaxLineLength)
		}
		for j := range f.PostContext {
			n.str(&f.PostContext[j], p.field("post_context").sub(j), MaxLineLength)
		}
		n.raw(&f.Vars, p.field("vars"))
	}
}

// truncate cuts s to at most max bytes on a character boundary, ending in "..." as Sentry
// marks a cut value.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "..."
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// formatMessage fills a logging template's placeholders with params, in order: the
// printf family (%s, %d, %r, %5.2f ...; %% is a percent sign) as Python's and Go's
// logging write them, and {} or {0} as Python's str.format and SLF4J's do. A template
// without placeholders, or without params, is returned as it is.
func formatMessage(tmpl string, params []json.RawMessage) string {
	if len(params) == 0 {
		return tmpl
	}
	args := make([]string, len(params))
	for i, p := range params {
		args[i] = lenientString(p)
	}
	var b strings.Builder
	next := 0
	// Stop past the limit: "{0}{0}{0}..." with a long parameter would otherwise take
	// memory in the product of the two.
	for i := 0; i < len(tmpl) && b.Len() <= MaxMessageLength; i++ {
		c := tmpl[i]
		switch {
		case c == '%' && i+1 < len(tmpl) && tmpl[i+1] == '%':
			b.WriteByte('%')
			i++
			continue
		case c == '%':
			j := i + 1
			for j < len(tmpl) && strings.IndexByte("-#0 +.123456789", tmpl[j]) >= 0 {
				j++
			}
			if j < len(tmpl) && strings.IndexByte("sdifrvxXeEgGqa", tmpl[j]) >= 0 && next < len(args) {
				b.WriteString(args[next])
				next++
				i = j
				continue
			}
		case c == '{':
			j := strings.IndexByte(tmpl[i:], '}')
			if j < 0 {
				break
			}
			inner := tmpl[i+1 : i+j]
			if inner == "" && next < len(args) {
				b.WriteString(args[next])
				next++
				i += j
				continue
			}
			if k, err := strconv.Atoi(inner); err == nil && k >= 0 && k < len(args) {
				b.WriteString(args[k])
				i += j
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
