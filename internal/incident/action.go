package incident

import (
	"fmt"
	"slices"
	"time"
)

// The operator and housekeeping actions, as Alerta names them.
const (
	ActionOpen     = "open"
	ActionAck      = "ack"
	ActionUnack    = "unack"
	ActionShelve   = "shelve"
	ActionUnshelve = "unshelve"
	ActionClose    = "close"
	// ActionExpired is housekeeping's: the alert's timeout passed without a repeat.
	ActionExpired = "expired"
	// ActionTimeout is housekeeping's: an ack or shelve timed out; the alert reopens.
	ActionTimeout = "timeout"
)

// Actions returns every action Apply knows.
func Actions() []string {
	return []string{ActionOpen, ActionAck, ActionUnack, ActionShelve, ActionUnshelve, ActionClose, ActionExpired, ActionTimeout}
}

// Apply runs an action on a through Alerta's state machine and returns the changed alert,
// with one history entry whose type is the action's name (ack, shelve, ...), as Alerta
// records it. timeout, in seconds, is kept on that entry: for ack and shelve it is how
// long until housekeeping undoes them (zero: never, or the caller's default).
//
// The transitions: open from ack, shelved, blackout, closed (restoring the severity it
// had before closing) or expired; ack from open or blackout; unack from ack back to the
// status before the ack; shelve from open, ack or blackout; unshelve from shelved back to
// the status before the shelve; close from open, ack, shelved or blackout, setting the
// normal severity; expired and timeout (reopen) from any status. Assign and unknown
// statuses behave as open. Anything else returns an error wrapping ErrConflict, saying
// the action and the status; an unknown action or a negative timeout wraps ErrInvalid.
//
// unack and unshelve read a.History to find the earlier status, so a must carry it.
func Apply(a Alert, action, text, user string, timeout int, now time.Time) (Alert, error) {
	if !slices.Contains(Actions(), action) {
		return a, fmt.Errorf("action %q: %w: want one of %v", action, ErrInvalid, Actions())
	}
	if timeout < 0 || timeout > MaxTimeout {
		return a, fmt.Errorf("action %s: timeout %d: %w", action, timeout, ErrInvalid)
	}
	status, severity, err := transition(a, action)
	if err != nil {
		return a, err
	}
	out := cloneAlert(a)
	if severity != a.Severity {
		out.PreviousSeverity = a.Severity
		out.Severity = severity
	}
	out.Status = status
	out.UpdateTime = now
	out.History = append(out.History, History{
		ID: a.ID, Event: a.Event, Severity: severity, Status: status, Value: a.Value,
		Text: text, ChangeType: action, UpdateTime: now, User: user, Timeout: timeout,
	})
	return out, nil
}

// transition returns the status and severity action leads to from a's status.
func transition(a Alert, action string) (Status, Severity, error) {
	sev := a.Severity
	conflict := func() (Status, Severity, error) {
		return "", "", fmt.Errorf("action %s from status %s: %w", action, a.Status, ErrConflict)
	}
	switch action {
	case ActionExpired:
		return StatusExpired, sev, nil
	case ActionTimeout:
		return StatusOpen, sev, nil
	case ActionUnack:
		if a.Status != StatusAck {
			return conflict()
		}
		return statusBefore(a.History, ActionAck, StatusAck), sev, nil
	case ActionUnshelve:
		if a.Status != StatusShelved {
			return conflict()
		}
		return statusBefore(a.History, ActionShelve, StatusShelved), sev, nil
	}

	switch a.Status {
	case StatusAck:
		switch action {
		case ActionOpen:
			return StatusOpen, sev, nil
		case ActionShelve:
			return StatusShelved, sev, nil
		case ActionClose:
			return StatusClosed, DefaultNormalSeverity, nil
		}
	case StatusShelved:
		switch action {
		case ActionOpen:
			return StatusOpen, sev, nil
		case ActionClose:
			return StatusClosed, DefaultNormalSeverity, nil
		}
	case StatusClosed:
		if action == ActionOpen {
			prev := a.PreviousSeverity
			if !prev.Valid() {
				prev = DefaultPreviousSeverity
			}
			return StatusOpen, prev, nil
		}
	case StatusExpired:
		if action == ActionOpen {
			return StatusOpen, sev, nil
		}
	case StatusBlackout:
		// Alerta ignores actions on a blackout alert; Ferry lets the operator act, and a
		// repeat inside the window puts it back in blackout.
		switch action {
		case ActionOpen:
			return StatusOpen, sev, nil
		case ActionAck:
			return StatusAck, sev, nil
		case ActionShelve:
			return StatusShelved, sev, nil
		case ActionClose:
			return StatusClosed, DefaultNormalSeverity, nil
		}
	default: // open, assign, unknown
		switch action {
		case ActionOpen:
			if a.Status == StatusOpen {
				return conflict()
			}
			return StatusOpen, sev, nil
		case ActionAck:
			return StatusAck, sev, nil
		case ActionShelve:
			return StatusShelved, sev, nil
		case ActionClose:
			return StatusClosed, DefaultNormalSeverity, nil
		}
	}
	return conflict()
}

// statusBefore returns the status the alert had before the last history entry of type
// change, or open when the history does not say (or says self, which would be a loop).
func statusBefore(history []History, change string, self Status) Status {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].ChangeType != change {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			if s := history[j].Status; s != "" {
				if s == self || !s.Valid() {
					return StatusOpen
				}
				return s
			}
		}
		break
	}
	return StatusOpen
}

// SetStatus sets a's status, as PUT /alert/{id}/status does, with no state machine (as in
// Alerta), and appends a "status" history entry. An invalid status wraps ErrInvalid.
func SetStatus(a Alert, status Status, text, user string, now time.Time) (Alert, error) {
	if !status.Valid() {
		return a, fmt.Errorf("status %q: %w", status, ErrInvalid)
	}
	out := cloneAlert(a)
	out.Status = status
	out.UpdateTime = now
	out.History = append(out.History, History{
		ID: a.ID, Event: a.Event, Severity: a.Severity, Status: status, Value: a.Value,
		Text: text, ChangeType: ChangeStatus, UpdateTime: now, User: user, Timeout: a.Timeout,
	})
	return out, nil
}
