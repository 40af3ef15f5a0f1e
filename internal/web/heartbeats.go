package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/incident/alerta"
)

// HeartbeatStore is what the heartbeat API needs from the store. *store.DB is one.
type HeartbeatStore interface {
	UpsertHeartbeat(ctx context.Context, hb incident.Heartbeat) (cur incident.Heartbeat, prev *incident.Heartbeat, err error)
	MarkHeartbeatAlerted(ctx context.Context, hb incident.Heartbeat, alerted bool) (bool, error)
	GetHeartbeat(ctx context.Context, id string) (incident.Heartbeat, error)
	ListHeartbeats(ctx context.Context) ([]incident.Heartbeat, error)
	DeleteHeartbeat(ctx context.Context, id string) error
}

// BlackoutStore is what the blackout API needs from the store. *store.DB is one; a wrapper
// that caches the active blackouts for the hub can refresh its cache on each change.
type BlackoutStore interface {
	CreateBlackout(ctx context.Context, b incident.Blackout) (incident.Blackout, error)
	GetBlackout(ctx context.Context, id string) (incident.Blackout, error)
	ListBlackouts(ctx context.Context) ([]incident.Blackout, error)
	DeleteBlackout(ctx context.Context, id string) error
}

// heartbeatAPI serves Alerta's heartbeat and blackout endpoints.
type heartbeatAPI struct {
	s          *server
	heartbeats HeartbeatStore
	blackouts  BlackoutStore
}

// routeHeartbeats adds Alerta's heartbeat endpoints when heartbeats is not nil, and its
// blackout endpoints when blackouts is not nil, each behind an API key of the scope it
// needs: sending a heartbeat and managing blackouts take write (Alerta's write:heartbeats
// and write:blackouts), reading takes read, deleting a heartbeat takes admin.
func (s *server) routeHeartbeats(handle func(pattern, name string, h http.Handler),
	key func(apikey.Scope, http.HandlerFunc) http.Handler, heartbeats HeartbeatStore, blackouts BlackoutStore) {
	a := &heartbeatAPI{s: s, heartbeats: heartbeats, blackouts: blackouts}
	if heartbeats != nil {
		handle("POST /api/heartbeat", "alerta.heartbeats.create", key(apikey.ScopeWrite, a.createHeartbeat))
		handle("GET /api/heartbeats", "alerta.heartbeats.list", key(apikey.ScopeRead, a.listHeartbeats))
		handle("GET /api/heartbeat/{id}", "alerta.heartbeats.get", key(apikey.ScopeRead, a.getHeartbeat))
		handle("DELETE /api/heartbeat/{id}", "alerta.heartbeats.delete", key(apikey.ScopeAdmin, a.deleteHeartbeat))
	}
	if blackouts != nil {
		handle("POST /api/blackout", "alerta.blackouts.create", key(apikey.ScopeWrite, a.createBlackout))
		handle("GET /api/blackouts", "alerta.blackouts.list", key(apikey.ScopeRead, a.listBlackouts))
		handle("GET /api/blackout/{id}", "alerta.blackouts.get", key(apikey.ScopeRead, a.getBlackout))
		handle("DELETE /api/blackout/{id}", "alerta.blackouts.delete", key(apikey.ScopeWrite, a.deleteBlackout))
	}
}

// heartbeatResponse is Alerta's answer to POST /api/heartbeat and GET /api/heartbeat/{id}.
type heartbeatResponse struct {
	Status    string              `json:"status"`
	ID        string              `json:"id,omitempty"`
	Total     int                 `json:"total,omitempty"`
	Heartbeat *incident.Heartbeat `json:"heartbeat"`
}

// heartbeatsResponse is Alerta's answer to GET /api/heartbeats.
type heartbeatsResponse struct {
	Status     string               `json:"status"`
	Message    string               `json:"message,omitempty"`
	Heartbeats []incident.Heartbeat `json:"heartbeats"`
	Total      int                  `json:"total"`
}

// blackoutResponse is Alerta's answer to POST /api/blackout and GET /api/blackout/{id}.
type blackoutResponse struct {
	Status   string             `json:"status"`
	ID       string             `json:"id,omitempty"`
	Total    int                `json:"total,omitempty"`
	Blackout *incident.Blackout `json:"blackout"`
}

// blackoutsResponse is Alerta's answer to GET /api/blackouts.
type blackoutsResponse struct {
	Status    string              `json:"status"`
	Message   string              `json:"message,omitempty"`
	Blackouts []incident.Blackout `json:"blackouts"`
	Total     int                 `json:"total"`
}

