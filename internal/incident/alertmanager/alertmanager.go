// Package alertmanager decodes Prometheus Alertmanager's webhook payload (version 4) into
// incident alerts, mapping labels and annotations as Alerta's Prometheus webhook does, with
// the label names configurable. It is pure — bytes in, alerts out — and one bad alert in a
// batch does not lose the others.
package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/incident"
)

// Mapping says which labels fill which alert fields, and the defaults when they are
// absent. An empty field takes DefaultMapping's value.
type Mapping struct {
	// ResourceLabels name the resource: the first one present wins (the others stay as
	// tags). exported_instance comes before instance, as in Alerta: Prometheus only writes
	// it when the scraped series carried its own instance label, which then names the real
	// subject (behind a Pushgateway or a federation) while instance names the middleman. When none is present the resource is the labels the mapping leaves over,
	// sorted and written "k=v,k=v" — the rest of the alert's identity, so that, for
	// example, one alert per pod stays one alert per pod — or, when there are none or they
	// are too long, the alert's fingerprint, or "n/a".
	ResourceLabels []string
	// EventLabel names the event (alertname).
	EventLabel string
	// EnvironmentLabel names the environment (environment), else DefaultEnvironment.
	EnvironmentLabel string
	// SeverityLabel names the severity of a firing alert (severity), else DefaultSeverity;
	// a resolved alert is normal.
	SeverityLabel string
	// GroupLabel names the group (job), else DefaultGroup.
	GroupLabel string
	// ServiceLabel names the services, comma-separated (service).
	ServiceLabel string
	// CorrelateLabel names the correlated events, comma-separated (correlate), as Alerta
	// reads them.
	CorrelateLabel string
	// TimeoutLabel names the timeout in seconds (timeout), else DefaultTimeout.
	TimeoutLabel string

	DefaultEnvironment string
	// DefaultSeverity is the severity of a firing alert with no or an unknown severity
	// label; an unknown value is kept in the attribute incident.AttrOriginalSeverity.
	DefaultSeverity incident.Severity
	DefaultGroup    string
	DefaultTimeout  int
}

// DefaultMapping returns Alerta's mapping: resource from exported_instance or instance,
// event from alertname, environment from environment (default Production), severity from
// severity (default warning), group from job (default Prometheus), services from service,
// timeout one day.
func DefaultMapping() Mapping {
	return Mapping{
		ResourceLabels:     []string{"exported_instance", "instance"},
		EventLabel:         "alertname",
		EnvironmentLabel:   "environment",
		SeverityLabel:      "severity",
		GroupLabel:         "job",
		ServiceLabel:       "service",
		CorrelateLabel:     "correlate",
		TimeoutLabel:       "timeout",
		DefaultEnvironment: "Production",
		DefaultSeverity:    incident.SeverityWarning,
		DefaultGroup:       "Prometheus",
		DefaultTimeout:     86400,
	}
}

func (m Mapping) withDefaults() Mapping {
	d := DefaultMapping()
	if len(m.ResourceLabels) == 0 {
		m.ResourceLabels = d.ResourceLabels
	}
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	set(&m.EventLabel, d.EventLabel)
	set(&m.EnvironmentLabel, d.EnvironmentLabel)
	set(&m.SeverityLabel, d.SeverityLabel)
	set(&m.GroupLabel, d.GroupLabel)
	set(&m.ServiceLabel, d.ServiceLabel)
	set(&m.CorrelateLabel, d.CorrelateLabel)
	set(&m.TimeoutLabel, d.TimeoutLabel)
	set(&m.DefaultEnvironment, d.DefaultEnvironment)
	set(&m.DefaultGroup, d.DefaultGroup)
	if !m.DefaultSeverity.Valid() {
		m.DefaultSeverity = d.DefaultSeverity
	}
	if m.DefaultTimeout <= 0 {
		m.DefaultTimeout = d.DefaultTimeout
	}
	return m
}

// ItemError reports one alert of a batch that could not be mapped; the others are.
type ItemError struct {
	Index       int    // position in the payload's alerts
	Fingerprint string // Alertmanager's, when the alert had one
	Err         error  // wraps incident.ErrInvalid
}

