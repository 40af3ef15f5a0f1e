package alerta

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/incident"
)

// fieldsOf lists the fields of every *incident.FieldError joined in err.
func fieldsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *incident.FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestDecodeAlert(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 283e6, time.UTC)
	tests := []struct {
		name string
		body string
		want incident.Alert
	}{
		{
			name: "every field",
			body: `{"resource":"web01","event":"NodeDown","environment":"Staging","severity":"Major",
				"correlate":["NodeDown","NodeUp"],"status":"ack","service":["web","api"],"group":"Network",
				"value":"ERROR","text":"web01 is down","tags":["dc1"],"attributes":{"region":"eu","n":12345678901234567890},
				"origin":"curl","type":"networkAlert","createTime":"2026-03-04T05:06:07.283Z","timeout":600,
				"rawData":"raw","customer":"acme","id":"ignored","href":"ignored","unknown":{"x":1}}`,
			want: incident.Alert{
				Resource: "web01", Event: "NodeDown", Environment: "Staging", Severity: incident.SeverityMajor,
				Correlate: []string{"NodeDown", "NodeUp"}, Status: incident.StatusAck, Service: []string{"web", "api"},
				Group: "Network", Value: "ERROR", Text: "web01 is down", Tags: []string{"dc1"},
				Attributes: map[string]any{"region": "eu", "n": json.Number("12345678901234567890")},
				Origin:     "curl", EventType: "networkAlert", CreateTime: created, Timeout: 600, RawData: "raw", Customer: "acme",
			},
		},
		{
			name: "defaults as Alerta's",
			body: `{"resource":"web01","event":"NodeDown"}`,
			want: incident.Alert{
				Resource: "web01", Event: "NodeDown", Environment: "Production", Severity: incident.SeverityNormal,
				Group: "Misc", EventType: "exceptionAlert", Timeout: 86400,
			},
		},
		{
			name: "nulls are absent",
			body: `{"resource":"web01","event":"NodeDown","environment":null,"severity":null,"tags":null,"timeout":null,"rawData":null,"value":null,"customer":null}`,
			want: incident.Alert{
				Resource: "web01", Event: "NodeDown", Environment: "Production", Severity: incident.SeverityNormal,
				Group: "Misc", EventType: "exceptionAlert", Timeout: 86400,
			},
		},
		{
			name: "unknown severity takes the default and is recorded",
			body: `{"resource":"web01","event":"NodeDown","severity":"P1","attributes":{"a":"b"}}`,
			want: incident.Alert{
				Resource: "web01", Event: "NodeDown", Environment: "Production", Severity: incident.SeverityWarning,
				Attributes: map[string]any{"a": "b", incident.AttrOriginalSeverity: "P1"},
				Group:      "Misc", EventType: "exceptionAlert", Timeout: 86400,
			},
		},
		{
			name: "numeric value becomes its text; zero timeout never expires",
			body: `{"resource":"web01","event":"Load","value":12.5,"timeout":0}`,
			want: incident.Alert{
				Resource: "web01", Event: "Load", Environment: "Production", Severity: incident.SeverityNormal,
				Value: "12.5", Group: "Misc", EventType: "exceptionAlert",
			},
		},
		{
			name: "correlate gets the alert's own event; JSON rawData is kept compact",
			body: `{"resource":"web01","event":"NodeDown","correlate":["NodeUp"],"rawData":{"a": [1, 2]}}`,
			want: incident.Alert{
				Resource: "web01", Event: "NodeDown", Environment: "Production", Severity: incident.SeverityNormal,
				Correlate: []string{"NodeUp", "NodeDown"}, RawData: `{"a":[1,2]}`,
				Group: "Misc", EventType: "exceptionAlert", Timeout: 86400,
			},
		},
		{
			name: "createTime with an offset is kept in UTC",
			body: `{"resource":"r","event":"e","createTime":"2026-03-04T06:06:07.283+01:00"}`,
			want: incident.Alert{
				Resource: "r", Event: "e", Environment: "Production", Severity: incident.SeverityNormal,
				Group: "Misc", EventType: "exceptionAlert", Timeout: 86400, CreateTime: created,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAlert([]byte(tt.body), DefaultOptions())
			if err != nil {
				t.Fatalf("DecodeAlert: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeAlert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeAlertOptions(t *testing.T) {
	o := Options{DefaultEnvironment: "dev", DefaultSeverity: incident.SeverityIndeterminate, DefaultTimeout: 60}
	got, err := DecodeAlert([]byte(`{"resource":"r","event":"e","severity":"sev1"}`), o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Environment != "dev" || got.Severity != incident.SeverityIndeterminate || got.Timeout != 60 {
		t.Errorf("defaults not applied: %+v", got)
	}
}

func TestDecodeAlertInvalid(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantFields []string // nil: a whole-body error
	}{
		{"empty body", ``, nil},
		{"malformed JSON", `{"resource":`, nil},
		{"not an object", `["resource"]`, nil},
		{"null", `null`, nil},
		{"a string", `"alert"`, nil},
		{"missing resource", `{"event":"e"}`, []string{"resource"}},
		{"missing resource and event", `{"severity":"major"}`, []string{"resource", "event"}},
		{"blank event", `{"resource":"r","event":"  "}`, []string{"event"}},
		{"resource not a string", `{"resource":1,"event":"e"}`, []string{"resource"}},
		{"tags not a list", `{"resource":"r","event":"e","tags":"a,b"}`, []string{"tags"}},
		{"tags of numbers", `{"resource":"r","event":"e","tags":[1]}`, []string{"tags"}},
		{"service not a list", `{"resource":"r","event":"e","service":"web"}`, []string{"service"}},
		{"correlate not a list", `{"resource":"r","event":"e","correlate":{}}`, []string{"correlate"}},
		{"attributes not an object", `{"resource":"r","event":"e","attributes":[1]}`, []string{"attributes"}},
		{"timeout a string", `{"resource":"r","event":"e","timeout":"60"}`, []string{"timeout"}},
		{"timeout a fraction", `{"resource":"r","event":"e","timeout":1.5}`, []string{"timeout"}},
		{"timeout negative", `{"resource":"r","event":"e","timeout":-1}`, []string{"timeout"}},
		{"timeout huge", `{"resource":"r","event":"e","timeout":999999999999}`, []string{"timeout"}},
		{"value an object", `{"resource":"r","event":"e","value":{"a":1}}`, []string{"value"}},
		{"value a boolean", `{"resource":"r","event":"e","value":true}`, []string{"value"}},
		{"createTime not a time", `{"resource":"r","event":"e","createTime":"yesterday"}`, []string{"createTime"}},
		{"createTime a number", `{"resource":"r","event":"e","createTime":1700000000}`, []string{"createTime"}},
		{"empty customer", `{"resource":"r","event":"e","customer":""}`, []string{"customer"}},
		{"unknown status", `{"resource":"r","event":"e","status":"notValid"}`, []string{"status"}},
		{"severity a number", `{"resource":"r","event":"e","severity":1}`, []string{"severity"}},
		{"several wrong types", `{"resource":1,"event":"e","tags":"x","timeout":"y"}`, []string{"resource", "tags", "timeout"}},
		{"NUL in text", `{"resource":"r","event":"e","text":"a\u0000b"}`, []string{"text"}},
		{"resource too long", `{"resource":"` + strings.Repeat("r", incident.MaxNameLen+1) + `","event":"e"}`, []string{"resource"}},
		{"too many tags", `{"resource":"r","event":"e","tags":[` + strings.TrimSuffix(strings.Repeat(`"t",`, incident.MaxListLen+1), ",") + `]}`, []string{"tags"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeAlert([]byte(tt.body), DefaultOptions())
			if !errors.Is(err, incident.ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			if diff := cmp.Diff(tt.wantFields, fieldsOf(err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestDecodeAction(t *testing.T) {
	tests := []struct {
		body       string
		want       ActionRequest
		wantFields []string
	}{
		{`{"action":"ack","text":"mine","timeout":3600}`, ActionRequest{Action: "ack", Text: "mine", Timeout: 3600}, nil},
		{`{"action":"shelve"}`, ActionRequest{Action: "shelve", Text: "shelve operator action"}, nil},
		{`{"action":"close","text":""}`, ActionRequest{Action: "close"}, nil},
		{`{"text":"x"}`, ActionRequest{}, []string{"action"}},
		{`{"action":5}`, ActionRequest{}, []string{"action"}},
		{`{"action":"ack","timeout":-1}`, ActionRequest{}, []string{"timeout"}},
		{`{"action":"ack","timeout":"1h"}`, ActionRequest{}, []string{"timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, err := DecodeAction([]byte(tt.body))
			if diff := cmp.Diff(tt.wantFields, fieldsOf(err)); diff != "" {
				t.Fatalf("fields (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeAction (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := DecodeAction([]byte(`nope`)); !errors.Is(err, incident.ErrInvalid) {
		t.Errorf("malformed body: error = %v, want ErrInvalid", err)
	}
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		body       string
		want       StatusRequest
		wantFields []string
	}{
		{`{"status":"closed","text":"done","timeout":10}`, StatusRequest{Status: incident.StatusClosed, Text: "done", Timeout: 10}, nil},
		{`{"status":"ack"}`, StatusRequest{Status: incident.StatusAck}, nil},
		{`{}`, StatusRequest{}, []string{"status"}},
		{`{"status":"resolved"}`, StatusRequest{}, []string{"status"}},
		{`{"status":["open"]}`, StatusRequest{}, []string{"status"}},
		{`{"status":"open","timeout":-5}`, StatusRequest{}, []string{"timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, err := DecodeStatus([]byte(tt.body))
			if diff := cmp.Diff(tt.wantFields, fieldsOf(err)); diff != "" {
				t.Fatalf("fields (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeStatus (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEnvelopes pins the JSON of each answer, as Alerta clients parse it.
func TestEnvelopes(t *testing.T) {
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t2 := t1.Add(time.Minute)
	alert := func(id string, last time.Time) incident.Alert {
		return incident.Alert{ID: id, Resource: "r", Event: "e", Environment: "Production",
			Severity: incident.SeverityMajor, Status: incident.StatusOpen, LastReceiveTime: last, RawData: "raw",
			History: []incident.History{{ID: id, ChangeType: "new"}}}
	}
	mustJSON := func(v any) map[string]any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	keys := func(m map[string]any) map[string]bool {
		out := map[string]bool{}
		for k := range m {
			out[k] = true
		}
		return out
	}

	one := mustJSON(NewAlertResponse(alert("a1", t1)))
	if one["status"] != "ok" || one["id"] != "a1" || one["alert"].(map[string]any)["id"] != "a1" {
		t.Errorf("alert response = %v", one)
	}
	if diff := cmp.Diff(map[string]any{"status": "ok"}, mustJSON(NewOKResponse())); diff != "" {
		t.Errorf("ok response (-want +got):\n%s", diff)
	}

	q := incident.Query{Page: 2, PageSize: 2}
	list := NewListResponse([]incident.Alert{alert("a1", t2), alert("a2", t1)}, 5, q,
		map[incident.Severity]int{incident.SeverityMajor: 5}, map[incident.Status]int{incident.StatusOpen: 5}, t1.Add(time.Hour), true)
	got := mustJSON(list)
	wantKeys := map[string]bool{"status": true, "alerts": true, "total": true, "page": true, "pageSize": true, "pages": true,
		"more": true, "severityCounts": true, "statusCounts": true, "lastTime": true, "autoRefresh": true}
	if diff := cmp.Diff(wantKeys, keys(got)); diff != "" {
		t.Errorf("list keys (-want +got):\n%s", diff)
	}
	if got["total"] != 5.0 || got["pages"] != 3.0 || got["more"] != true || got["lastTime"] != "2026-01-02T03:05:05Z" ||
		got["severityCounts"].(map[string]any)["major"] != 5.0 {
		t.Errorf("list = %v", got)
	}
	first := got["alerts"].([]any)[0].(map[string]any)
	if first["rawData"] != "" || len(first["history"].([]any)) != 0 {
		t.Errorf("list alert keeps rawData/history not asked for: %v", first)
	}
	q.ShowHistory, q.ShowRawData = true, true
	full := NewListResponse([]incident.Alert{alert("a1", t2)}, 1, q, nil, nil, t1, false)
	if full.Alerts[0].RawData != "raw" || len(full.Alerts[0].History) != 1 || full.More {
		t.Errorf("list with show-history/show-raw-data = %+v", full)
	}

	empty := mustJSON(NewListResponse(nil, 0, incident.Query{Page: 1, PageSize: 1000}, nil, nil, t1, true))
	if empty["message"] != "not found" || len(empty["alerts"].([]any)) != 0 || empty["pages"] != 0.0 ||
		empty["lastTime"] != "2026-01-02T03:04:05Z" || empty["severityCounts"] == nil {
		t.Errorf("empty list = %v", empty)
	}

	_, err := DecodeAlert([]byte(`{"severity":"major"}`), DefaultOptions())
	e := mustJSON(NewErrorResponse(http.StatusBadRequest, err))
	if diff := cmp.Diff(map[string]any{
		"status": "error", "code": 400.0, "message": "resource: required; event: required",
		"errors": []any{"resource: required", "event: required"},
	}, e); diff != "" {
		t.Errorf("error response (-want +got):\n%s", diff)
	}
}

func FuzzDecodeAlert(f *testing.F) {
	for _, s := range []string{
		`{"resource":"web01","event":"NodeDown","environment":"Production","severity":"major","correlate":["NodeUp"],
			"service":["web"],"group":"g","value":1,"text":"t","tags":["a"],"attributes":{"a":{"b":[1,"c"]}},
			"origin":"o","type":"t","createTime":"2026-01-02T03:04:05.000Z","timeout":60,"rawData":{"x":1},"customer":"c"}`,
		`{"resource":"r","event":"e","severity":"P1","status":"ack"}`,
		`{"resource":1,"event":null,"tags":"x","timeout":-1}`,
		`{"resource":"r","event":"e","text":"\u0000"}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := DecodeAlert(body, DefaultOptions())
		if err != nil {
			if !errors.Is(err, incident.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("decoded alert does not validate: %v", err)
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("decoded alert does not marshal: %v", err)
		}
		// What Ferry returns must read back as the same alert.
		var back incident.Alert
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("alert JSON does not read back: %v", err)
		}
		if back.Resource != a.Resource || back.Event != a.Event || back.Severity != a.Severity {
			t.Fatalf("alert JSON reads back as %+v, want %+v", back, a)
		}
	})
}
