// Package alerta is Alerta's HTTP API as Ferry speaks it: the alert a sender posts to
// /api/alert, the action and status bodies, and the envelopes Alerta answers with. It is
// pure — bytes in, values out — so the web layer stays a thin adapter and existing Alerta
// senders work with only a URL change.
package alerta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/incident"
)

// Options are the defaults DecodeAlert fills in, as Alerta's server settings do.
type Options struct {
	// DefaultEnvironment is the environment of an alert that names none (Alerta's
	// DEFAULT_ENVIRONMENT).
	DefaultEnvironment string
	// DefaultSeverity replaces a severity Alerta does not know; the sender's value is kept
	// in the attribute incident.AttrOriginalSeverity. (Alerta refuses such an alert.)
	DefaultSeverity incident.Severity
	// DefaultTimeout is the timeout, in seconds, of an alert that gives none (Alerta's
	// ALERT_TIMEOUT).
	DefaultTimeout int
}

// DefaultOptions returns Alerta's defaults: environment Production, severity warning for
// an unknown one, timeout one day.
func DefaultOptions() Options {
	return Options{DefaultEnvironment: "Production", DefaultSeverity: incident.SeverityWarning, DefaultTimeout: 86400}
}

// Alerta's defaults for fields a sender leaves out.
const (
	defaultGroup     = "Misc"
	defaultEventType = "exceptionAlert"
)

// DecodeAlert reads the body of POST /api/alert: one alert object with Alerta's field
// names. Unknown fields are ignored, as Alerta does, and so is id (Ferry assigns ids). A
// missing severity is normal (Alerta's default); a missing environment, group, type or
// timeout takes its default; a non-empty correlate list gets the alert's own event. The
// result has passed Validate. Every error wraps incident.ErrInvalid; errors about one field
// are *incident.FieldError naming it (joined when there are several).
func DecodeAlert(body []byte, o Options) (incident.Alert, error) {
	m, err := object(body)
	if err != nil {
		return incident.Alert{}, err
	}
	var (
		a        incident.Alert
		severity string
		value    json.RawMessage
		created  string
		timeout  *int
		raw      json.RawMessage
		customer *string
		d        = fields{m: m}
	)
	d.get("resource", &a.Resource)
	d.get("event", &a.Event)
	d.get("environment", &a.Environment)
	d.get("severity", &severity)
	d.get("correlate", &a.Correlate)
	d.get("status", &a.Status)
	d.get("service", &a.Service)
	d.get("group", &a.Group)
	d.get("value", &value)
	d.get("text", &a.Text)
	d.get("tags", &a.Tags)
	d.getAttributes("attributes", &a.Attributes)
	d.get("origin", &a.Origin)
	d.get("type", &a.EventType)
	d.get("createTime", &created)
	d.get("timeout", &timeout)
	d.get("rawData", &raw)
	d.get("customer", &customer)

	if len(value) > 0 && string(value) != "null" {
		switch value[0] {
		case '"':
			_ = json.Unmarshal(value, &a.Value) // a string token always decodes
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			a.Value = string(value) // Alerta turns a number into its text
		default:
			d.fail("value", "want a string or a number")
		}
	}
	if created != "" {
		t, err := time.Parse(time.RFC3339Nano, created)
		if err != nil {
			d.fail("createTime", "want an RFC 3339 time such as 2006-01-02T15:04:05.000Z")
		}
		a.CreateTime = t.UTC()
	}
	switch {
	case timeout == nil:
		a.Timeout = o.DefaultTimeout
	case *timeout < 0:
		d.fail("timeout", "must not be negative")
	default:
		a.Timeout = *timeout
	}
	if len(raw) > 0 && string(raw) != "null" {
		if raw[0] == '"' {
			_ = json.Unmarshal(raw, &a.RawData)
		} else {
			a.RawData = compact(raw)
		}
	}
	if customer != nil {
		if *customer == "" {
			d.fail("customer", "must not be empty")
		}
		a.Customer = *customer
	}
	if a.Status != "" && !a.Status.Valid() {
		d.fail("status", fmt.Sprintf("%q is not a status", a.Status))
	}
	if err := errors.Join(d.errs...); err != nil {
		return incident.Alert{}, err
	}

	a.Severity = incident.SeverityNormal
	if severity != "" {
		sev, ok := incident.ParseSeverity(severity, o.DefaultSeverity)
		if !ok {
			a.Attributes = withAttr(a.Attributes, incident.AttrOriginalSeverity, severity)
		}
		a.Severity = sev
	}
	if strings.TrimSpace(a.Environment) == "" {
		a.Environment = o.DefaultEnvironment
	}
	if a.Group == "" {
		a.Group = defaultGroup
	}
	if a.EventType == "" {
		a.EventType = defaultEventType
	}
	if len(a.Correlate) > 0 && !slices.Contains(a.Correlate, a.Event) {
		a.Correlate = append(a.Correlate, a.Event)
	}
	if err := a.Validate(); err != nil {
		return incident.Alert{}, err
	}
	return a, nil
}

