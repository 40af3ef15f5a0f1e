package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
)

// Notifications is what the notification API needs: the outbox and the channels, never a
// channel's secrets.
type Notifications interface {
	Channels() []notify.ChannelInfo
	Find(ctx context.Context, f notify.Filter) (notify.Page, error)
	Get(ctx context.Context, id int64) (notify.Notification, error)
	Test(ctx context.Context, channel, requester string) (notify.Notification, error)
}

// testTimeout bounds how long POST /api/v1/notifications/test waits for the message's
// outcome; a message still pending then is answered 202.
const testTimeout = 30 * time.Second

// listNotifications answers GET /api/v1/notifications?status=&channel=&release=&limit=&cursor=,
// newest first.
func (s *server) listNotifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, "status", "channel", "release", "limit", "cursor"); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	f := notify.Filter{Status: notify.Status(q.Get("status")), Channel: q.Get("channel"), Cursor: q.Get("cursor")}
	if raw := q.Get("release"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, s.log, fmt.Errorf("%w: release %q is not a positive integer", errBadRequest, raw))
			return
		}
		f.ReleaseID = id
	}
	var err error
	if f.Limit, err = limitParam(q); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	page, err := s.opts.Notify.Find(r.Context(), f)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// getNotification answers GET /api/v1/notifications/{id}.
func (s *server) getNotification(w http.ResponseWriter, r *http.Request) {
	id, err := idParam(r, "notification")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	n, err := s.opts.Notify.Get(r.Context(), id)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// listChannels answers GET /api/v1/notifications/channels: names and types only.
func (s *server) listChannels(w http.ResponseWriter, _ *http.Request) {
	channels := s.opts.Notify.Channels()
	if channels == nil {
		channels = []notify.ChannelInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": channels})
}

// testRequest is the body of POST /api/v1/notifications/test.
type testRequest struct {
	Channel string `json:"channel"`
}

// testNotification answers POST /api/v1/notifications/test {"channel": NAME}: it sends a test
// message through the outbox and answers 200 when the service accepted it, 502 with the
// service's error when it failed, and 202 when it is still pending (being retried) after 30s.
func (s *server) testNotification(w http.ResponseWriter, r *http.Request) {
	var req testRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, r, s.log, fmt.Errorf(`%w: body must be {"channel": "NAME"}: %w`, errBadRequest, err))
		return
	}
	if req.Channel == "" {
		writeError(w, r, s.log, fmt.Errorf(`%w: body must be {"channel": "NAME"}`, errBadRequest))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	n, err := s.opts.Notify.Test(ctx, req.Channel, "the API")
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	status := http.StatusOK
	switch n.Status {
	case notify.StatusFailed:
		status = http.StatusBadGateway
	case notify.StatusPending:
		status = http.StatusAccepted
	}
	writeJSON(w, status, n)
}

// notifyStatus maps the notify package's errors for writeError.
func notifyStatus(err error) int {
	switch {
	case errors.Is(err, notify.ErrNotFound), errors.Is(err, notify.ErrUnknownChannel):
		return http.StatusNotFound
	case errors.Is(err, notify.ErrInvalid):
		return http.StatusBadRequest
	}
	return 0
}
