// Package errtrack is the domain of Ferry's error tracker, the part that accepts what the
// official Sentry SDKs send: the event as the SDKs write it (decoded as leniently as Sentry
// does and trimmed to bounded limits), how events are grouped into issues (fingerprint,
// title, culprit), the status workflow, and when a resolved issue has regressed,
// judged by Ferry's own deploy order instead of release names. It holds no storage or
// transport code: the envelope subpackage unpacks requests and the store keeps issues.
package errtrack

import (
	"encoding/json"
	"errors"
	"time"
)

// ErrInvalid reports input that is not an event, or an action or value that breaks a rule;
// the wrapping error says which.
var ErrInvalid = errors.New("invalid input")

// ErrConflict reports an action the status does not allow (resolve a resolved
// issue).
var ErrConflict = errors.New("conflict")

// Level is an event's severity, as Sentry names it.
type Level string

// The levels Sentry knows, most severe first.
const (
	LevelFatal   Level = "fatal"
	LevelError   Level = "error"
	LevelWarning Level = "warning"
	LevelInfo    Level = "info"
	LevelDebug   Level = "debug"
)

// Event is one error event as the Sentry SDKs send it, in Sentry's canonical shape: what
// MarshalEvent (or json.Marshal, which writes the same bytes) writes DecodeEvent reads
// back unchanged. Only what Ferry shows or groups on is typed; contexts, extra data,
// request bodies and the like are kept as raw JSON.
type Event struct {
	// EventID is 32 lowercase hex digits.
	EventID string `json:"event_id"`
	// Timestamp is when the event happened, zero when the SDK did not say: the ingest
	// then fills in when it arrived.
	Timestamp   time.Time `json:"timestamp,omitzero"`
	Platform    string    `json:"platform,omitempty"`
	Level       Level     `json:"level,omitempty"`
	Logger      string    `json:"logger,omitempty"`
	Transaction string    `json:"transaction,omitempty"`
	ServerName  string    `json:"server_name,omitempty"`
	Release     string    `json:"release,omitempty"`
	Dist        string    `json:"dist,omitempty"`
	Environment string    `json:"environment,omitempty"`
	// LogEntry is the message, whether the SDK sent it as "message" (a string or an
	// object) or as "logentry".
	LogEntry *LogEntry `json:"logentry,omitempty"`
	// Exception lists chained exceptions oldest first: the last one is the exception
	// that was raised (or, in Go, the outermost wrapper).
	Exception Exceptions `json:"exception,omitempty"`
	// Stacktrace is an event-level stack trace, sent by some SDKs beside a message.
	Stacktrace  *Stacktrace                `json:"stacktrace,omitempty"`
	Threads     Threads                    `json:"threads,omitempty"`
	Tags        Pairs                      `json:"tags,omitempty"`
	Breadcrumbs Breadcrumbs                `json:"breadcrumbs,omitempty"`
	User        *User                      `json:"user,omitempty"`
	Request     *Request                   `json:"request,omitempty"`
	Contexts    map[string]json.RawMessage `json:"contexts,omitempty"`
	Extra       map[string]json.RawMessage `json:"extra,omitempty"`
	// Fingerprint is the client's grouping override; see Fingerprint.
	Fingerprint []string          `json:"fingerprint,omitempty"`
	Modules     map[string]string `json:"modules,omitempty"`
	SDK         *SDK              `json:"sdk,omitempty"`

	// Cuts records what DecodeEvent dropped and Normalize trimmed, so the panel can say
	// that a value is shorter than what the SDK sent.
	Cuts []Cut `json:"_cuts,omitempty"`
	// Size is the length in bytes of the payload DecodeEvent read.
	Size int `json:"-"`
}

// Cut is one thing taken out of an event: a field truncated or dropped, a list shortened.
type Cut struct {
	// Field is the path of the field, Sentry-style: "exception.values.0.stacktrace.frames".
	Field string `json:"field"`
	// Reason is CutTruncated, CutDropped or CutInvalid.
	Reason string `json:"reason"`
	// Original is the length before the cut: bytes of a string or raw value, items of a
	// list; zero for invalid values.
	Original int `json:"original,omitempty"`
}

// The reasons for a Cut.
const (
	// CutTruncated: a string or a list was shortened to its limit.
	CutTruncated = "truncated"
	// CutDropped: a value over its limit was removed whole (raw JSON cannot be cut).
	CutDropped = "dropped"
	// CutInvalid: a value of the wrong type or form was ignored or replaced.
	CutInvalid = "invalid"
)

// LogEntry is a message, with its template and parameters when the SDK sent them apart
// (logging integrations do: "user %s not found" with ["42"]).
type LogEntry struct {
	// Formatted is the message as shown, with the parameters filled in.
	Formatted string `json:"formatted,omitempty"`
	// Message is the template; grouping prefers it, so that the parameters do not split
	// an issue.
	Message string            `json:"message,omitempty"`
	Params  []json.RawMessage `json:"params,omitempty"`
}

// Exception is one exception of a chain.
type Exception struct {
	Type       string          `json:"type,omitempty"`
	Value      string          `json:"value,omitempty"`
	Module     string          `json:"module,omitempty"`
	ThreadID   string          `json:"thread_id,omitempty"`
	Mechanism  json.RawMessage `json:"mechanism,omitempty"`
	Stacktrace *Stacktrace     `json:"stacktrace,omitempty"`
}

