package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ferrycd/ferry/internal/apikey"
	"github.com/ferrycd/ferry/internal/incident"
	"github.com/ferrycd/ferry/internal/incident/alerta"
	"github.com/ferrycd/ferry/internal/incident/alertmanager"
)

// Incidents is what the incident API needs: the hub.
type Incidents interface {
	Receive(ctx context.Context, a incident.Alert) (incident.Outcome, error)
	Get(ctx context.Context, id string) (incident.Alert, error)
	Find(ctx context.Context, q incident.Query) (incident.List, error)
	Action(ctx context.Context, id, action, text, user string, timeout int) (incident.Alert, error)
	SetStatus(ctx context.Context, id string, status incident.Status, text, user string) (incident.Alert, error)
	Delete(ctx context.Context, id string) error
}

// IncidentOptions configure the incident endpoints.
type IncidentOptions struct {
	Hub  Incidents
	Keys KeyAuthenticator
	// Mapping turns Alertmanager's labels into alerts; Alerta fills in what an Alerta
	// client leaves out.
	Mapping alertmanager.Mapping
	Alerta  alerta.Options
	// Heartbeats serves Alerta's heartbeat API; nil serves none.
	Heartbeats HeartbeatStore
	// Blackouts serves Alerta's blackout API; nil serves none.
	Blackouts BlackoutStore
}

// Body limits: an Alertmanager notification carries a group of alerts; an Alerta alert is one.
const (
	maxAlertmanagerBody = 10 << 20
	maxAlertaBody       = 1 << 20
)

// errTooLarge is a body over its endpoint's limit.
var errTooLarge = errors.New("request body too large")

// routeIncidents adds the Alertmanager webhook and the Alerta-compatible API, each behind an
// API key of the scope it needs.
func (s *server) routeIncidents(handle func(pattern, name string, h http.Handler)) {
	o := s.opts.Incidents
	key := s.guard(o.Keys)
	s.routeHeartbeats(handle, key, o.Heartbeats, o.Blackouts)
	handle("POST /api/v1/webhooks/alertmanager", "webhooks.alertmanager", key(apikey.ScopeWrite, s.alertmanagerWebhook))
	handle("POST /api/alert", "alerta.create", key(apikey.ScopeWrite, s.alertaCreate))
	handle("GET /api/alerts", "alerta.list", key(apikey.ScopeRead, s.alertaList))
	handle("GET /api/alert/{id}", "alerta.get", key(apikey.ScopeRead, s.alertaGet))
	handle("PUT /api/alert/{id}/status", "alerta.status", key(apikey.ScopeWrite, s.alertaStatus))
	handle("PUT /api/alert/{id}/action", "alerta.action", key(apikey.ScopeWrite, s.alertaAction))
	handle("DELETE /api/alert/{id}", "alerta.delete", key(apikey.ScopeAdmin, s.alertaDelete))
}

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: the limit is %d bytes", errTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
	}
	return body, nil
}

// user names who acted, for an alert's history: the API key's name.
func user(r *http.Request) string {
	if k, ok := KeyFrom(r.Context()); ok {
		return k.Name
	}
	return ""
}

// alertmanagerResult answers POST /api/v1/webhooks/alertmanager.
type alertmanagerResult struct {
	Status   string   `json:"status"`
	Received int      `json:"received"`
	Failed   int      `json:"failed"`
	Errors   []string `json:"errors,omitempty"`
}

// alertmanagerWebhook takes Alertmanager's webhook (version 4). Alerts that do not map are
// reported and the rest still received: 200 when all were, 422 when some were not (which
// Alertmanager does not retry, as retrying cannot fix them), 400 for a body that is not a
// payload at all. Alertmanager repeats notifications; receiving one twice is a duplicate.
func (s *server) alertmanagerWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxAlertmanagerBody)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	alerts, itemErrs, err := alertmanager.Decode(body, s.opts.Incidents.Mapping)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	res := alertmanagerResult{Status: "ok"}
	for _, e := range itemErrs {
		res.Failed++
		res.Errors = append(res.Errors, e.Error())
	}
	for _, a := range alerts {
		if _, err := s.opts.Incidents.Hub.Receive(r.Context(), a); err != nil {
			if StatusOf(err) == http.StatusInternalServerError {
				writeError(w, r, s.log, err) // the store failed: Alertmanager retries the lot
				return
			}
			res.Failed++
			res.Errors = append(res.Errors, fmt.Sprintf("%s/%s: %v", a.Resource, a.Event, err))
			continue
		}
		res.Received++
	}
	status := http.StatusOK
	if res.Failed > 0 {
		res.Status = "partial"
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, res)
}

// alertaError answers in Alerta's error format, with the status writeError would choose.
func (s *server) alertaError(w http.ResponseWriter, r *http.Request, err error) {
	status := StatusOf(err)
	if status == 0 {
		return // the client went away
	}
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "api request", "method", r.Method, "path", r.URL.Path, "err", err)
		err = errors.New("internal error; see the server log")
	}
	writeJSON(w, status, alerta.NewErrorResponse(status, err))
}

// alertaCreate answers POST /api/alert as Alerta does: 201 with the stored alert.
func (s *server) alertaCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxAlertaBody)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	a, err := alerta.DecodeAlert(body, s.opts.Incidents.Alerta)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	o, err := s.opts.Incidents.Hub.Receive(r.Context(), a)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, alerta.NewAlertResponse(o.Alert))
}

// alertaList answers GET /api/alerts with Alerta's filters, sorting and pages.
func (s *server) alertaList(w http.ResponseWriter, r *http.Request) {
	q, err := incident.ParseQuery(r.URL.Query())
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	list, err := s.opts.Incidents.Hub.Find(r.Context(), q)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewListResponse(list.Alerts, list.Total, q, list.SeverityCounts,
		list.StatusCounts, time.Now(), true))
}

func (s *server) alertaGet(w http.ResponseWriter, r *http.Request) {
	a, err := s.opts.Incidents.Hub.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewAlertResponse(a))
}

func (s *server) alertaStatus(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxAlertaBody)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	req, err := alerta.DecodeStatus(body)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	if _, err := s.opts.Incidents.Hub.SetStatus(r.Context(), r.PathValue("id"), req.Status, req.Text, user(r)); err != nil {
		s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewOKResponse())
}

func (s *server) alertaAction(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxAlertaBody)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	req, err := alerta.DecodeAction(body)
	if err != nil {
		s.alertaError(w, r, err)
		return
	}
	if _, err := s.opts.Incidents.Hub.Action(r.Context(), r.PathValue("id"), req.Action, req.Text, user(r), req.Timeout); err != nil {
		s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewOKResponse())
}

func (s *server) alertaDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Incidents.Hub.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.alertaError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alerta.NewOKResponse())
}
