// Package envelope decodes what Sentry SDKs send to an ingest endpoint: the credentials
// (X-Sentry-Auth, ?sentry_key= or the envelope's dsn), the request body with its
// Content-Encoding undone, the envelope and its items
// (https://develop.sentry.dev/sdk/data-model/envelopes/), and the event of the legacy store
// endpoint. It is pure — requests and bytes in, values out — and bounds every length a
// client gives it by Limits, so it can face the internet; its parsers are fuzzed.
//
// An ingest handler calls ParseAuth, then Body, then Parse (or ParseStore for
// /api/{id}/store/), and when ParseAuth found no credentials, Header.Auth on the parsed
// envelope. Every error wraps one of ErrNoAuth, ErrBadAuth (401), ErrTooLarge (413) or
// ErrMalformed (400), and its message is fit to send back to the client.
package envelope

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Item types Sentry defines. The list is open: an envelope may carry any type, and Parse
// keeps unknown ones as they are.
const (
	TypeEvent           = "event"
	TypeTransaction     = "transaction"
	TypeSession         = "session"
	TypeSessions        = "sessions"
	TypeAttachment      = "attachment"
	TypeClientReport    = "client_report"
	TypeCheckIn         = "check_in"
	TypeStatsd          = "statsd"
	TypeProfile         = "profile"
	TypeReplayEvent     = "replay_event"
	TypeReplayRecording = "replay_recording"
	TypeUserReport      = "user_report"
	TypeFeedback        = "feedback"
	TypeLog             = "log"
	TypeSpan            = "span"
)

// Envelope is a parsed envelope. Its raw headers and payloads are sub-slices of the body
// given to Parse, not copies: the body must not change while they are in use.
type Envelope struct {
	Header Header
	Items  []Item
}

// Header is the envelope header, the first line of the envelope.
type Header struct {
	// EventID is the event's ID as 32 lower-case hex digits (sent with or without
	// dashes), or "" when the header has none. Sentry answers an envelope with it.
	EventID string
	// DSN is the dsn field as sent, or "". Header.Auth parses it.
	DSN string
	// SentAt is when the SDK sent the envelope, for clock-drift correction; zero when
	// absent or unreadable (it is advisory, so a bad one does not reject the envelope).
	SentAt time.Time
	// SDK names the SDK, when the header says; a malformed sdk field is ignored.
	SDK SDK
	// Raw is the whole header line, for fields not decoded here (trace, ...).
	Raw json.RawMessage
}

// SDK identifies the SDK that sent an envelope.
type SDK struct {
	Name    string `json:"name"`    // "sentry.go", "sentry.javascript.node", ...
	Version string `json:"version"` // "0.50.0"
}

// Item is one envelope item: an item header and a payload.
type Item struct {
	// Type is the item type as sent: one of the Type constants, or any other string.
	Type string
	// ContentType, Filename and AttachmentType are the item header fields of those
	// names (content_type, filename, attachment_type), or "".
	ContentType    string
	Filename       string
	AttachmentType string
	// Header is the whole item header line.
	Header json.RawMessage
	// Payload is the item's payload, without the newline that ends it.
	Payload []byte
}

// IsEvent reports whether the item is an error event, the item an error tracker stores.
func (it Item) IsEvent() bool { return it.Type == TypeEvent }

// Event returns the envelope's event item. Parse allows at most one, as Sentry does.
func (e Envelope) Event() (Item, bool) {
	for _, it := range e.Items {
		if it.IsEvent() {
			return it, true
		}
	}
	return Item{}, false
}