// Error implements error.
func (e *ItemError) Error() string {
	if e.Fingerprint != "" {
		return fmt.Sprintf("alerts[%d] (fingerprint %s): %v", e.Index, e.Fingerprint, e.Err)
	}
	return fmt.Sprintf("alerts[%d]: %v", e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *ItemError) Unwrap() error { return e.Err }

// Version is the webhook payload version Decode reads.
const Version = "4"

// payload is the webhook body; groupLabels, commonLabels and commonAnnotations repeat what
// every alert carries and are not read.
type payload struct {
	Version     string            `json:"version"`
	Status      string            `json:"status"`
	Receiver    string            `json:"receiver"`
	ExternalURL string            `json:"externalURL"`
	Alerts      []json.RawMessage `json:"alerts"`
}

type item struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Decode maps a webhook body onto alerts, each of which has passed Validate, in payload
// order. An alert that cannot be mapped (a wrong JSON type, no alertname, a bad time, a
// field over its bound) is an ItemError and the rest are still returned. The error is for
// the whole body: not JSON, not an object, a version other than 4, no alerts; it wraps
// incident.ErrInvalid.
//
// Each alert: resource, event, environment, severity, group, services and timeout from the
// labels as Mapping says; a resolved alert is normal; the labels left over become tags
// "k=v", sorted; text is the description annotation, else summary, else "SEVERITY:
// resource is event"; value is the value annotation; the other annotations become
// attributes, with externalUrl, generatorUrl, moreInfo (the generator URL), fingerprint,
// startsAt and endsAt; origin is "alertmanager/<receiver>", type "prometheusAlert";
// createTime is startsAt while firing and endsAt once resolved; rawData is the alert's
// JSON.
func Decode(body []byte, m Mapping) ([]incident.Alert, []ItemError, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, nil, fmt.Errorf("%w: malformed JSON at byte %d: %s", incident.ErrInvalid, syn.Offset, syn.Error())
		case errors.As(err, &typ) && typ.Field != "":
			return nil, nil, fmt.Errorf("%w: %s: want %s", incident.ErrInvalid, typ.Field, kindName(typ.Type))
		}
		return nil, nil, fmt.Errorf("%w: body is not a JSON object", incident.ErrInvalid)
	}
	if p.Version != Version {
		return nil, nil, fmt.Errorf("%w: version %q: want %q", incident.ErrInvalid, p.Version, Version)
	}
	if len(p.Alerts) == 0 {
		return nil, nil, fmt.Errorf("%w: no alerts in the payload", incident.ErrInvalid)
	}
	m = m.withDefaults()
	var (
		alerts []incident.Alert
		errs   []ItemError
	)
	for i, raw := range p.Alerts {
		a, fp, err := decodeItem(raw, p, m)
		if err != nil {
			errs = append(errs, ItemError{Index: i, Fingerprint: fp, Err: err})
			continue
		}
		alerts = append(alerts, a)
	}
	return alerts, errs, nil
}