// ActionRequest is the body of PUT /api/alert/{id}/action.
type ActionRequest struct {
	Action  string `json:"action"`
	Text    string `json:"text"`
	Timeout int    `json:"timeout"`
}

// DecodeAction reads the body of PUT /api/alert/{id}/action. action is required; text
// defaults to "<action> operator action", as in Alerta; timeout to zero. Whether the action
// exists is incident.Apply's to say.
func DecodeAction(body []byte) (ActionRequest, error) {
	m, err := object(body)
	if err != nil {
		return ActionRequest{}, err
	}
	var r ActionRequest
	var text *string
	d := fields{m: m}
	d.get("action", &r.Action)
	d.get("text", &text)
	d.get("timeout", &r.Timeout)
	if r.Action == "" && len(d.errs) == 0 {
		d.fail("action", "required")
	}
	if r.Timeout < 0 {
		d.fail("timeout", "must not be negative")
	}
	r.Text = r.Action + " operator action"
	if text != nil {
		r.Text = *text
	}
	return r, errors.Join(d.errs...)
}

// StatusRequest is the body of PUT /api/alert/{id}/status.
type StatusRequest struct {
	Status  incident.Status `json:"status"`
	Text    string          `json:"text"`
	Timeout int             `json:"timeout"`
}

// DecodeStatus reads the body of PUT /api/alert/{id}/status; status is required and must
// be one of incident's statuses.
func DecodeStatus(body []byte) (StatusRequest, error) {
	m, err := object(body)
	if err != nil {
		return StatusRequest{}, err
	}
	var r StatusRequest
	d := fields{m: m}
	d.get("status", &r.Status)
	d.get("text", &r.Text)
	d.get("timeout", &r.Timeout)
	switch {
	case len(d.errs) > 0:
	case r.Status == "":
		d.fail("status", "required")
	case !r.Status.Valid():
		d.fail("status", fmt.Sprintf("%q is not a status", r.Status))
	}
	if r.Timeout < 0 {
		d.fail("timeout", "must not be negative")
	}
	return r, errors.Join(d.errs...)
}

// object parses body as one JSON object, keeping its values raw.
func object(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%w: malformed JSON at byte %d: %s", incident.ErrInvalid, syn.Offset, syn.Error())
		}
		return nil, fmt.Errorf("%w: body is not a JSON object", incident.ErrInvalid)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: body is not a JSON object", incident.ErrInvalid)
	}
	return m, nil
}

// fields decodes the members of one object, collecting an error per field whose JSON type
// is wrong.
type fields struct {
	m    map[string]json.RawMessage
	errs []error
}

func (d *fields) fail(name, msg string) {
	d.errs = append(d.errs, &incident.FieldError{Field: name, Msg: msg})
}

// get decodes member name into dst; a missing member or null leaves dst as it is.
func (d *fields) get(name string, dst any) {
	raw, ok := d.m[name]
	if !ok || string(raw) == "null" {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		d.fail(name, "want "+jsonType(dst))
	}
}

// getAttributes decodes an object keeping numbers as written (json.Number), so a large
// integer is not rounded through float64.
func (d *fields) getAttributes(name string, dst *map[string]any) {
	raw, ok := d.m[name]
	if !ok || string(raw) == "null" {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		d.fail(name, "want an object")
	}
}

