package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// DueTimes are when housekeeping must act on a: expireAt, when an open, assigned or acked
// alert's timeout passes without a repeat; wakeAt, when the ack or shelve that put it in its
// status runs out. The zero time means never.
func DueTimes(a Alert) (expireAt, wakeAt time.Time) {
	if a.Timeout > 0 && slices.Contains([]Status{StatusOpen, StatusAssign, StatusAck}, a.Status) {
		expireAt = a.LastReceiveTime.Add(time.Duration(a.Timeout) * time.Second)
	}
	action := map[Status]string{StatusAck: ActionAck, StatusShelved: ActionShelve}[a.Status]
	if action == "" {
		return expireAt, wakeAt
	}
	for i := len(a.History) - 1; i >= 0; i-- {
		h := a.History[i]
		if h.ChangeType == action {
			if h.Timeout > 0 {
				wakeAt = h.UpdateTime.Add(time.Duration(h.Timeout) * time.Second)
			}
			break
		}
	}
	return expireAt, wakeAt
}

// errNotDue is a due alert that changed before housekeeping reached it: a repeat arrived, an
// operator acted. It is left as it is.
var errNotDue = errors.New("no longer due")

// HousekeepingStore is what housekeeping needs from the store besides Store.
type HousekeepingStore interface {
	DueAlerts(ctx context.Context, now time.Time, limit int) ([]DueAlertRef, error)
	PurgeAlerts(ctx context.Context, before time.Time) (int, error)
	ExpiredHeartbeats(ctx context.Context, now time.Time) ([]Heartbeat, error)
	MarkHeartbeatAlerted(ctx context.Context, hb Heartbeat, alerted bool) (bool, error)
}

// DueAlertRef names an alert housekeeping must act on, and the action.
type DueAlertRef struct {
	ID     string
	Action string
}

// Housekeep does in process what Alerta leaves to cron: it expires open alerts whose timeout
// passed, reopens acks and unshelves shelves whose timeout ran out, and deletes closed and
// expired alerts older than retention (zero keeps them). It returns how many alerts it
// changed and deleted.
func (h *Hub) Housekeep(ctx context.Context, hs HousekeepingStore, now time.Time, retention time.Duration) (changed, purged int, err error) {
	due, err := hs.DueAlerts(ctx, now, 500)
	if err != nil {
		return 0, 0, err
	}
	for _, d := range due {
		_, err := h.update(ctx, d.ID, func(a Alert) (Alert, error) {
			exp, wake := DueTimes(a)
			switch {
			case d.Action == ActionExpired && !exp.IsZero() && !exp.After(now):
				return Apply(a, ActionExpired, fmt.Sprintf("expired after %ds without a repeat", a.Timeout), "ferry", 0, now)
			case d.Action == ActionTimeout && !wake.IsZero() && !wake.After(now):
				return Apply(a, ActionTimeout, "the "+string(a.Status)+" timed out", "ferry", 0, now)
			}
			return a, errNotDue
		})
		switch {
		case err == nil:
			changed++
		case errors.Is(err, errNotDue), errors.Is(err, ErrNotFound):
		default:
			return changed, 0, err
		}
	}
	raised, err := h.checkHeartbeats(ctx, hs, now)
	changed += raised
	if err != nil {
		return changed, 0, err
	}
	if retention > 0 {
		if purged, err = hs.PurgeAlerts(ctx, now.Add(-retention)); err != nil {
			return changed, 0, err
		}
	}
	return changed, purged, nil
}

// checkHeartbeats raises a HeartbeatFail alert for each sender whose heartbeat expired, once
// per silence. A sender that comes back between the alert and the mark gets its clearing
// alert at once, so the fail alert never stays open behind a live sender.
func (h *Hub) checkHeartbeats(ctx context.Context, hs HousekeepingStore, now time.Time) (int, error) {
	expired, err := hs.ExpiredHeartbeats(ctx, now)
	if err != nil {
		return 0, err
	}
	for _, hb := range expired {
		if _, err := h.Receive(ctx, hb.FailAlert(now, h.opts.DefaultEnvironment)); err != nil {
			return 0, fmt.Errorf("heartbeat %s: %w", hb.Origin, err)
		}
		marked, err := hs.MarkHeartbeatAlerted(ctx, hb, true)
		if err != nil {
			return 0, err
		}
		if !marked {
			if _, err := h.Receive(ctx, hb.ClearAlert(time.Now(), h.opts.DefaultEnvironment)); err != nil {
				return 0, fmt.Errorf("heartbeat %s: %w", hb.Origin, err)
			}
		}
	}
	return len(expired), nil
}

// RunHousekeeping calls Housekeep every interval until ctx ends, logging what it did.
func (h *Hub) RunHousekeeping(ctx context.Context, hs HousekeepingStore, interval, retention time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed, purged, err := h.Housekeep(ctx, hs, time.Now(), retention)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("incident housekeeping", "err", err)
		case changed+purged > 0:
			log.Info("incident housekeeping", "changed", changed, "purged", purged)
		}
	}
}
