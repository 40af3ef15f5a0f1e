package incident

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var defaultSort = []Sort{{Field: "lastReceiveTime", Desc: true}}

func TestParseQuery(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		raw  string
		want Query
	}{
		{"", Query{Page: 1, PageSize: DefaultPageSize, Sort: defaultSort}},
		{
			"status=open&status=ack&severity=major&environment=Production",
			Query{Filters: []Filter{
				{Field: "environment", Values: []string{"Production"}},
				{Field: "severity", Values: []string{"major"}},
				{Field: "status", Values: []string{"open", "ack"}},
			}, Page: 1, PageSize: DefaultPageSize, Sort: defaultSort},
		},
		{
			"service=web&resource=~web&event!=Heartbeat&tag=dc%3Da&attributes.region=eu&id=abc&customer=acme&group=~inf&origin=p&type=t&value=1&text=down",
			Query{Filters: []Filter{
				{Field: "attributes.region", Values: []string{"eu"}},
				{Field: "customer", Values: []string{"acme"}},
				{Field: "event", Values: []string{"Heartbeat"}, Negate: true},
				{Field: "group", Values: []string{"inf"}, Contains: true},
				{Field: "id", Values: []string{"abc"}},
				{Field: "origin", Values: []string{"p"}},
				{Field: "resource", Values: []string{"web"}, Contains: true},
				{Field: "service", Values: []string{"web"}},
				{Field: "tag", Values: []string{"dc=a"}},
				{Field: "text", Values: []string{"down"}},
				{Field: "type", Values: []string{"t"}},
				{Field: "value", Values: []string{"1"}},
			}, Page: 1, PageSize: DefaultPageSize, Sort: defaultSort},
		},
		{
			"severity=~crit&status!=closed&status!=expired",
			Query{Filters: []Filter{
				{Field: "severity", Values: []string{"crit"}, Contains: true},
				{Field: "status", Values: []string{"closed", "expired"}, Negate: true},
			}, Page: 1, PageSize: DefaultPageSize, Sort: defaultSort},
		},
		{
			"q=+disk+full+&from-date=2026-01-02T03:00:00Z&to-date=2026-01-02T04:00:00.5%2B01:00&repeat=false",
			Query{Text: "disk full", From: tOld, To: time.Date(2026, 1, 2, 4, 0, 0, 5e8, time.FixedZone("", 3600)),
				Repeat: &no, Page: 1, PageSize: DefaultPageSize, Sort: defaultSort},
		},
		{
			"sort-by=severity&sort-by=-createTime&page=2&page-size=50",
			Query{Sort: []Sort{{Field: "severity"}, {Field: "createTime"}}, Page: 2, PageSize: 50},
		},
		{
			"sort-by=lastReceiveTime&reverse=1&limit=10&show-history=true&show-raw-data=yes",
			Query{Sort: []Sort{{Field: "lastReceiveTime"}}, Page: 1, PageSize: 10, ShowHistory: true, ShowRawData: true},
		},
		{
			"sort-by=-resource&repeat=1&_=123&callback=cb&api-key=k&q.df=text&group-by=status",
			Query{Sort: []Sort{{Field: "resource", Desc: true}}, Repeat: &yes, Page: 1, PageSize: DefaultPageSize},
		},
		{
			"page-size=10000&page=1",
			Query{Page: 1, PageSize: MaxPageSize, Sort: defaultSort},
		},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			v, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseQuery(v)
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseQuery (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseQueryInvalid(t *testing.T) {
	for _, raw := range []string{
		"sort-by=bogus",
		"sort-by=severity&sort-by=tags",
		"sort-by=--severity",
		"colour=red",
		"attributes.=x",
		"severity=fatal",
		"status=notValid",
		"page=0",
		"page=x",
		"page-size=0",
		"page-size=10001",
		"limit=-1",
		"reverse=maybe",
		"repeat=2",
		"show-history=please",
		"from-date=yesterday",
		"to-date=2026-01-02",
	} {
		t.Run(raw, func(t *testing.T) {
			v, err := url.ParseQuery(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseQuery(v); !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseQuery(%s) error = %v, want ErrInvalid", raw, err)
			}
		})
	}
}

func TestQueryMatches(t *testing.T) {
	a := stored(func(a *Alert) {
		a.ID = "abcdef"
		a.LastReceiveID = "987654"
		a.Service = []string{"web", "api"}
		a.Tags = []string{"dc=a", "team=core"}
		a.Attributes = map[string]any{"region": "eu", "shard": 3}
		a.Customer = "acme"
		a.Repeat = true
	})
	tru, fals := true, false
	tests := []struct {
		name string
		q    Query
		want bool
	}{
		{"no filter", Query{}, true},
		{"status any of", Query{Filters: []Filter{{Field: "status", Values: []string{"ack", "open"}}}}, true},
		{"status none of", Query{Filters: []Filter{{Field: "status", Values: []string{"ack", "closed"}}}}, false},
		{"negated status", Query{Filters: []Filter{{Field: "status", Values: []string{"closed"}, Negate: true}}}, true},
		{"negated matching status", Query{Filters: []Filter{{Field: "status", Values: []string{"open"}, Negate: true}}}, false},
		{"filters are ANDed", Query{Filters: []Filter{
			{Field: "status", Values: []string{"open"}},
			{Field: "severity", Values: []string{"minor"}},
		}}, false},
		{"severity", Query{Filters: []Filter{{Field: "severity", Values: []string{"major"}}}}, true},
		{"environment is exact", Query{Filters: []Filter{{Field: "environment", Values: []string{"production"}}}}, false},
		{"contains ignores case", Query{Filters: []Filter{{Field: "environment", Values: []string{"PROD"}, Contains: true}}}, true},
		{"service entry", Query{Filters: []Filter{{Field: "service", Values: []string{"api"}}}}, true},
		{"service not an entry", Query{Filters: []Filter{{Field: "service", Values: []string{"ap"}}}}, false},
		{"negated service", Query{Filters: []Filter{{Field: "service", Values: []string{"web"}, Negate: true}}}, false},
		{"tag", Query{Filters: []Filter{{Field: "tag", Values: []string{"team=core"}}}}, true},
		{"id prefix", Query{Filters: []Filter{{Field: "id", Values: []string{"abc"}}}}, true},
		{"lastReceiveId prefix", Query{Filters: []Filter{{Field: "id", Values: []string{"9876"}}}}, true},
		{"id not a prefix", Query{Filters: []Filter{{Field: "id", Values: []string{"bcd"}}}}, false},
		{"attribute", Query{Filters: []Filter{{Field: "attributes.region", Values: []string{"eu"}}}}, true},
		{"number attribute", Query{Filters: []Filter{{Field: "attributes.shard", Values: []string{"3"}}}}, true},
		{"missing attribute", Query{Filters: []Filter{{Field: "attributes.zone", Values: []string{"eu"}}}}, false},
		{"customer", Query{Filters: []Filter{{Field: "customer", Values: []string{"acme"}}}}, true},
		{"text field", Query{Filters: []Filter{{Field: "text", Values: []string{"OLD"}, Contains: true}}}, true},
		{"q in text", Query{Text: "OLD TEXT"}, true},
		{"q in a tag", Query{Text: "core"}, true},
		{"q in a service", Query{Text: "api"}, true},
		{"q nowhere", Query{Text: "database"}, false},
		{"after from", Query{From: tOld.Add(-time.Second)}, true},
		{"from is exclusive", Query{From: tOld}, false},
		{"to is inclusive", Query{To: tOld}, true},
		{"before to", Query{To: tOld.Add(-time.Second)}, false},
		{"repeat true", Query{Repeat: &tru}, true},
		{"repeat false", Query{Repeat: &fals}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Matches(a); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQueryCompare(t *testing.T) {
	at := func(id string, s Severity, st Status, last time.Time) Alert {
		return Alert{ID: id, Severity: s, Status: st, LastReceiveTime: last, Resource: "r" + id}
	}
	alerts := []Alert{
		at("a", SeverityMinor, StatusOpen, tOld),
		at("b", SeverityCritical, StatusAck, tNow),
		at("c", SeverityCritical, StatusOpen, tOld),
		at("d", SeverityNormal, StatusClosed, tNow),
		at("e", SeverityMinor, StatusOpen, tOld),
	}
	tests := []struct {
		sort []Sort
		want []string
	}{
		{defaultSort, []string{"b", "d", "a", "c", "e"}},
		{[]Sort{{Field: "severity"}, {Field: "lastReceiveTime", Desc: true}}, []string{"b", "c", "a", "e", "d"}},
		{[]Sort{{Field: "status"}, {Field: "resource", Desc: true}}, []string{"e", "c", "a", "b", "d"}},
	}
	for _, tt := range tests {
		q := Query{Sort: tt.sort}
		got := slices.Clone(alerts)
		slices.SortFunc(got, q.Compare)
		var ids []string
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		if diff := cmp.Diff(tt.want, ids); diff != "" {
			t.Errorf("sort %v (-want +got):\n%s", tt.sort, diff)
		}
	}
	if (Query{Page: 3, PageSize: 50}).Offset() != 100 {
		t.Error("Offset of page 3 by 50 is not 100")
	}
}