// Parse decodes an envelope: a header line (a JSON object), then items, each an item
// header line (a JSON object with a type) and a payload. A payload is exactly the item
// header's length bytes, followed by a newline or the end of the body; without a length
// it runs to the next newline. Blank lines before the header and between items are
// skipped, as Relay does.
//
// An item of any type is kept. An event or transaction payload over MaxEvent bytes is
// ErrTooLarge and an event payload that fails CheckEvent is ErrMalformed; these and any
// broken item reject the whole envelope, as Relay does, with an *ItemError that names the
// item, so the caller can tell an oversized event from the rest. Then the returned
// Envelope still holds the header, for logging its event ID.
//
// Parse only reads body. On success, EventID may still be "" (Sentry then takes the
// event payload's event_id, or makes one up).
func Parse(body []byte, limits Limits) (Envelope, error) {
	l := limits.withDefaults()
	if int64(len(body)) > l.MaxDecompressed {
		return Envelope{}, fmt.Errorf("%w: envelope is %d bytes, over the %d-byte limit", ErrTooLarge, len(body), l.MaxDecompressed)
	}
	start := 0
	for start < len(body) && isSpace(body[start]) {
		start++
	}
	line, off := cutLine(body, start)
	line = bytes.TrimRight(line, " \t\r")
	if len(line) == 0 {
		return Envelope{}, fmt.Errorf("%w: envelope has no header line", ErrMalformed)
	}
	h, err := parseHeader(line)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Header: h}
	hasEvent := false
	for i := 0; ; i++ {
		for off < len(body) && isSpace(body[off]) {
			off++
		}
		if off >= len(body) {
			break
		}
		if i == l.MaxItems {
			return Envelope{Header: h}, fmt.Errorf("%w: envelope has more than %d items", ErrTooLarge, l.MaxItems)
		}
		it, next, err := parseItem(body, off)
		if err == nil {
			err = checkItem(it, l)
		}
		if err == nil && it.IsEvent() {
			if hasEvent {
				err = fmt.Errorf("%w: a second event item (an envelope carries at most one)", ErrMalformed)
			}
			hasEvent = true
		}
		if err != nil {
			return Envelope{Header: h}, &ItemError{Index: i, Type: it.Type, Err: err}
		}
		env.Items = append(env.Items, it)
		off = next
	}
	return env, nil
}

// headerJSON is the envelope header as decoded. Only event_id and dsn are held to their
// type; the rest is advisory and read leniently.
type headerJSON struct {
	EventID *string         `json:"event_id"`
	DSN     *string         `json:"dsn"`
	SentAt  json.RawMessage `json:"sent_at"`
	SDK     json.RawMessage `json:"sdk"`
}

func parseHeader(line []byte) (Header, error) {
	if line[0] != '{' {
		return Header{}, fmt.Errorf("%w: envelope header is not a JSON object", ErrMalformed)
	}
	var hj headerJSON
	if err := json.Unmarshal(line, &hj); err != nil {
		return Header{}, fmt.Errorf("%w: envelope header: %s", ErrMalformed, jsonErr(err))
	}
	h := Header{Raw: line}
	if hj.EventID != nil && *hj.EventID != "" {
		id, err := uuid.Parse(*hj.EventID)
		if err != nil || len(*hj.EventID) != 32 && len(*hj.EventID) != 36 {
			return Header{}, fmt.Errorf("%w: envelope header: event_id is not 32 hex digits or a UUID", ErrMalformed)
		}
		h.EventID = strings.ReplaceAll(id.String(), "-", "")
	}
	if hj.DSN != nil {
		h.DSN = *hj.DSN
	}
	var sentAt string
	if json.Unmarshal(hj.SentAt, &sentAt) == nil {
		if t, err := time.Parse(time.RFC3339Nano, sentAt); err == nil {
			h.SentAt = t
		}
	}
	if json.Unmarshal(hj.SDK, &h.SDK) != nil {
		h.SDK = SDK{}
	}
	return h, nil
}

// itemHeaderJSON is an item header as decoded: these fields must have these types.
type itemHeaderJSON struct {
	Type           *string `json:"type"`
	Length         *int64  `json:"length"`
	ContentType    string  `json:"content_type"`
	Filename       string  `json:"filename"`
	AttachmentType string  `json:"attachment_type"`
}

// parseItem decodes the item whose header starts at body[off], and returns it with the
// offset just past its payload's newline. On error the item holds what was read of it.
func parseItem(body []byte, off int) (Item, int, error) {
	line, start := cutLine(body, off)
	line = bytes.TrimRight(line, " \t\r")
	if len(line) == 0 || line[0] != '{' {
		return Item{}, 0, fmt.Errorf("%w: item header is not a JSON object", ErrMalformed)
	}
	var ih itemHeaderJSON
	if err := json.Unmarshal(line, &ih); err != nil {
		return Item{}, 0, fmt.Errorf("%w: item header: %s", ErrMalformed, jsonErr(err))
	}
	if ih.Type == nil || *ih.Type == "" {
		return Item{}, 0, fmt.Errorf("%w: item header has no type", ErrMalformed)
	}
	it := Item{
		Type:           *ih.Type,
		ContentType:    ih.ContentType,
		Filename:       ih.Filename,
		AttachmentType: ih.AttachmentType,
		Header:         line,
	}
	if ih.Length == nil {
		end := len(body)
		if i := bytes.IndexByte(body[start:], '\n'); i >= 0 {
			end = start + i
		}
		it.Payload = body[start:end]
		return it, end + 1, nil
	}
	n := *ih.Length
	left := len(body) - start
	switch {
	case n < 0:
		return it, 0, fmt.Errorf("%w: item length %d is negative", ErrMalformed, n)
	case n > int64(left):
		return it, 0, fmt.Errorf("%w: item length %d runs past the end of the envelope (%d bytes left)", ErrMalformed, n, left)
	}
	end := start + int(n)
	if end < len(body) && body[end] != '\n' {
		return it, 0, fmt.Errorf("%w: item length %d is wrong: the payload is not followed by a newline", ErrMalformed, n)
	}
	it.Payload = body[start:end]
	return it, end + 1, nil
}

