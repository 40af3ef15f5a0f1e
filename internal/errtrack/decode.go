package errtrack

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// UnmarshalJSON reads an object or a list of pairs; anything else leaves p empty.
func (p *Pairs) UnmarshalJSON(b []byte) error {
	*p = nil
	switch firstByte(b) {
	case '{':
		dec := json.NewDecoder(bytes.NewReader(b))
		if _, err := dec.Token(); err != nil { // {
			return nil
		}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return nil
			}
			k, _ := t.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil
			}
			*p = append(*p, Pair{Key: k, Value: lenientString(v)})
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(b, &list) != nil {
			return nil
		}
		for _, item := range list {
			var kv []json.RawMessage
			if json.Unmarshal(item, &kv) != nil || len(kv) != 2 {
				continue // Sentry drops malformed pairs one by one
			}
			*p = append(*p, Pair{Key: lenientString(kv[0]), Value: lenientString(kv[1])})
		}
	}
	return nil
}

// UnmarshalJSON reads any of the three forms. Items that are not objects, or empty ones,
// are skipped.
func (x *Exceptions) UnmarshalJSON(b []byte) error {
	*x = nil
	if items, ok := decodeStrict[strictException](b, true); ok {
		for _, it := range items {
			ex := Exception{
				Type: it.Type, Value: it.Value, Module: it.Module, ThreadID: lenientString(it.ThreadID),
				Mechanism: rawOrNil(it.Mechanism), Stacktrace: it.Stacktrace.stacktrace(),
			}
			x.add(ex)
		}
		return nil
	}
	for _, raw := range valuesOf(b, true) {
		var ex Exception
		if ex.decode(raw) {
			x.add(ex)
		}
	}
	return nil
}

func (x *Exceptions) add(ex Exception) {
	if !reflect.ValueOf(ex).IsZero() {
		*x = append(*x, ex)
	}
}

// UnmarshalJSON reads either form. Items that are not objects, or empty ones, are
// skipped.
func (t *Threads) UnmarshalJSON(b []byte) error {
	*t = nil
	if items, ok := decodeStrict[strictThread](b, false); ok {
		for _, it := range items {
			t.add(Thread{
				ID: lenientString(it.ID), Name: it.Name, Crashed: it.Crashed, Current: it.Current, Main: it.Main,
				Stacktrace: it.Stacktrace.stacktrace(),
			})
		}
		return nil
	}
	for _, raw := range valuesOf(b, false) {
		var th struct {
			ID         json.RawMessage `json:"id"`
			Name       json.RawMessage `json:"name"`
			Crashed    bool            `json:"crashed"`
			Current    bool            `json:"current"`
			Main       bool            `json:"main"`
			Stacktrace *Stacktrace     `json:"stacktrace"`
		}
		if firstByte(raw) != '{' {
			continue
		}
		_ = json.Unmarshal(raw, &th) // wrong types leave zero values
		t.add(Thread{
			ID: lenientString(th.ID), Name: lenientString(th.Name),
			Crashed: th.Crashed, Current: th.Current, Main: th.Main, Stacktrace: th.Stacktrace,
		})
	}
	return nil
}

func (t *Threads) add(th Thread) {
	if !reflect.ValueOf(th).IsZero() {
		*t = append(*t, th)
	}
}

