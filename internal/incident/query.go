package incident

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Paging bounds of a Query.
const (
	// DefaultPageSize is Alerta's page size when the query gives none.
	DefaultPageSize = 1000
	// MaxPageSize bounds page-size: a bigger page is refused, not silently cut.
	MaxPageSize = 10000
)

// FilterFields are the fields a Query filters on, besides "attributes.<name>". service and
// tag match when any entry of the alert's list matches; id matches a prefix of the id or
// of lastReceiveId, as in Alerta.
var FilterFields = []string{
	"id", "resource", "event", "environment", "severity", "status", "service", "group",
	"value", "text", "tag", "origin", "type", "customer",
}

// SortFields are the fields a Query sorts on, each with its default direction: times sort
// newest first, severity most severe first, status in the order of the Status constants,
// the rest ascending.
var SortFields = []string{
	"resource", "event", "environment", "severity", "status", "group", "value", "text",
	"origin", "type", "customer", "createTime", "timeout", "duplicateCount", "repeat",
	"previousSeverity", "trendIndication", "receiveTime", "lastReceiveTime", "updateTime",
}

// TextFields are the fields the free-text search q looks in, case-insensitively.
var TextFields = []string{"resource", "event", "environment", "service", "group", "value", "text", "origin", "tags"}

// Query selects, orders and pages stored alerts, as Alerta's GET /api/alerts does.
type Query struct {
	// Filters all hold (AND); within one, any value matches (OR).
	Filters []Filter
	// Text, from q, must occur in one of TextFields, ignoring case.
	Text string
	// From and To bound lastReceiveTime: after From, up to and including To; zero is open.
	From, To time.Time
	// Repeat, when set, keeps alerts whose repeat flag equals it.
	Repeat *bool
	// Sort orders the result, first key first; the store breaks ties by id.
	Sort []Sort
	// Page counts from 1; PageSize is at most MaxPageSize.
	Page, PageSize int
	// ShowRawData and ShowHistory ask for rawData and history in a list, which Alerta
	// leaves out by default.
	ShowRawData, ShowHistory bool
}

// Filter is one field condition of a Query.
type Filter struct {
	Field  string   // one of FilterFields or attributes.<name>
	Values []string // any of them matches
	// Negate keeps the alerts that match none of Values (Alerta's field!=value).
	Negate bool
	// Contains matches Values as case-insensitive substrings instead of whole values
	// (Alerta's ~value).
	Contains bool
}

// Sort is one sort key of a Query.
type Sort struct {
	Field string // one of SortFields
	Desc  bool
}

// Offset returns how many alerts the query's page skips.
func (q Query) Offset() int { return (q.Page - 1) * q.PageSize }

// ParseQuery reads Alerta's alert list parameters: a filter per field in FilterFields or
// attributes.<name> (repeated = OR; "field!=v" negates; "~v" matches a substring), q,
// from-date and to-date (RFC 3339), repeat, sort-by (repeated; "-field" reverses its
// default direction), reverse (reverses all), page, page-size (or limit), show-raw-data
// and show-history. Any other parameter, an unknown sort field, a malformed number, time
// or boolean, or an unknown severity or status returns an error wrapping ErrInvalid.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Page: 1, PageSize: DefaultPageSize}
	reverse := false
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic filters and errors
	for _, k := range keys {
		vals := v[k]
		last := ""
		if len(vals) > 0 {
			last = vals[len(vals)-1]
		}
		var err error
		switch k {
		case "_", "callback", "token", "api-key", "q.df", "group-by":
			// Alerta's JSONP, auth and grouping parameters: accepted, not filters.
		case "q":
			q.Text = strings.TrimSpace(last)
		case "from-date":
			q.From, err = parseTime(k, last)
		case "to-date":
			q.To, err = parseTime(k, last)
		case "repeat":
			var b bool
			b, err = parseBool(k, last)
			q.Repeat = &b
		case "sort-by":
			for _, s := range vals {
				srt, err := parseSort(s)
				if err != nil {
					return Query{}, err
				}
				q.Sort = append(q.Sort, srt)
			}
		case "reverse":
			reverse, err = parseBool(k, last)
		case "page":
			q.Page, err = parseInt(k, last, 1, 1<<30)
		case "page-size", "limit":
			q.PageSize, err = parseInt(k, last, 1, MaxPageSize)
		case "show-raw-data":
			q.ShowRawData, err = parseBool(k, last)
		case "show-history":
			q.ShowHistory, err = parseBool(k, last)
		default:
			var f Filter
			f, err = parseFilter(k, vals)
			if err == nil {
				q.Filters = append(q.Filters, f)
			}
		}
		if err != nil {
			return Query{}, err
		}
	}
	if len(q.Sort) == 0 {
		q.Sort = []Sort{{Field: "lastReceiveTime", Desc: true}}
	}
	if reverse {
		for i := range q.Sort {
			q.Sort[i].Desc = !q.Sort[i].Desc
		}
	}
	return q, nil
}

func parseFilter(key string, vals []string) (Filter, error) {
	name, negate := strings.CutSuffix(key, "!")
	f := Filter{Field: name, Negate: negate}
	if !slices.Contains(FilterFields, name) && (!strings.HasPrefix(name, "attributes.") || name == "attributes.") {
		return Filter{}, fmt.Errorf("query parameter %q: %w: not a filter", key, ErrInvalid)
	}
	for _, s := range vals {
		if rest, ok := strings.CutPrefix(s, "~"); ok && name != "id" {
			f.Contains = true
			s = rest
		}
		f.Values = append(f.Values, s)
	}
	if len(f.Values) == 0 {
		return Filter{}, fmt.Errorf("query parameter %q: %w: no value", key, ErrInvalid)
	}
	if f.Contains {
		return f, nil
	}
	for _, s := range f.Values {
		switch {
		case name == "severity" && !Severity(s).Valid():
			return Filter{}, fmt.Errorf("query parameter %q: %w: %q is not a severity", key, ErrInvalid, s)
		case name == "status" && !Status(s).Valid():
			return Filter{}, fmt.Errorf("query parameter %q: %w: %q is not a status", key, ErrInvalid, s)
		}
	}
	return f, nil
}