// checkItem applies the per-item limits.
func checkItem(it Item, l Limits) error {
	if it.Type != TypeEvent && it.Type != TypeTransaction {
		return nil
	}
	if int64(len(it.Payload)) > l.MaxEvent {
		return fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit", ErrTooLarge, it.Type, len(it.Payload), l.MaxEvent)
	}
	if it.IsEvent() {
		return CheckEvent(it.Payload, l.MaxDepth)
	}
	return nil
}

// cutLine returns the line that starts at body[off], without its newline, and the offset
// of the next line (len(body) when there is none).
func cutLine(body []byte, off int) (line []byte, next int) {
	i := bytes.IndexByte(body[off:], '\n')
	if i < 0 {
		return body[off:], len(body)
	}
	return body[off : off+i], off + i + 1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// jsonErr describes a JSON decoding error without Go type names.
func jsonErr(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %s has the wrong type (%s)", typ.Field, typ.Value)
	}
	return err.Error()
}

// ParseStore decodes the body of the legacy store endpoint (POST /api/{id}/store/): one
// event as a JSON object. Sentry's oldest SDKs send it base64-encoded and zlib-compressed
// instead, so, as Sentry does, a body that does not start with '{' is base64-decoded and,
// if that is zlib data, inflated. The event is held to MaxEvent (ErrTooLarge) and to
// CheckEvent (ErrMalformed). The result may share memory with body.
func ParseStore(body []byte, limits Limits) (json.RawMessage, error) {
	l := limits.withDefaults()
	if int64(len(body)) > l.MaxDecompressed {
		return nil, fmt.Errorf("%w: store body is %d bytes, over the %d-byte limit", ErrTooLarge, len(body), l.MaxDecompressed)
	}
	ev := bytes.TrimSpace(body)
	if len(ev) > 0 && ev[0] != '{' {
		var err error
		if ev, err = decodeLegacy(ev, l.MaxEvent); err != nil {
			return nil, err
		}
	}
	if int64(len(ev)) > l.MaxEvent {
		return nil, fmt.Errorf("%w: event is %d bytes, over the %d-byte limit", ErrTooLarge, len(ev), l.MaxEvent)
	}
	if err := CheckEvent(ev, l.MaxDepth); err != nil {
		return nil, err
	}
	return json.RawMessage(ev), nil
}

// decodeLegacy undoes the base64 and zlib encoding of old SDKs' store bodies.
func decodeLegacy(b []byte, maxEvent int64) ([]byte, error) {
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(dec, b)
	if err != nil {
		// Some encoders leave out the padding.
		if n, err = base64.RawStdEncoding.Decode(dec, bytes.TrimRight(b, "=")); err != nil {
			return nil, fmt.Errorf("%w: store body is neither a JSON object nor base64", ErrMalformed)
		}
	}
	dec = dec[:n]
	// Trim only to look: zlib data may end in a byte that looks like a space.
	if text := bytes.TrimSpace(dec); len(text) > 0 && text[0] == '{' {
		return text, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(dec))
	if err != nil {
		return nil, fmt.Errorf("%w: store body is base64 but neither JSON nor zlib", ErrMalformed)
	}
	defer zr.Close()
	out, over, err := readCapped(zr, maxEvent, nil)
	switch {
	case over:
		return nil, fmt.Errorf("%w: event inflates to over %d bytes", ErrTooLarge, maxEvent)
	case err != nil:
		return nil, fmt.Errorf("%w: store body: zlib data is truncated or corrupt", ErrMalformed)
	}
	return bytes.TrimSpace(out), nil
}