func jsonType(dst any) string {
	switch dst.(type) {
	case *string, *incident.Status:
		return "a string"
	case *[]string:
		return "a list of strings"
	case *int, **int:
		return "an integer"
	case **string:
		return "a string"
	}
	return "another JSON type"
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func withAttr(attrs map[string]any, k string, v any) map[string]any {
	if attrs == nil {
		attrs = map[string]any{}
	}
	attrs[k] = v
	return attrs
}

// The "status" of every answer.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// AlertResponse is Alerta's answer to POST /api/alert and GET /api/alert/{id}.
type AlertResponse struct {
	Status  string          `json:"status"`
	ID      string          `json:"id,omitempty"`
	Total   int             `json:"total,omitempty"`
	Alert   *incident.Alert `json:"alert,omitempty"`
	Message string          `json:"message,omitempty"`
}

// NewAlertResponse answers with one alert.
func NewAlertResponse(a incident.Alert) AlertResponse {
	return AlertResponse{Status: StatusOK, ID: a.ID, Total: 1, Alert: &a}
}

// OKResponse is Alerta's answer to a change that returns no alert (status, action,
// delete): {"status":"ok"}.
type OKResponse struct {
	Status string `json:"status"`
}

// NewOKResponse answers {"status":"ok"}.
func NewOKResponse() OKResponse { return OKResponse{Status: StatusOK} }

// ListResponse is Alerta's answer to GET /api/alerts.
type ListResponse struct {
	Status         string                    `json:"status"`
	Message        string                    `json:"message,omitempty"`
	Alerts         []incident.Alert          `json:"alerts"`
	Total          int                       `json:"total"`
	Page           int                       `json:"page"`
	PageSize       int                       `json:"pageSize"`
	Pages          int                       `json:"pages"`
	More           bool                      `json:"more"`
	SeverityCounts map[incident.Severity]int `json:"severityCounts"`
	StatusCounts   map[incident.Status]int   `json:"statusCounts"`
	LastTime       time.Time                 `json:"lastTime"`
	AutoRefresh    bool                      `json:"autoRefresh"`
}

// NewListResponse answers with one page of alerts: total counts every alert the query
// matches, the counts break it down. Unless the query asks for them, rawData and history
// are left out, as in Alerta. lastTime is the latest lastReceiveTime of the page, or
// queryTime for an empty page, when the message is "not found".
func NewListResponse(page []incident.Alert, total int, q incident.Query, severityCounts map[incident.Severity]int,
	statusCounts map[incident.Status]int, queryTime time.Time, autoRefresh bool) ListResponse {
	r := ListResponse{
		Status: StatusOK, Alerts: make([]incident.Alert, 0, len(page)), Total: total,
		Page: q.Page, PageSize: q.PageSize, SeverityCounts: severityCounts, StatusCounts: statusCounts,
		LastTime: queryTime.UTC(), AutoRefresh: autoRefresh,
	}
	if q.PageSize > 0 {
		r.Pages = (total + q.PageSize - 1) / q.PageSize
	}
	r.More = q.Page < r.Pages
	if r.SeverityCounts == nil {
		r.SeverityCounts = map[incident.Severity]int{}
	}
	if r.StatusCounts == nil {
		r.StatusCounts = map[incident.Status]int{}
	}
	if len(page) == 0 {
		r.Message = "not found"
		return r
	}
	for i, a := range page {
		if !q.ShowRawData {
			a.RawData = ""
		}
		if !q.ShowHistory {
			a.History = []incident.History{}
		}
		if i == 0 || a.LastReceiveTime.After(r.LastTime) {
			r.LastTime = a.LastReceiveTime.UTC()
		}
		r.Alerts = append(r.Alerts, a)
	}
	return r
}

// ErrorResponse is Alerta's error answer.
type ErrorResponse struct {
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Code    int      `json:"code"`
	Errors  []string `json:"errors"`
}

// NewErrorResponse answers with err and the HTTP status code. errors lists each of
// err's joined errors, so a client sees every bad field of its alert at once.
func NewErrorResponse(code int, err error) ErrorResponse {
	r := ErrorResponse{Status: StatusError, Code: code, Errors: []string{}}
	if err == nil {
		return r
	}
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)
	msgs := make([]string, 0, len(leaves))
	for _, e := range leaves {
		msgs = append(msgs, e.Error())
	}
	r.Message = strings.Join(msgs, "; ")
	r.Errors = msgs
	return r
}