func parseSort(s string) (Sort, error) {
	name, flip := strings.CutPrefix(s, "-")
	if !slices.Contains(SortFields, name) {
		return Sort{}, fmt.Errorf("sort-by %q: %w: want one of %s", s, ErrInvalid, strings.Join(SortFields, ", "))
	}
	desc := strings.HasSuffix(name, "Time")
	return Sort{Field: name, Desc: desc != flip}, nil
}

func parseTime(k, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("query parameter %s: %w: %q is not an RFC 3339 time", k, ErrInvalid, s)
	}
	return t, nil
}

func parseBool(k, s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true", "y", "yes", "on":
		return true, nil
	case "0", "f", "false", "n", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("query parameter %s: %w: %q is not a boolean", k, ErrInvalid, s)
}

func parseInt(k, s string, minVal, maxVal int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < minVal || n > maxVal {
		return 0, fmt.Errorf("query parameter %s: %w: want an integer from %d to %d", k, ErrInvalid, minVal, maxVal)
	}
	return n, nil
}

// Matches reports whether a passes the query's filters, text and time bounds; it is the
// meaning the stores' SQL must have, and what the conformance suite checks them against.
func (q Query) Matches(a Alert) bool {
	for _, f := range q.Filters {
		if f.matches(a) == f.Negate {
			return false
		}
	}
	if q.Text != "" && !textMatches(a, q.Text) {
		return false
	}
	if !q.From.IsZero() && !a.LastReceiveTime.After(q.From) {
		return false
	}
	if !q.To.IsZero() && a.LastReceiveTime.After(q.To) {
		return false
	}
	return q.Repeat == nil || *q.Repeat == a.Repeat
}

func (f Filter) matches(a Alert) bool {
	var have []string
	switch f.Field {
	case "id":
		for _, v := range f.Values {
			if strings.HasPrefix(a.ID, v) || strings.HasPrefix(a.LastReceiveID, v) {
				return true
			}
		}
		return false
	case "service":
		have = a.Service
	case "tag":
		have = a.Tags
	case "severity":
		have = []string{string(a.Severity)}
	case "status":
		have = []string{string(a.Status)}
	case "value":
		have = []string{a.Value}
	case "text":
		have = []string{a.Text}
	default:
		have = []string{field(a, f.Field)}
	}
	for _, h := range have {
		for _, v := range f.Values {
			if f.Contains && containsFold(h, v) || !f.Contains && h == v {
				return true
			}
		}
	}
	return false
}

func textMatches(a Alert, text string) bool {
	for _, s := range []string{a.Resource, a.Event, a.Environment, a.Group, a.Value, a.Text, a.Origin} {
		if containsFold(s, text) {
			return true
		}
	}
	for _, l := range [][]string{a.Service, a.Tags} {
		for _, s := range l {
			if containsFold(s, text) {
				return true
			}
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// SortRank is the status's place in Alerta's status sort order, as Compare uses it, for
// stores that sort in their own query language.
func (s Status) SortRank() int { return statusOrder[s] }

// Statuses returns every status, in sort order.
func Statuses() []Status {
	return []Status{StatusOpen, StatusAssign, StatusAck, StatusShelved, StatusBlackout, StatusClosed,
		StatusExpired, StatusUnknown}
}

// statusOrder is Alerta's status sort order.
var statusOrder = map[Status]int{
	StatusOpen: 0, StatusAssign: 1, StatusAck: 2, StatusShelved: 3,
	StatusBlackout: 4, StatusClosed: 5, StatusExpired: 6, StatusUnknown: 7,
}

// Compare orders a and b by the query's Sort, then by id, as a store must.
func (q Query) Compare(a, b Alert) int {
	for _, s := range q.Sort {
		c := compareField(a, b, s.Field)
		if s.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(a.ID, b.ID)
}

func compareField(a, b Alert, name string) int {
	boolInt := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	switch name {
	case "severity":
		return cmp.Compare(a.Severity.Rank(), b.Severity.Rank())
	case "previousSeverity":
		return cmp.Compare(a.PreviousSeverity.Rank(), b.PreviousSeverity.Rank())
	case "status":
		return cmp.Compare(statusOrder[a.Status], statusOrder[b.Status])
	case "value":
		return cmp.Compare(a.Value, b.Value)
	case "text":
		return cmp.Compare(a.Text, b.Text)
	case "trendIndication":
		return cmp.Compare(a.TrendIndication, b.TrendIndication)
	case "createTime":
		return a.CreateTime.Compare(b.CreateTime)
	case "receiveTime":
		return a.ReceiveTime.Compare(b.ReceiveTime)
	case "lastReceiveTime":
		return a.LastReceiveTime.Compare(b.LastReceiveTime)
	case "updateTime":
		return a.UpdateTime.Compare(b.UpdateTime)
	case "timeout":
		return cmp.Compare(a.Timeout, b.Timeout)
	case "duplicateCount":
		return cmp.Compare(a.DuplicateCount, b.DuplicateCount)
	case "repeat":
		return cmp.Compare(boolInt(a.Repeat), boolInt(b.Repeat))
	}
	return cmp.Compare(field(a, name), field(b, name))
}
