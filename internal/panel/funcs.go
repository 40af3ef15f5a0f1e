package panel

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// funcs are the helpers every template may call.
var funcs = template.FuncMap{
	"ago":      ago,
	"datetime": datetime,
	"short":    shortSHA,
	"param":    withParam,
	"list":     func(s ...string) []string { return s },
	"pager":    newPager,
	"lower":    strings.ToLower,
	"add":      func(a, b int) int { return a + b },
	"truncate": truncate,
	"spark":    sparkline,
}

// ago says how long before now t was, in the largest whole unit: "3m ago".
func ago(t any) string {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return "never"
		}
		at = *v
	default:
		return ""
	}
	if at.IsZero() {
		return "never"
	}
	d := time.Since(at)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// datetime is t in UTC for a title attribute or a table: 2006-01-02 15:04:05Z.
func datetime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if v == nil {
			return ""
		}
		return datetime(*v)
	}
	return ""
}

// shortSHA shortens a commit SHA to 7 characters and leaves anything else alone.
func shortSHA(s string) string {
	if len(s) == 40 {
		return s[:7]
	}
	return s
}

func truncate(n int, s string) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// withParam returns the query q with key set to value (empty value removes it) and the
// page reset, as "?…", for filter and sort links that keep the other filters.
func withParam(q url.Values, kv ...string) string {
	c := url.Values{}
	for k, v := range q {
		c[k] = v
	}
	c.Del("page")
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			c.Del(kv[i])
		} else {
			c.Set(kv[i], kv[i+1])
		}
	}
	if len(c) == 0 {
		return "?"
	}
	return "?" + c.Encode()
}

// Pager is a page of a server-side paginated list.
type Pager struct {
	Page, Size, Total int
	query             url.Values
}

// newPager reads the page number from q ("page", from 1).
func newPager(q url.Values, size, total int) Pager {
	return Pager{Page: PageOf(q), Size: size, Total: total, query: q}
}

// PageOf returns the page number asked for in q, at least 1.
func PageOf(q url.Values) int {
	page, _ := strconv.Atoi(q.Get("page"))
	return max(page, 1)
}

// Pages is how many pages the list has, at least 1.
func (p Pager) Pages() int { return max(1, int(math.Ceil(float64(p.Total)/float64(max(p.Size, 1))))) }

// From is the 1-based position of the page's first entry; zero for an empty list.
func (p Pager) From() int {
	if p.Total == 0 {
		return 0
	}
	return (p.Page-1)*p.Size + 1
}

// To is the 1-based position of the page's last entry.
func (p Pager) To() int { return min(p.Page*p.Size, p.Total) }

// Prev is the link to the previous page; empty on the first.
func (p Pager) Prev() string {
	if p.Page <= 1 {
		return ""
	}
	return p.link(p.Page - 1)
}

// Next is the link to the next page; empty on the last.
func (p Pager) Next() string {
	if p.Page >= p.Pages() {
		return ""
	}
	return p.link(p.Page + 1)
}

func (p Pager) link(page int) string {
	c := url.Values{}
	for k, v := range p.query {
		c[k] = v
	}
	c.Set("page", strconv.Itoa(page))
	return "?" + c.Encode()
}

// sparkline draws counts as an inline SVG polyline, for a list row. It returns safe HTML:
// the SVG is built from numbers only.
func sparkline(counts []int64) template.HTML {
	const w, h = 96, 20
	if len(counts) == 0 {
		return ""
	}
	var peak int64 = 1
	for _, c := range counts {
		peak = max(peak, c)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" aria-hidden="true"><polyline points="`, w, h, w, h)
	step := float64(w) / float64(max(len(counts)-1, 1))
	for i, c := range counts {
		fmt.Fprintf(&b, "%.1f,%.1f ", float64(i)*step, float64(h-1)-float64(c)/float64(peak)*float64(h-2))
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers only
}
