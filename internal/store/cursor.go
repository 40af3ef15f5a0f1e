package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/release"
)

// A cursor marks the last row of a page by its sort key, (time, id), so the next page starts
// right after it however many rows arrive meanwhile. It is opaque to clients: base64 of
// "<kind>:<unix microseconds>:<id>", where the kind stops one listing's cursor from being
// replayed against another.
const (
	releaseCursor  = "r"
	timelineCursor = "e"
)

// maxCursor bounds what decodeCursor reads; real cursors are under 40 bytes.
const maxCursor = 64

func encodeCursor(kind string, t time.Time, id int64) string {
	raw := kind + ":" + strconv.FormatInt(t.UnixMicro(), 10) + ":" + strconv.FormatInt(id, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor parses a cursor of the given kind. Anything encodeCursor would not have
// produced is release.ErrInvalid.
func decodeCursor(kind, s string) (time.Time, int64, error) {
	bad := fmt.Errorf("%w: malformed cursor", release.ErrInvalid)
	if len(s) > maxCursor {
		return time.Time{}, 0, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, 0, bad
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 || parts[0] != kind {
		return time.Time{}, 0, bad
	}
	micros, err1 := strconv.ParseInt(parts[1], 10, 64)
	id, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || id <= 0 {
		return time.Time{}, 0, bad
	}
	t := time.UnixMicro(micros).UTC()
	if y := t.Year(); y < 1 || y > 9999 { // no stored time lies outside these years
		return time.Time{}, 0, bad
	}
	// Only the canonical spelling is a cursor: no "+1", "007", or trailing base64 bits.
	if encodeCursor(kind, t, id) != s {
		return time.Time{}, 0, bad
	}
	return t, id, nil
}
