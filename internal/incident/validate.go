package incident

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on an incoming alert, checked by Validate. They keep one alert well under what
// both stores index and what a page of the panel can show; a body's total size is the HTTP
// layer's limit.
const (
	// MaxNameLen bounds resource, event, environment, group, origin, type, customer and
	// every entry of tags, service and correlate, in bytes.
	MaxNameLen = 1024
	// MaxValueLen bounds value, in bytes.
	MaxValueLen = 4096
	// MaxTextLen bounds text, in bytes.
	MaxTextLen = 64 << 10
	// MaxRawDataLen bounds rawData, in bytes.
	MaxRawDataLen = 1 << 20
	// MaxListLen bounds the number of entries in tags, service and correlate.
	MaxListLen = 256
	// MaxAttributes bounds the number of top-level attributes.
	MaxAttributes = 256
	// MaxAttributesSize bounds the bytes of all attribute keys and string values, nested
	// ones included.
	MaxAttributesSize = 256 << 10
	// MaxAttributesDepth bounds how deeply attribute values nest.
	MaxAttributesDepth = 32
	// MaxTimeout bounds timeout, in seconds (ten years).
	MaxTimeout = 10 * 365 * 24 * 3600
)

// FieldError reports the field of an alert that breaks a rule. It wraps ErrInvalid.
type FieldError struct {
	Field string // Alerta's JSON name, such as "resource" or "tags[3]"
	Msg   string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusOpen, StatusAssign, StatusAck, StatusShelved, StatusBlackout,
		StatusClosed, StatusExpired, StatusUnknown:
		return true
	}
	return false
}

// Validate checks an incoming alert before Receive: resource, event, environment and a
// valid severity are required; a status, when set, must be valid; every string must be
// valid UTF-8 without NUL bytes (PostgreSQL stores neither) and within the Max bounds. It
// returns every *FieldError found, joined, or nil.
func (a *Alert) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	str := func(field, s string, maxLen int, required bool) {
		switch {
		case required && strings.TrimSpace(s) == "":
			add(field, "required")
		default:
			if msg := checkString(s, maxLen); msg != "" {
				add(field, "%s", msg)
			}
		}
	}
	list := func(field string, l []string) {
		if len(l) > MaxListLen {
			add(field, "more than %d entries", MaxListLen)
			return
		}
		for i, s := range l {
			if msg := checkString(s, MaxNameLen); msg != "" {
				add(fmt.Sprintf("%s[%d]", field, i), "%s", msg)
				return
			}
		}
	}

	str("resource", a.Resource, MaxNameLen, true)
	str("event", a.Event, MaxNameLen, true)
	str("environment", a.Environment, MaxNameLen, true)
	switch {
	case a.Severity == "":
		add("severity", "required")
	case !a.Severity.Valid():
		add("severity", "%q is not a severity", a.Severity)
	}
	if a.Status != "" && !a.Status.Valid() {
		add("status", "%q is not a status", a.Status)
	}
	list("correlate", a.Correlate)
	list("service", a.Service)
	str("group", a.Group, MaxNameLen, false)
	str("value", a.Value, MaxValueLen, false)
	str("text", a.Text, MaxTextLen, false)
	list("tags", a.Tags)
	if err := checkAttributes(a.Attributes); err != nil {
		errs = append(errs, err)
	}
	str("origin", a.Origin, MaxNameLen, false)
	str("type", a.EventType, MaxNameLen, false)
	if a.Timeout < 0 || a.Timeout > MaxTimeout {
		add("timeout", "must be between 0 and %d seconds", MaxTimeout)
	}
	str("rawData", a.RawData, MaxRawDataLen, false)
	str("customer", a.Customer, MaxNameLen, false)
	if a.DuplicateCount < 0 {
		add("duplicateCount", "must not be negative")
	}
	return errors.Join(errs...)
}

// checkString returns what is wrong with s, or "".
func checkString(s string, maxLen int) string {
	switch {
	case len(s) > maxLen:
		return fmt.Sprintf("longer than %d bytes", maxLen)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}

func checkAttributes(attrs map[string]any) error {
	if len(attrs) > MaxAttributes {
		return &FieldError{Field: "attributes", Msg: fmt.Sprintf("more than %d attributes", MaxAttributes)}
	}
	size := 0
	for k, v := range attrs {
		if k == "" {
			return &FieldError{Field: "attributes", Msg: "empty attribute name"}
		}
		if msg := checkString(k, MaxNameLen); msg != "" {
			return &FieldError{Field: "attributes", Msg: "attribute name " + msg}
		}
		size += len(k)
		if err := walkAttribute("attributes."+k, v, 1, &size); err != nil {
			return err
		}
	}
	return nil
}

// walkAttribute checks the strings inside one attribute value and adds their bytes to
// size, failing as soon as the total passes MaxAttributesSize.
func walkAttribute(field string, v any, depth int, size *int) error {
	if depth > MaxAttributesDepth {
		return &FieldError{Field: field, Msg: fmt.Sprintf("nested deeper than %d", MaxAttributesDepth)}
	}
	switch v := v.(type) {
	case string:
		*size += len(v)
		if msg := checkString(v, MaxAttributesSize); msg != "" {
			return &FieldError{Field: field, Msg: msg}
		}
	case json.Number:
		// Kept as written so big integers stay exact, but it must read back as a float64,
		// which is how a stored alert's attributes are decoded.
		*size += len(v)
		if f, err := strconv.ParseFloat(string(v), 64); err != nil || math.IsInf(f, 0) {
			return &FieldError{Field: field, Msg: "number out of range"}
		}
	case float64:
		*size += 8
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &FieldError{Field: field, Msg: "number out of range"}
		}
	case map[string]any:
		for k, e := range v {
			*size += len(k)
			if msg := checkString(k, MaxNameLen); msg != "" {
				return &FieldError{Field: field, Msg: "key " + msg}
			}
			if err := walkAttribute(field, e, depth+1, size); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := walkAttribute(field, e, depth+1, size); err != nil {
				return err
			}
		}
	default:
		*size += 8 // numbers, booleans, null
	}
	if *size > MaxAttributesSize {
		return &FieldError{Field: "attributes", Msg: fmt.Sprintf("larger than %d bytes", MaxAttributesSize)}
	}
	return nil
}