func decodeItem(raw json.RawMessage, p payload, m Mapping) (incident.Alert, string, error) {
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return incident.Alert{}, "", &incident.FieldError{Field: typ.Field, Msg: "want " + kindName(typ.Type)}
		}
		return incident.Alert{}, "", fmt.Errorf("%w: alert is not an object", incident.ErrInvalid)
	}
	fp := it.Fingerprint
	if !validName(fp) {
		fp = "" // not to be echoed in an error
	}
	if it.Status == "" {
		it.Status = p.Status
	}
	labels := maps.Clone(it.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	annotations := maps.Clone(it.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	pop := func(name string) (string, bool) {
		v, ok := labels[name]
		delete(labels, name)
		return v, ok && v != ""
	}

	var a incident.Alert
	event, ok := pop(m.EventLabel)
	if !ok {
		return a, fp, &incident.FieldError{Field: "labels." + m.EventLabel, Msg: "required"}
	}
	a.Event = event
	a.Environment = m.DefaultEnvironment
	if env, ok := pop(m.EnvironmentLabel); ok {
		a.Environment = env
	}
	sevLabel, hasSev := pop(m.SeverityLabel)
	a.Group = m.DefaultGroup
	if g, ok := pop(m.GroupLabel); ok {
		a.Group = g
	}
	if svc, ok := pop(m.ServiceLabel); ok {
		a.Service = splitList(svc)
	}
	if cor, ok := pop(m.CorrelateLabel); ok {
		a.Correlate = splitList(cor)
		if len(a.Correlate) > 0 && !slices.Contains(a.Correlate, a.Event) {
			a.Correlate = append(a.Correlate, a.Event)
		}
	}
	a.Timeout = m.DefaultTimeout
	if t, ok := pop(m.TimeoutLabel); ok {
		if n, err := strconv.Atoi(t); err == nil && n > 0 && n <= incident.MaxTimeout {
			a.Timeout = n // as Alerta, a bad timeout label falls back to the default
		}
	}
	for _, l := range m.ResourceLabels {
		if r, ok := labels[l]; ok && r != "" {
			a.Resource = r
			delete(labels, l)
			break
		}
	}
	tags := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		tags = append(tags, k+"="+labels[k])
	}
	if len(tags) > 0 {
		a.Tags = tags
	}
	if a.Resource == "" {
		a.Resource = fallbackResource(tags, fp)
	}

	startsAt, err := parseTime("startsAt", it.StartsAt)
	if err != nil {
		return incident.Alert{}, fp, err
	}
	endsAt, err := parseTime("endsAt", it.EndsAt)
	if err != nil {
		return incident.Alert{}, fp, err
	}
	attrs := map[string]any{}
	switch it.Status {
	case "firing":
		a.Severity = m.DefaultSeverity
		if hasSev {
			sev, known := incident.ParseSeverity(sevLabel, m.DefaultSeverity)
			if !known {
				attrs[incident.AttrOriginalSeverity] = sevLabel
			}
			a.Severity = sev
		}
		a.CreateTime = startsAt
	case "resolved":
		a.Severity = incident.SeverityNormal
		a.CreateTime = endsAt
		if endsAt.IsZero() {
			a.CreateTime = startsAt
		}
	default:
		return incident.Alert{}, fp, &incident.FieldError{Field: "status", Msg: fmt.Sprintf("%q: want firing or resolved", it.Status)}
	}

	a.Value = annotations["value"]
	delete(annotations, "value")
	switch {
	case annotations["description"] != "":
		a.Text = annotations["description"]
		delete(annotations, "description")
	case annotations["summary"] != "":
		a.Text = annotations["summary"]
		delete(annotations, "summary")
	default:
		a.Text = fmt.Sprintf("%s: %s is %s", strings.ToUpper(string(a.Severity)), a.Resource, a.Event)
	}
	for k, v := range annotations {
		attrs[k] = v
	}
	setNonEmpty := func(k, v string) {
		if v != "" {
			attrs[k] = v
		}
	}
	setNonEmpty("externalUrl", p.ExternalURL)
	setNonEmpty("generatorUrl", it.GeneratorURL)
	setNonEmpty("moreInfo", it.GeneratorURL)
	setNonEmpty("fingerprint", it.Fingerprint)
	if !startsAt.IsZero() {
		attrs["startsAt"] = startsAt.Format(time.RFC3339Nano)
	}
	if !endsAt.IsZero() {
		attrs["endsAt"] = endsAt.Format(time.RFC3339Nano)
	}
	if len(attrs) > 0 {
		a.Attributes = attrs
	}

	a.Origin = "alertmanager"
	if p.Receiver != "" {
		a.Origin += "/" + p.Receiver
	}
	a.EventType = "prometheusAlert"
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err == nil {
		a.RawData = buf.String()
	}
	if err := a.Validate(); err != nil {
		return incident.Alert{}, fp, err
	}
	return a, fp, nil
}

// kindName names a JSON type for an error message.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// fallbackResource names the resource of an alert with no resource label: its leftover
// labels, else its fingerprint, else "n/a".
func fallbackResource(tags []string, fingerprint string) string {
	if r := strings.Join(tags, ","); r != "" && len(r) <= incident.MaxNameLen {
		return r
	}
	if fingerprint != "" {
		return fingerprint
	}
	return "n/a"
}

// validName reports whether s may be echoed: short, printable text.
func validName(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseTime reads an Alertmanager time; empty and Go's zero time (which Alertmanager sends
// as endsAt of a firing alert) are zero.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &incident.FieldError{Field: field, Msg: "want an RFC 3339 time"}
	}
	if t.IsZero() {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}
