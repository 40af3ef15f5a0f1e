package incident

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// inStatus is stored() in status s, with the history that led there.
func inStatus(s Status, history ...History) Alert {
	a := stored(status(s))
	a.History = append(a.History, history...)
	return a
}

func hist(change string, s Status) History {
	return History{ID: "s1", Event: "NodeDown", Severity: SeverityMajor, Status: s, ChangeType: change, UpdateTime: tOld}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		a        Alert
		action   string
		want     Status
		wantSev  Severity // "" for unchanged (major)
		wantPrev Severity // "" for unchanged (indeterminate)
		wantErr  error
	}{
		{name: "open: open", a: inStatus(StatusOpen), action: ActionOpen, wantErr: ErrConflict},
		{name: "open: ack", a: inStatus(StatusOpen), action: ActionAck, want: StatusAck},
		{name: "open: unack", a: inStatus(StatusOpen), action: ActionUnack, wantErr: ErrConflict},
		{name: "open: shelve", a: inStatus(StatusOpen), action: ActionShelve, want: StatusShelved},
		{name: "open: unshelve", a: inStatus(StatusOpen), action: ActionUnshelve, wantErr: ErrConflict},
		{name: "open: close", a: inStatus(StatusOpen), action: ActionClose, want: StatusClosed, wantSev: SeverityNormal, wantPrev: SeverityMajor},
		{name: "open: expired", a: inStatus(StatusOpen), action: ActionExpired, want: StatusExpired},
		{name: "open: timeout", a: inStatus(StatusOpen), action: ActionTimeout, want: StatusOpen},

		{name: "ack: open", a: inStatus(StatusAck, hist(ActionAck, StatusAck)), action: ActionOpen, want: StatusOpen},
		{name: "ack: ack", a: inStatus(StatusAck, hist(ActionAck, StatusAck)), action: ActionAck, wantErr: ErrConflict},
		{name: "ack: unack to open", a: inStatus(StatusAck, hist(ActionAck, StatusAck)), action: ActionUnack, want: StatusOpen},
		{
			name: "ack: unack to the status before the ack",
			a: inStatus(StatusAck, hist(ChangeStatus, StatusBlackout), hist(ActionAck, StatusAck),
				hist(ChangeValue, StatusAck)),
			action: ActionUnack, want: StatusBlackout,
		},
		{name: "ack: unack without history", a: stored(status(StatusAck), func(a *Alert) { a.History = nil }), action: ActionUnack, want: StatusOpen},
		{name: "ack: shelve", a: inStatus(StatusAck), action: ActionShelve, want: StatusShelved},
		{name: "ack: unshelve", a: inStatus(StatusAck), action: ActionUnshelve, wantErr: ErrConflict},
		{name: "ack: close", a: inStatus(StatusAck), action: ActionClose, want: StatusClosed, wantSev: SeverityNormal, wantPrev: SeverityMajor},
		{name: "ack: timeout reopens", a: inStatus(StatusAck), action: ActionTimeout, want: StatusOpen},

		{name: "shelved: open", a: inStatus(StatusShelved), action: ActionOpen, want: StatusOpen},
		{name: "shelved: ack", a: inStatus(StatusShelved), action: ActionAck, wantErr: ErrConflict},
		{name: "shelved: shelve", a: inStatus(StatusShelved), action: ActionShelve, wantErr: ErrConflict},
		{name: "shelved: unack", a: inStatus(StatusShelved), action: ActionUnack, wantErr: ErrConflict},
		{
			name:   "shelved: unshelve to ack",
			a:      inStatus(StatusShelved, hist(ActionAck, StatusAck), hist(ActionShelve, StatusShelved)),
			action: ActionUnshelve, want: StatusAck,
		},
		{
			name:   "shelved: unshelve to open",
			a:      inStatus(StatusShelved, hist(ActionShelve, StatusShelved)),
			action: ActionUnshelve, want: StatusOpen,
		},
		{name: "shelved: close", a: inStatus(StatusShelved), action: ActionClose, want: StatusClosed, wantSev: SeverityNormal, wantPrev: SeverityMajor},

		{
			name:   "closed: open restores the severity before closing",
			a:      stored(status(StatusClosed), sev(SeverityNormal), func(a *Alert) { a.PreviousSeverity = SeverityCritical }),
			action: ActionOpen, want: StatusOpen, wantSev: SeverityCritical, wantPrev: SeverityNormal,
		},
		{
			name:   "closed: open without a previous severity",
			a:      stored(status(StatusClosed), sev(SeverityNormal), func(a *Alert) { a.PreviousSeverity = "" }),
			action: ActionOpen, want: StatusOpen, wantSev: SeverityIndeterminate, wantPrev: SeverityNormal,
		},
		{name: "closed: ack", a: inStatus(StatusClosed), action: ActionAck, wantErr: ErrConflict},
		{name: "closed: shelve", a: inStatus(StatusClosed), action: ActionShelve, wantErr: ErrConflict},
		{name: "closed: close", a: inStatus(StatusClosed), action: ActionClose, wantErr: ErrConflict},
		{name: "closed: unshelve", a: inStatus(StatusClosed), action: ActionUnshelve, wantErr: ErrConflict},
		{name: "closed: expired", a: inStatus(StatusClosed), action: ActionExpired, want: StatusExpired},

		{name: "expired: open", a: inStatus(StatusExpired), action: ActionOpen, want: StatusOpen},
		{name: "expired: ack", a: inStatus(StatusExpired), action: ActionAck, wantErr: ErrConflict},
		{name: "expired: close", a: inStatus(StatusExpired), action: ActionClose, wantErr: ErrConflict},
		{name: "expired: shelve", a: inStatus(StatusExpired), action: ActionShelve, wantErr: ErrConflict},

		{name: "blackout: ack", a: inStatus(StatusBlackout), action: ActionAck, want: StatusAck},
		{name: "blackout: open", a: inStatus(StatusBlackout), action: ActionOpen, want: StatusOpen},
		{name: "blackout: shelve", a: inStatus(StatusBlackout), action: ActionShelve, want: StatusShelved},
		{name: "blackout: close", a: inStatus(StatusBlackout), action: ActionClose, want: StatusClosed, wantSev: SeverityNormal, wantPrev: SeverityMajor},
		{name: "blackout: unack", a: inStatus(StatusBlackout), action: ActionUnack, wantErr: ErrConflict},

		{name: "assign: open", a: inStatus(StatusAssign), action: ActionOpen, want: StatusOpen},
		{name: "assign: ack", a: inStatus(StatusAssign), action: ActionAck, want: StatusAck},

		{name: "unknown action", a: inStatus(StatusOpen), action: "assign", wantErr: ErrInvalid},
		{name: "empty action", a: inStatus(StatusOpen), action: "", wantErr: ErrInvalid},
		{name: "action is case-sensitive", a: inStatus(StatusOpen), action: "ACK", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneAlert(tt.a)
			got, err := Apply(tt.a, tt.action, "note", "alice", 600, tNow)
			if diff := cmp.Diff(before, tt.a); diff != "" {
				t.Errorf("input modified (-before +after):\n%s", diff)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(before, got); diff != "" {
					t.Errorf("alert changed on error (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			wantSev, wantPrev := tt.wantSev, tt.wantPrev
			if wantSev == "" {
				wantSev = tt.a.Severity
			}
			if wantPrev == "" {
				wantPrev = tt.a.PreviousSeverity
			}
			want := cloneAlert(tt.a)
			want.Status, want.Severity, want.PreviousSeverity, want.UpdateTime = tt.want, wantSev, wantPrev, tNow
			want.History = append(want.History, History{ID: "s1", Event: "NodeDown", Severity: wantSev,
				Status: tt.want, Value: "95%", Text: "note", ChangeType: tt.action, UpdateTime: tNow,
				User: "alice", Timeout: 600})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("alert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyBadTimeout(t *testing.T) {
	for _, timeout := range []int{-1, MaxTimeout + 1} {
		if _, err := Apply(inStatus(StatusOpen), ActionShelve, "", "", timeout, tNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("timeout %d: error = %v, want ErrInvalid", timeout, err)
		}
	}
}

// TestApplyAckThenWorse checks the two halves together: an operator acks, a worse
// severity arrives and reopens it, a better one would not have.
func TestApplyAckThenWorse(t *testing.T) {
	a, err := Apply(stored(), ActionAck, "looking", "alice", 0, tNow)
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := Receive(incoming(sev(SeverityCritical)), []Alert{a}, tNow, func() string { return "id1" }, Rules{})
	if got.Status != StatusOpen {
		t.Errorf("worse severity on ack'ed alert: status %s, want open", got.Status)
	}
	got, _, _ = Receive(incoming(sev(SeverityMinor)), []Alert{a}, tNow, func() string { return "id1" }, Rules{})
	if got.Status != StatusAck {
		t.Errorf("better severity on ack'ed alert: status %s, want ack", got.Status)
	}
}

func TestSetStatus(t *testing.T) {
	a := stored()
	got, err := SetStatus(a, StatusClosed, "fixed by hand", "bob", tNow)
	if err != nil {
		t.Fatal(err)
	}
	want := stored(status(StatusClosed), func(w *Alert) {
		w.UpdateTime = tNow
		w.History = append(w.History, History{ID: "s1", Event: "NodeDown", Severity: SeverityMajor,
			Status: StatusClosed, Value: "95%", Text: "fixed by hand", ChangeType: ChangeStatus,
			UpdateTime: tNow, User: "bob", Timeout: 7200})
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SetStatus (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(stored(), a); diff != "" {
		t.Errorf("input modified (-before +after):\n%s", diff)
	}
	for _, s := range []Status{"", "notValid", "OPEN"} {
		if _, err := SetStatus(a, s, "", "", tNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetStatus(%q) error = %v, want ErrInvalid", s, err)
		}
	}
}
