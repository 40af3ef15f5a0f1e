package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/release"
)

// listReleases answers GET /api/v1/releases?application=&environment=&revision=&result=
// &since=&until=&limit=&cursor=, newest first.
func (s *server) listReleases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, "application", "environment", "revision", "result", "since", "until", "limit", "cursor"); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	f := release.Filter{
		Application: q.Get("application"),
		Environment: q.Get("environment"),
		Revision:    q.Get("revision"),
		Result:      release.Result(q.Get("result")),
		Cursor:      q.Get("cursor"),
	}
	var err error
	if f.Since, err = timeParam(q, "since"); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if f.Until, err = timeParam(q, "until"); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if f.Limit, err = limitParam(q); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	page, err := s.opts.Releases.FindReleases(r.Context(), f)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// getRelease answers GET /api/v1/releases/{id}.
func (s *server) getRelease(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "release")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	rel, err := s.opts.Releases.GetRelease(r.Context(), id)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, rel)
}

// releaseTimeline answers GET /api/v1/releases/{id}/timeline?type=&limit=&cursor=, oldest first.
func (s *server) releaseTimeline(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "release")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	q := r.URL.Query()
	if err := onlyParams(q, "type", "limit", "cursor"); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	f := release.TimelineFilter{Cursor: q.Get("cursor")}
	for _, t := range q["type"] {
		for part := range strings.SplitSeq(t, ",") {
			f.Types = append(f.Types, release.EventType(part))
		}
	}
	if f.Limit, err = limitParam(q); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	tl, err := s.opts.Releases.Timeline(r.Context(), id, f)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, tl)
}

// onlyParams rejects query parameters the endpoint does not know, so a typo is not silently
// ignored and answered with unfiltered data.
func onlyParams(q url.Values, known ...string) error {
	for k := range q {
		if !slices.Contains(known, k) {
			return fmt.Errorf("%w: unknown query parameter %q (known: %s)", errBadRequest, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// idParam reads the path's {id}, the ID of a what (release, notification, issue).
func idParam(r *http.Request, what string) (int64, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: %s id %q is not a positive integer", errBadRequest, what, raw)
	}
	return id, nil
}

func timeParam(q url.Values, name string) (time.Time, error) {
	raw := q.Get(name)
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an RFC 3339 time such as 2026-11-25T20:00:00Z", errBadRequest, name, raw)
	}
	return t, nil
}

func limitParam(q url.Values) (int, error) {
	raw := q.Get("limit")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: limit %q is not a positive integer", errBadRequest, raw)
	}
	return n, nil
}