// createHeartbeat answers POST /api/heartbeat as Alerta does: 201 with the stored heartbeat.
// A heartbeat from a sender whose expiry alert was raised also clears that alert, through the
// hub; should that fail, the expiry stays marked, so that the sender's retry, or its next
// heartbeat, clears it.
func (a *heartbeatAPI) createHeartbeat(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxAlertaBody)
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	now := time.Now()
	hb, err := incident.DecodeHeartbeat(body, now, incident.HeartbeatOptions{})
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	cur, prev, err := a.heartbeats.UpsertHeartbeat(r.Context(), hb)
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	if prev != nil && prev.Alerted {
		clearing := prev.ClearAlert(now, a.s.opts.Incidents.Alerta.DefaultEnvironment)
		if _, err := a.s.opts.Incidents.Hub.Receive(r.Context(), clearing); err != nil {
			_, markErr := a.heartbeats.MarkHeartbeatAlerted(r.Context(), cur, true)
			a.s.alertaError(w, r, errors.Join(fmt.Errorf("clear the expiry alert of heartbeat %s: %w", cur.Origin, err), markErr))
			return
		}
	}
	cur = cur.At(now)
	writeJSON(w, http.StatusCreated, heartbeatResponse{Status: alerta.StatusOK, ID: cur.ID, Heartbeat: &cur})
}

// listHeartbeats answers GET /api/heartbeats: every heartbeat, or those with one of the
// statuses given as ?status=ok|expired|slow.
func (a *heartbeatAPI) listHeartbeats(w http.ResponseWriter, r *http.Request) {
	statuses, err := statusFilter(r.URL.Query(), func(s string) bool { return incident.HeartbeatStatus(s).Valid() })
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	hbs, err := a.heartbeats.ListHeartbeats(r.Context())
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	now := time.Now()
	res := heartbeatsResponse{Status: alerta.StatusOK, Heartbeats: []incident.Heartbeat{}}
	for _, hb := range hbs {
		hb = hb.At(now)
		if len(statuses) == 0 || slices.Contains(statuses, string(hb.Status)) {
			res.Heartbeats = append(res.Heartbeats, hb)
		}
	}
	res.Total = len(res.Heartbeats)
	if res.Total == 0 {
		res.Message = "not found"
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *heartbeatAPI) getHeartbeat(w http.ResponseWriter, r *http.Request) {
	hb, err := a.heartbeats.GetHeartbeat(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	hb = hb.At(time.Now())
	writeJSON(w, http.StatusOK, heartbeatResponse{Status: alerta.StatusOK, Total: 1, Heartbeat: &hb})
}

func (a *heartbeatAPI) deleteHeartbeat(w http.ResponseWriter, r *http.Request) {
	if err := a.heartbeats.DeleteHeartbeat(r.Context(), r.PathValue("id")); err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewOKResponse())
}

// createBlackout answers POST /api/blackout as Alerta does: 201 with the stored blackout and
// its Location. The blackout's user is the API key's name; only an admin key may name
// another user, as Alerta lets only admins.
func (a *heartbeatAPI) createBlackout(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxAlertaBody)
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	now := time.Now()
	b, err := incident.DecodeBlackout(body, now, incident.BlackoutOptions{})
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	if k, ok := KeyFrom(r.Context()); b.User == "" || !ok || !k.Allows(apikey.ScopeAdmin) {
		b.User = user(r)
	}
	b, err = a.blackouts.CreateBlackout(r.Context(), b)
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	b = b.At(now)
	w.Header().Set("Location", "/api/blackout/"+url.PathEscape(b.ID))
	writeJSON(w, http.StatusCreated, blackoutResponse{Status: alerta.StatusOK, ID: b.ID, Blackout: &b})
}

// listBlackouts answers GET /api/blackouts: every blackout, or those with one of the
// statuses given as ?status=active|pending|expired.
func (a *heartbeatAPI) listBlackouts(w http.ResponseWriter, r *http.Request) {
	statuses, err := statusFilter(r.URL.Query(), func(s string) bool {
		switch incident.BlackoutStatus(s) {
		case incident.BlackoutActive, incident.BlackoutPending, incident.BlackoutExpired:
			return true
		}
		return false
	})
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	bs, err := a.blackouts.ListBlackouts(r.Context())
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	now := time.Now()
	res := blackoutsResponse{Status: alerta.StatusOK, Blackouts: []incident.Blackout{}}
	for _, b := range bs {
		b = b.At(now)
		if len(statuses) == 0 || slices.Contains(statuses, string(b.Status)) {
			res.Blackouts = append(res.Blackouts, b)
		}
	}
	res.Total = len(res.Blackouts)
	if res.Total == 0 {
		res.Message = "not found"
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *heartbeatAPI) getBlackout(w http.ResponseWriter, r *http.Request) {
	b, err := a.blackouts.GetBlackout(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	b = b.At(time.Now())
	writeJSON(w, http.StatusOK, blackoutResponse{Status: alerta.StatusOK, Total: 1, Blackout: &b})
}

func (a *heartbeatAPI) deleteBlackout(w http.ResponseWriter, r *http.Request) {
	if err := a.blackouts.DeleteBlackout(r.Context(), r.PathValue("id")); err != nil {
		a.s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewOKResponse())
}

// statusFilter reads the ?status= values of a list, each of which valid must accept.
func statusFilter(q url.Values, valid func(string) bool) ([]string, error) {
	statuses := q["status"]
	for _, s := range statuses {
		if !valid(s) {
			return nil, &incident.FieldError{Field: "status", Msg: fmt.Sprintf("%q is not a status", s)}
		}
	}
	return statuses, nil
}