// Stacktrace is a list of frames, oldest call first: the last frame is where the error
// was raised.
type Stacktrace struct {
	Frames []Frame `json:"frames"`
	// FramesOmitted is [start, end) of the frames Normalize cut out of the middle.
	FramesOmitted []int           `json:"frames_omitted,omitempty"`
	Registers     json.RawMessage `json:"registers,omitempty"`
}

// Frame is one stack frame.
type Frame struct {
	Filename    string `json:"filename,omitempty"`
	AbsPath     string `json:"abs_path,omitempty"`
	Function    string `json:"function,omitempty"`
	RawFunction string `json:"raw_function,omitempty"`
	Module      string `json:"module,omitempty"`
	Package     string `json:"package,omitempty"`
	Platform    string `json:"platform,omitempty"`
	Lineno      int    `json:"lineno,omitempty"`
	Colno       int    `json:"colno,omitempty"`
	// InApp says whether the frame is the application's own code; nil when the SDK did
	// not say.
	InApp           *bool           `json:"in_app,omitempty"`
	ContextLine     string          `json:"context_line,omitempty"`
	PreContext      []string        `json:"pre_context,omitempty"`
	PostContext     []string        `json:"post_context,omitempty"`
	Vars            json.RawMessage `json:"vars,omitempty"`
	InstructionAddr string          `json:"instruction_addr,omitempty"`
	Symbol          string          `json:"symbol,omitempty"`
}

// Thread is one thread of a crash report, with its stack trace.
type Thread struct {
	ID         string      `json:"id,omitempty"`
	Name       string      `json:"name,omitempty"`
	Crashed    bool        `json:"crashed,omitempty"`
	Current    bool        `json:"current,omitempty"`
	Main       bool        `json:"main,omitempty"`
	Stacktrace *Stacktrace `json:"stacktrace,omitempty"`
}

// Breadcrumb is one entry of the trail of events that led to the error.
type Breadcrumb struct {
	Timestamp time.Time       `json:"timestamp,omitzero"`
	Type      string          `json:"type,omitempty"`
	Category  string          `json:"category,omitempty"`
	Level     Level           `json:"level,omitempty"`
	Message   string          `json:"message,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// User is who the error happened to.
type User struct {
	ID        string          `json:"id,omitempty"`
	Email     string          `json:"email,omitempty"`
	IPAddress string          `json:"ip_address,omitempty"`
	Username  string          `json:"username,omitempty"`
	Name      string          `json:"name,omitempty"`
	Segment   string          `json:"segment,omitempty"`
	Geo       json.RawMessage `json:"geo,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Request is the HTTP request being served when the error happened. Headers are pairs
// whichever form the SDK used; the rest is kept as sent.
type Request struct {
	URL         string          `json:"url,omitempty"`
	Method      string          `json:"method,omitempty"`
	Headers     Pairs           `json:"headers,omitempty"`
	QueryString json.RawMessage `json:"query_string,omitempty"`
	Cookies     json.RawMessage `json:"cookies,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Env         json.RawMessage `json:"env,omitempty"`
	Fragment    string          `json:"fragment,omitempty"`
}

// SDK names the client that sent the event.
type SDK struct {
	Name         string          `json:"name,omitempty"`
	Version      string          `json:"version,omitempty"`
	Integrations []string        `json:"integrations,omitempty"`
	Packages     json.RawMessage `json:"packages,omitempty"`
}

// Pair is one key and value, of a tag or a header.
type Pair struct {
	Key   string
	Value string
}

// Pairs is an ordered list of keys and values. It decodes from an object or from a list
// of [key, value] pairs, with non-string values written as JSON text, and encodes as the
// list, Sentry's canonical form, which keeps order and repeated keys.
type Pairs []Pair

// Get returns the value of the first pair with key k.
func (p Pairs) Get(k string) (string, bool) {
	for _, kv := range p {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return "", false
}

// MarshalJSON writes the list of [key, value] pairs.
func (p Pairs) MarshalJSON() ([]byte, error) {
	list := make([][2]string, len(p))
	for i, kv := range p {
		list[i] = [2]string{kv.Key, kv.Value}
	}
	return json.Marshal(list)
}

// Exceptions is a chain of exceptions. It decodes from {"values": [...]}, from a bare
// list, or from a single exception object, and encodes as {"values": [...]}.
type Exceptions []Exception

// MarshalJSON writes {"values": [...]}.
func (x Exceptions) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Values []Exception `json:"values"`
	}{x})
}

// Threads is a list of threads; it decodes from {"values": [...]} or a bare list and
// encodes as {"values": [...]}.
type Threads []Thread

// MarshalJSON writes {"values": [...]}.
func (t Threads) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Values []Thread `json:"values"`
	}{t})
}

// Breadcrumbs is a list of breadcrumbs, oldest first; it decodes from {"values": [...]}
// or a bare list and encodes as {"values": [...]}.
type Breadcrumbs []Breadcrumb

// MarshalJSON writes {"values": [...]}.
func (bc Breadcrumbs) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Values []Breadcrumb `json:"values"`
	}{bc})
}