// UnmarshalJSON reads either form; a breadcrumb's timestamp may be RFC 3339 or Unix
// seconds. Items that are not objects, or empty ones, are skipped.
func (bc *Breadcrumbs) UnmarshalJSON(b []byte) error {
	*bc = nil
	if items, ok := decodeStrict[strictBreadcrumb](b, false); ok {
		for _, it := range items {
			ts, _ := parseTimestamp(it.Timestamp)
			bc.add(Breadcrumb{
				Timestamp: ts, Type: it.Type, Category: it.Category, Level: normalizeLevel(Level(it.Level)),
				Message: it.Message, Data: rawOrNil(it.Data),
			})
		}
		return nil
	}
	for _, raw := range valuesOf(b, false) {
		if firstByte(raw) != '{' {
			continue
		}
		var w struct {
			Timestamp json.RawMessage `json:"timestamp"`
			Type      json.RawMessage `json:"type"`
			Category  json.RawMessage `json:"category"`
			Level     json.RawMessage `json:"level"`
			Message   json.RawMessage `json:"message"`
			Data      json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(raw, &w)
		ts, _ := parseTimestamp(w.Timestamp)
		bc.add(Breadcrumb{
			Timestamp: ts,
			Type:      lenientString(w.Type),
			Category:  lenientString(w.Category),
			Level:     parseLevel(w.Level),
			Message:   lenientString(w.Message),
			Data:      rawOrNil(w.Data),
		})
	}
	return nil
}

func (bc *Breadcrumbs) add(b Breadcrumb) {
	if !reflect.ValueOf(b).IsZero() {
		*bc = append(*bc, b)
	}
}

// UnmarshalJSON reads a frame leniently: a line number sent as a string still counts,
// and a value of the wrong type is ignored instead of failing the event.
func (f *Frame) UnmarshalJSON(b []byte) error {
	*f = Frame{}
	if firstByte(b) != '{' {
		return nil
	}
	var sf strictFrame
	if json.Unmarshal(b, &sf) == nil {
		*f = sf.frame()
		return nil
	}
	var w struct {
		Filename        json.RawMessage `json:"filename"`
		AbsPath         json.RawMessage `json:"abs_path"`
		Function        json.RawMessage `json:"function"`
		RawFunction     json.RawMessage `json:"raw_function"`
		Module          json.RawMessage `json:"module"`
		Package         json.RawMessage `json:"package"`
		Platform        json.RawMessage `json:"platform"`
		Lineno          json.RawMessage `json:"lineno"`
		Colno           json.RawMessage `json:"colno"`
		InApp           json.RawMessage `json:"in_app"`
		ContextLine     json.RawMessage `json:"context_line"`
		PreContext      json.RawMessage `json:"pre_context"`
		PostContext     json.RawMessage `json:"post_context"`
		Vars            json.RawMessage `json:"vars"`
		InstructionAddr json.RawMessage `json:"instruction_addr"`
		Symbol          json.RawMessage `json:"symbol"`
	}
	_ = json.Unmarshal(b, &w)
	*f = Frame{
		Filename:        lenientString(w.Filename),
		AbsPath:         lenientString(w.AbsPath),
		Function:        lenientString(w.Function),
		RawFunction:     lenientString(w.RawFunction),
		Module:          lenientString(w.Module),
		Package:         lenientString(w.Package),
		Platform:        lenientString(w.Platform),
		Lineno:          lenientInt(w.Lineno),
		Colno:           lenientInt(w.Colno),
		ContextLine:     lenientString(w.ContextLine),
		PreContext:      lenientStrings(w.PreContext),
		PostContext:     lenientStrings(w.PostContext),
		Vars:            rawOrNil(w.Vars),
		InstructionAddr: lenientString(w.InstructionAddr),
		Symbol:          lenientString(w.Symbol),
	}
	var inApp bool
	if json.Unmarshal(w.InApp, &inApp) == nil {
		f.InApp = &inApp
	}
	return nil
}

// UnmarshalJSON reads a stack trace whose frames may be missing, null or malformed.
func (s *Stacktrace) UnmarshalJSON(b []byte) error {
	*s = Stacktrace{}
	if firstByte(b) != '{' {
		return nil
	}
	var ss strictStacktrace
	if json.Unmarshal(b, &ss) == nil {
		*s = *ss.stacktrace()
		return nil
	}
	var w struct {
		Frames        []json.RawMessage `json:"frames"`
		FramesOmitted []int             `json:"frames_omitted"`
		Registers     json.RawMessage   `json:"registers"`
	}
	_ = json.Unmarshal(b, &w)
	for _, raw := range w.Frames {
		var f Frame
		_ = f.UnmarshalJSON(raw)
		if !reflect.ValueOf(f).IsZero() {
			s.Frames = append(s.Frames, f)
		}
	}
	if len(w.FramesOmitted) == 2 {
		s.FramesOmitted = w.FramesOmitted
	}
	s.Registers = rawOrNil(w.Registers)
	return nil
}

// UnmarshalJSON reads a user whose id may be a number, as some SDKs send it.
func (u *User) UnmarshalJSON(b []byte) error {
	*u = User{}
	if firstByte(b) != '{' {
		return nil
	}
	var w struct {
		ID        json.RawMessage `json:"id"`
		Email     json.RawMessage `json:"email"`
		IPAddress json.RawMessage `json:"ip_address"`
		Username  json.RawMessage `json:"username"`
		Name      json.RawMessage `json:"name"`
		Segment   json.RawMessage `json:"segment"`
		Geo       json.RawMessage `json:"geo"`
		Data      json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(b, &w)
	*u = User{
		ID:        lenientString(w.ID),
		Email:     lenientString(w.Email),
		IPAddress: lenientString(w.IPAddress),
		Username:  lenientString(w.Username),
		Name:      lenientString(w.Name),
		Segment:   lenientString(w.Segment),
		Geo:       rawOrNil(w.Geo),
		Data:      rawOrNil(w.Data),
	}
	return nil
}

// UnmarshalJSON reads a request; headers may be an object or a list of pairs.
func (r *Request) UnmarshalJSON(b []byte) error {
	*r = Request{}
	if firstByte(b) != '{' {
		return nil
	}
	var w struct {
		URL         json.RawMessage `json:"url"`
		Method      json.RawMessage `json:"method"`
		Headers     Pairs           `json:"headers"`
		QueryString json.RawMessage `json:"query_string"`
		Cookies     json.RawMessage `json:"cookies"`
		Data        json.RawMessage `json:"data"`
		Env         json.RawMessage `json:"env"`
		Fragment    json.RawMessage `json:"fragment"`
	}
	_ = json.Unmarshal(b, &w)
	*r = Request{
		URL:         lenientString(w.URL),
		Method:      lenientString(w.Method),
		Headers:     w.Headers,
		QueryString: rawOrNil(w.QueryString),
		Cookies:     rawOrNil(w.Cookies),
		Data:        rawOrNil(w.Data),
		Env:         rawOrNil(w.Env),
		Fragment:    lenientString(w.Fragment),
	}
	return nil
}

// UnmarshalJSON reads the SDK's name and version; a malformed integrations list is
// ignored.
func (s *SDK) UnmarshalJSON(b []byte) error {
	*s = SDK{}
	if firstByte(b) != '{' {
		return nil
	}
	var w struct {
		Name         json.RawMessage `json:"name"`
		Version      json.RawMessage `json:"version"`
		Integrations json.RawMessage `json:"integrations"`
		Packages     json.RawMessage `json:"packages"`
	}
	_ = json.Unmarshal(b, &w)
	*s = SDK{
		Name:         lenientString(w.Name),
		Version:      lenientString(w.Version),
		Integrations: lenientStrings(w.Integrations),
		Packages:     rawOrNil(w.Packages),
	}
	return nil
}

// decode reads one exception object; it reports false for anything else.
func (ex *Exception) decode(b []byte) bool {
	if firstByte(b) != '{' {
		return false
	}
	var w struct {
		Type       json.RawMessage `json:"type"`
		Value      json.RawMessage `json:"value"`
		Module     json.RawMessage `json:"module"`
		ThreadID   json.RawMessage `json:"thread_id"`
		Mechanism  json.RawMessage `json:"mechanism"`
		Stacktrace *Stacktrace     `json:"stacktrace"`
	}
	_ = json.Unmarshal(b, &w)
	*ex = Exception{
		Type:       lenientString(w.Type),
		Value:      lenientString(w.Value),
		Module:     lenientString(w.Module),
		ThreadID:   lenientString(w.ThreadID),
		Mechanism:  rawOrNil(w.Mechanism),
		Stacktrace: w.Stacktrace,
	}
	return true
}

// wireEvent is the event as sent, before the polymorphic fields are settled. Its own
// fields shadow Event's of the same JSON name.
type wireEvent struct {
	Event
	EventID     json.RawMessage `json:"event_id"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Level       json.RawMessage `json:"level"`
	Message     json.RawMessage `json:"message"`
	LogEntry    json.RawMessage `json:"logentry"`
	Fingerprint json.RawMessage `json:"fingerprint"`
	Cuts        json.RawMessage `json:"_cuts"`

	// The interface names of Sentry's legacy store protocol (raven clients).
	LegacyException   Exceptions      `json:"sentry.interfaces.Exception"`
	LegacyMessage     json.RawMessage `json:"sentry.interfaces.Message"`
	LegacyStacktrace  *Stacktrace     `json:"sentry.interfaces.Stacktrace"`
	LegacyUser        *User           `json:"sentry.interfaces.User"`
	LegacyRequest     *Request        `json:"sentry.interfaces.Http"`
	LegacyBreadcrumbs Breadcrumbs     `json:"sentry.interfaces.Breadcrumbs"`
}

// DecodeEvent reads one event payload as the SDKs send it (an envelope's event item or a
// legacy store body), accepting the forms Sentry accepts: exception, threads and
// breadcrumbs as {"values": [...]} or a list; tags as an object or a list of pairs;
// message as a string or an object; a timestamp as RFC 3339 or Unix seconds; ids and tag
// values as numbers. A field of the wrong type is ignored and recorded in Cuts rather
// than failing the event; only a payload that is not a JSON object is an error, wrapping
// ErrInvalid. A missing or malformed event_id is replaced by a new one. DecodeEvent does
// not trim: call Normalize.
//
// Most payloads are read in one pass (decodeFast); those in a form it does not take are
// read again by encoding/json and the lenient UnmarshalJSON methods, to the same Event.
func DecodeEvent(payload []byte) (Event, error) {
	e, err := decodeEvent(payload, true)
	if err == nil && e.EventID == "" {
		e.EventID = NewEventID()
	}
	return e, err
}

// decodeEvent is DecodeEvent without the new event id: the EventID is empty when the
// payload has no valid one. fast false skips decodeFast, for tests to compare the two.
func decodeEvent(payload []byte, fast bool) (Event, error) {
	if firstByte(payload) != '{' {
		return Event{}, fmt.Errorf("event: %w: not a JSON object", ErrInvalid)
	}
	var w wireEvent
	var cuts []Cut
	if !fast || !w.decodeFast(payload) {
		w = wireEvent{}
		if err := json.Unmarshal(payload, &w); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return Event{}, fmt.Errorf("event: %w: %w", ErrInvalid, err)
			}
			// encoding/json carries on past a field of the wrong type and reports the first.
			cuts = append(cuts, Cut{Field: strings.TrimPrefix(te.Field, "Event."), Reason: CutInvalid})
		}
	}
	e := w.Event
	e.Size = len(payload)
	// An event Ferry stored and reads back keeps the cuts made when it arrived.
	if firstByte(w.Cuts) == '[' {
		_ = json.Unmarshal(w.Cuts, &e.Cuts)
	}
	e.Cuts = append(e.Cuts, cuts...)

	e.EventID = lenientString(w.EventID)
	if id, ok := normalizeEventID(e.EventID); ok {
		e.EventID = id
	} else {
		if e.EventID != "" {
			e.Cuts = append(e.Cuts, Cut{Field: "event_id", Reason: CutInvalid})
		}
		e.EventID = ""
	}
	if len(w.Timestamp) > 0 && string(w.Timestamp) != "null" {
		ts, ok := parseTimestamp(w.Timestamp)
		if !ok {
			e.Cuts = append(e.Cuts, Cut{Field: "timestamp", Reason: CutInvalid})
		}
		e.Timestamp = ts
	}
	e.Level = parseLevel(w.Level)
	e.LogEntry = mergeLogEntries(decodeLogEntry(w.LogEntry), decodeLogEntry(w.Message), decodeLogEntry(w.LegacyMessage))
	e.Fingerprint = lenientStrings(w.Fingerprint)

	if e.Exception == nil {
		e.Exception = w.LegacyException
	}
	if e.Stacktrace == nil {
		e.Stacktrace = w.LegacyStacktrace
	}
	if e.User == nil {
		e.User = w.LegacyUser
	}
	if e.Request == nil {
		e.Request = w.LegacyRequest
	}
	if e.Breadcrumbs == nil {
		e.Breadcrumbs = w.LegacyBreadcrumbs
	}
	return e, nil
}

// NewEventID returns a random event id: 32 lowercase hex digits, a UUID v4 without dashes
// as the SDKs make them.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// normalizeEventID accepts 32 hex digits, with or without a UUID's dashes, in any case.
func normalizeEventID(s string) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(s) != 32 {
		return "", false
	}
	for i := range len(s) {
		if !isHex(s[i]) {
			return "", false
		}
	}
	return s, true
}

// decodeLogEntry reads a message sent as a string or as {formatted, message, params}.
func decodeLogEntry(raw json.RawMessage) *LogEntry {
	switch firstByte(raw) {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return nil
		}
		return &LogEntry{Formatted: s}
	case '{':
		var w struct {
			Formatted json.RawMessage `json:"formatted"`
			Message   json.RawMessage `json:"message"`
			Params    json.RawMessage `json:"params"`
		}
		_ = json.Unmarshal(raw, &w)
		le := &LogEntry{Formatted: lenientString(w.Formatted), Message: lenientString(w.Message)}
		switch firstByte(w.Params) {
		case '[':
			_ = json.Unmarshal(w.Params, &le.Params)
		case 0, 'n':
		default: // a single parameter or a named-parameter object
			le.Params = []json.RawMessage{w.Params}
		}
		if le.Formatted == "" && le.Message == "" {
			return nil
		}
		return le
	}
	return nil
}

// mergeLogEntries fills the first entry's empty fields from the next ones.
func mergeLogEntries(entries ...*LogEntry) *LogEntry {
	var out *LogEntry
	for _, le := range entries {
		if le == nil {
			continue
		}
		if out == nil {
			c := *le
			out = &c
			continue
		}
		if out.Formatted == "" {
			out.Formatted = le.Formatted
		}
		if out.Message == "" {
			out.Message, out.Params = le.Message, le.Params
		}
	}
	return out
}

// parseLevel reads a level name, or a Python logging number as old raven clients send.
// Aliases map onto Sentry's five names; anything unknown is "" and Normalize makes it
// error.
func parseLevel(raw json.RawMessage) Level {
	switch firstByte(raw) {
	case '"':
		if t, ok := plainString(raw); ok {
			return normalizeLevel(Level(t)) // keeps nothing of t: no copy
		}
		var s string
		_ = json.Unmarshal(raw, &s)
		return normalizeLevel(Level(s))
	case 0, 'n', '{', '[', 't', 'f':
		return ""
	}
	n, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case err != nil:
		return ""
	case n >= 50:
		return LevelFatal
	case n >= 40:
		return LevelError
	case n >= 30:
		return LevelWarning
	case n >= 20:
		return LevelInfo
	default:
		return LevelDebug
	}
}

// normalizeLevel maps the aliases SDKs use onto Sentry's names; unknown names become "".
func normalizeLevel(l Level) Level {
	switch strings.ToLower(strings.TrimSpace(string(l))) {
	case "fatal", "critical":
		return LevelFatal
	case "error", "err", "exception":
		return LevelError
	case "warning", "warn":
		return LevelWarning
	case "info", "log", "notice":
		return LevelInfo
	case "debug", "trace":
		return LevelDebug
	}
	return ""
}

// parseTimestamp reads RFC 3339 (a missing zone is UTC), or Unix seconds as a number or a
// string.
func parseTimestamp(raw json.RawMessage) (time.Time, bool) {
	switch firstByte(raw) {
	case '"':
		if t, ok := plainString(raw); ok {
			return parseTimestampText(string(t)) // keeps nothing of t: no copy
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, false
		}
		return parseTimestampText(s)
	case 0, 'n', '{', '[', 't', 'f':
		return time.Time{}, false
	}
	return parseTimestampText(string(raw))
}

func parseTimestampText(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return checkYear(t.UTC())
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxUnix {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return checkYear(time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC())
}

// maxUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 (and json.Marshal) can write.
const maxUnix = 253402300799

// checkYear keeps times from 1970 to 9999: older ones are clock errors, and json.Marshal
// cannot write years past 9999.
func checkYear(t time.Time) (time.Time, bool) {
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// valuesOf returns the items of {"values": [...]} or of a bare list; with single, a lone
// object counts as a one-item list.
func valuesOf(b []byte, single bool) []json.RawMessage {
	var list []json.RawMessage
	switch firstByte(b) {
	case '[':
		_ = json.Unmarshal(b, &list)
	case '{':
		var w struct {
			Values json.RawMessage `json:"values"`
		}
		_ = json.Unmarshal(b, &w)
		if firstByte(w.Values) == '[' {
			_ = json.Unmarshal(w.Values, &list)
		} else if single && w.Values == nil {
			list = []json.RawMessage{b}
		}
	}
	return list
}

// lenientString returns a JSON string's value, a number's or boolean's text, nothing for
// null, and an object's or list's compact JSON.
func lenientString(raw json.RawMessage) string {
	switch firstByte(raw) {
	case 0, 'n':
		return ""
	case '"':
		if t, ok := plainString(raw); ok {
			return string(t)
		}
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '{', '[':
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return ""
		}
		return validUTF8(buf.String())
	}
	return validUTF8(string(bytes.TrimSpace(raw)))
}

// plainString returns the text of a JSON string without escapes, of valid UTF-8: most
// strings, whose text is the bytes between the quotes, with no need for encoding/json's
// second pass over them.
func plainString(raw json.RawMessage) ([]byte, bool) {
	t := bytes.TrimSpace(raw)
	if len(t) < 2 || bytes.IndexByte(t, '\\') >= 0 || !utf8.Valid(t) {
		return nil, false
	}
	return t[1 : len(t)-1], true
}

// validUTF8 replaces each byte that is not UTF-8 with U+FFFD, as encoding/json does when
// it decodes or encodes a string, so that a value reads back the same after a round trip.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// lenientStrings reads a list of strings, each item as lenientString does; anything but
// a list is nil.
func lenientStrings(raw json.RawMessage) []string {
	if firstByte(raw) != '[' {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, lenientString(it))
	}
	return out
}

// lenientInt reads a non-negative integer sent as a number or a numeric string; anything
// else is 0.
func lenientInt(raw json.RawMessage) int {
	s := lenientString(raw)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > math.MaxInt32 {
		return 0
	}
	return lineNumber(int(f))
}

// rawOrNil drops null, so that omitempty leaves the field out.
func rawOrNil(raw json.RawMessage) json.RawMessage {
	if firstByte(raw) == 0 || firstByte(raw) == 'n' {
		return nil
	}
	return raw
}

// firstByte returns the first non-space byte of a JSON text, 0 for none.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// The strict shapes: what the SDKs send when every field has the documented type. The
// list types and Frame try them first, since one pass of encoding/json over a whole
// exception is several times faster than the lenient path's field-by-field decoding; on
// any type error they decode that part again leniently. Both paths yield the same values
// for the same input. DecodeEvent's decodeFast reads these shapes too, without
// encoding/json, and takes their member names from them (jsonNames).
type (
	strictFrame Frame // Frame without its UnmarshalJSON

	strictStacktrace struct {
		Frames        []strictFrame   `json:"frames"`
		FramesOmitted []int           `json:"frames_omitted"`
		Registers     json.RawMessage `json:"registers"`
	}

	strictException struct {
		Type       string            `json:"type"`
		Value      string            `json:"value"`
		Module     string            `json:"module"`
		ThreadID   json.RawMessage   `json:"thread_id"` // a number or a string
		Mechanism  json.RawMessage   `json:"mechanism"`
		Stacktrace *strictStacktrace `json:"stacktrace"`
	}

	strictThread struct {
		ID         json.RawMessage   `json:"id"` // a number or a string
		Name       string            `json:"name"`
		Crashed    bool              `json:"crashed"`
		Current    bool              `json:"current"`
		Main       bool              `json:"main"`
		Stacktrace *strictStacktrace `json:"stacktrace"`
	}

	strictBreadcrumb struct {
		Timestamp json.RawMessage `json:"timestamp"` // RFC 3339 or Unix seconds
		Type      string          `json:"type"`
		Category  string          `json:"category"`
		Level     string          `json:"level"`
		Message   string          `json:"message"`
		Data      json.RawMessage `json:"data"`
	}
)

// decodeStrict decodes {"values": [...]} or a list of T, and with single a lone object, in
// one pass; ok is false when any value has the wrong type.
func decodeStrict[T any](b []byte, single bool) (items []T, ok bool) {
	switch firstByte(b) {
	case '[':
		return items, json.Unmarshal(b, &items) == nil
	case '{':
		var w struct {
			Values *[]T `json:"values"`
		}
		if json.Unmarshal(b, &w) != nil {
			return nil, false
		}
		if w.Values != nil || !single {
			if w.Values == nil {
				return nil, true
			}
			return *w.Values, true
		}
		var one T
		return []T{one}, json.Unmarshal(b, &one) == nil
	}
	return nil, false
}

func (sf strictFrame) frame() Frame {
	f := Frame(sf)
	f.Vars = rawOrNil(f.Vars)
	f.Lineno, f.Colno = lineNumber(f.Lineno), lineNumber(f.Colno)
	return f
}

// stacktrace converts, dropping empty frames; nil stays nil.
func (ss *strictStacktrace) stacktrace() *Stacktrace {
	if ss == nil {
		return nil
	}
	st := &Stacktrace{Registers: rawOrNil(ss.Registers)}
	if len(ss.FramesOmitted) == 2 {
		st.FramesOmitted = ss.FramesOmitted
	}
	for _, sf := range ss.Frames {
		if f := sf.frame(); !reflect.ValueOf(f).IsZero() {
			st.Frames = append(st.Frames, f)
		}
	}
	return st
}

// lineNumber keeps line and column numbers from 0 to 2^31-1; others are 0, unknown.
func lineNumber(n int) int {
	if n < 0 || n > math.MaxInt32 {
		return 0
	}
	return n
}
