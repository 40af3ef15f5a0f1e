package envelope

import (
	"errors"
	"fmt"
)

// The errors every function here wraps, so the HTTP layer maps them to a status with
// errors.Is and passes the message on as the response body.
var (
	// ErrNoAuth means the request carries no Sentry credentials at all (401).
	ErrNoAuth = errors.New("no sentry credentials")
	// ErrBadAuth means the request carries credentials that cannot be read: a
	// malformed X-Sentry-Auth header, a public key of the wrong shape, a bad DSN (401).
	ErrBadAuth = errors.New("invalid sentry credentials")
	// ErrTooLarge means a limit was exceeded: the body, the decompressed body, one
	// event, or the number of items (413).
	ErrTooLarge = errors.New("payload too large")
	// ErrMalformed means the body cannot be decoded: corrupt or truncated compressed
	// data, an envelope that breaks the format, an event that is not a JSON object (400).
	ErrMalformed = errors.New("malformed payload")
	// ErrUnsupportedEncoding means a Content-Encoding this package does not decode. It
	// wraps ErrMalformed, so a caller that only knows ErrMalformed answers 400; one that
	// wants to can answer 415 instead.
	ErrUnsupportedEncoding = fmt.Errorf("%w: unsupported content encoding", ErrMalformed)
)

// ItemError is the error Parse returns when one envelope item breaks a rule. Like Relay,
// Parse then rejects the whole envelope; ItemError says which item it was, so the caller
// can tell an oversized event (413, as Sentry answers) from a broken attachment, and log
// it. It wraps ErrTooLarge or ErrMalformed.
type ItemError struct {
	// Index is the item's position in the envelope, from 0.
	Index int
	// Type is the item type as sent ("event", "attachment", ...), or "" when the item
	// header itself could not be read.
	Type string
	// Err says what is wrong; it wraps ErrTooLarge or ErrMalformed.
	Err error
}

// Error names the item and says what is wrong with it.
func (e *ItemError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("envelope item %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("envelope item %d (%s): %v", e.Index, e.Type, e.Err)
}

// Unwrap returns Err, so errors.Is(err, ErrTooLarge) sees through an ItemError.
func (e *ItemError) Unwrap() error { return e.Err }
