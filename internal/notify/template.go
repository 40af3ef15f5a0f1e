package notify

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Format is the markup a receiver's service reads. Templates escape values and build links
// in it through the esc and link functions, so one template serves every receiver.
type Format string

// The formats of the receivers.
const (
	// FormatHTML is Telegram's HTML parse mode.
	FormatHTML Format = "html"
	// FormatMarkdown is Rocket.Chat's message Markdown.
	FormatMarkdown Format = "markdown"
	// FormatSlack is Slack's mrkdwn, also read by Mattermost.
	FormatSlack Format = "slack"
	// FormatPlain is text with no markup, for the generic webhook.
	FormatPlain Format = "plain"
)

// Template is a title and a text in Go text/template syntax, executed with the Event as dot.
// Functions: esc (escape for the receiver's markup), link URL TEXT, short (a 7-character
// SHA), firstLine, truncate N, duration, and upper. Attributes are read with
// {{index .Attributes "key"}}, which is empty when an event lacks the key.
//
// Keys are exact event types (templates do not take patterns) or "default", for every type
// without a template of its own.
type Template struct {
	Title string `yaml:"title" json:"title,omitempty"`
	Text  string `yaml:"text" json:"text,omitempty"`
}

// defaultTemplates are the messages for the delivery events and the test message. Event types
// without one use defaultTemplate.
var defaultTemplates = map[string]Template{
	EventDeployStarted: {
		Title: `{{esc .Application}} deploying to {{esc .Environment}}`,
		Text:  `Sync of {{template "revision" .}} started.{{template "commit" .}}`,
	},
	EventDeploySucceeded: {
		Title: `✅ {{esc .Application}} deployed to {{esc .Environment}}`,
		Text: `{{template "revision" .}} is applied and healthy{{if .Duration}} in {{duration .Duration}}{{end}}.{{template "commit" .}}` +
			`{{with .Changes}}` + "\n" + `Changes: {{.Created}} created, {{.Configured}} configured, {{.Pruned}} pruned, {{.Unchanged}} unchanged.{{end}}{{template "panel" .}}`,
	},
	EventDeployFailed: {
		Title: `❌ {{esc .Application}} failed to deploy to {{esc .Environment}}`,
		Text: `Sync of {{template "revision" .}} failed{{if .Duration}} after {{duration .Duration}}{{end}}.` +
			`{{if .Object}}` + "\n" + `Object: {{esc .Object}}{{end}}` +
			`{{if .Reason}}` + "\n" + `Reason: {{esc (truncate 1500 .Reason)}}{{end}}{{template "commit" .}}{{template "panel" .}}`,
	},
	EventDeployRollback: {
		Title: `↩️ {{esc .Application}} rolled back in {{esc .Environment}}`,
		Text:  `{{esc .Summary}}{{template "commit" .}}{{template "panel" .}}`,
	},
	EventHealthDegraded: {
		Title: `⚠️ {{esc .Application}} is degraded in {{esc .Environment}}`,
		Text: `{{template "revision" .}} became unhealthy.{{if .Object}}` + "\n" + `Object: {{esc .Object}}{{end}}` +
			`{{if .Reason}}` + "\n" + `Reason: {{esc (truncate 1500 .Reason)}}{{end}}{{template "panel" .}}`,
	},
	EventHealthRecovered: {
		Title: `💚 {{esc .Application}} recovered in {{esc .Environment}}`,
		Text:  `{{template "revision" .}} is healthy again.{{template "panel" .}}`,
	},
	EventSecretRotated: {
		Title: `🔑 {{esc .Application}}: secret rotated in {{esc .Environment}}`,
		Text:  `{{esc .Summary}}{{template "panel" .}}`,
	},
	EventTest: {
		Title: `Test message from Ferry`,
		Text:  `{{esc .Summary}}`,
	},
	EventAlertRaised: {
		Title: `🔥 {{template "alert" .}}`,
		Text:  `{{template "alertbody" .}}`,
	},
	EventAlertEscalated: {
		Title: `⬆️ {{template "alert" .}}`,
		Text:  `Severity raised from {{esc (index .Attributes "previousSeverity")}}.` + "\n" + `{{template "alertbody" .}}`,
	},
	EventAlertReopened: {
		Title: `🔁 {{template "alert" .}} reopened`,
		Text:  `{{template "alertbody" .}}`,
	},
	EventAlertClosed: {
		Title: `✅ {{esc (index .Attributes "event")}} on {{esc .Object}} closed`,
		Text:  `{{template "alertbody" .}}`,
	},
	EventErrorNew: {
		Title: `🐞 New error{{template "errorwhere" .}}`,
		Text:  `{{template "errorbody" .}}`,
	},
	EventErrorRegressed: {
		Title: `🔁 Regression{{template "errorwhere" .}}`,
		Text:  `{{template "errorbody" .}}`,
	},
	EventErrorSpike: {
		Title: `📈 Error spike{{template "errorwhere" .}}`,
		Text:  `{{template "errorbody" .}}`,
	},
}

var defaultTemplate = Template{
	Title: `{{if .Application}}{{esc .Application}}: {{end}}{{esc .Type}}`,
	Text:  `{{esc .Summary}}{{template "panel" .}}`,
}

// eventType is the grammar of an event type, without patterns.
var eventType = regexp.MustCompile(`^[a-z]+(\.[a-z_]+)+$`)

// partials are the shared pieces the default templates call; overrides may call them too.
const partials = `{{define "revision"}}{{if .CommitURL}}{{link .CommitURL (short .Revision)}}{{else}}{{esc (short .Revision)}}{{end}}{{end}}` +
	`{{define "commit"}}{{if .CommitMessage}}` + "\n" + `{{esc (truncate 300 (firstLine .CommitMessage))}}{{if .Author}} — {{esc .Author}}{{end}}{{end}}{{end}}` +
	`{{define "panel"}}{{if .URL}}` + "\n" + `{{link .URL "Open in Ferry"}}{{end}}{{end}}` +
	`{{define "alert"}}[{{esc (upper (index .Attributes "severity"))}}] {{esc (index .Attributes "event")}} on {{esc .Object}}` +
	`{{if .Environment}} ({{esc .Environment}}){{end}}{{end}}` +
	`{{define "errorwhere"}}{{if .Application}} in {{esc .Application}}{{end}}{{if .Environment}} ({{esc .Environment}}){{end}}{{end}}` +
	`{{define "errorbody"}}{{esc (truncate 1500 .Summary)}}{{if .Reason}}` + "\n" + `at {{esc (truncate 300 .Reason)}}{{end}}` +
	`{{if .Application}}` + "\n" + `Release: {{esc .Application}} at {{template "revision" .}}{{template "commit" .}}` +
	`{{else}}{{with index .Attributes "release"}}` + "\n" + `Release: {{esc .}}{{end}}{{end}}{{template "panel" .}}{{end}}` +
	`{{define "alertbody"}}{{if .Reason}}{{esc (truncate 1500 .Reason)}}{{end}}` +
	`{{if .Application}}` + "\n" + `Release: {{esc .Application}} at {{template "revision" .}}{{end}}{{template "panel" .}}{{end}}`

// Templates renders events into messages for one channel: its overrides first, then the
// defaults.
type Templates struct {
	format   Format
	byType   map[string]*compiled
	fallback *compiled
}

type compiled struct{ title, text *template.Template }

// NewTemplates compiles the defaults and the overrides, keyed by event type ("default"
// overrides the fallback for types without their own), for a receiver reading format. Each
// template is executed against a sample event, so a typo in a field name fails here, at
// start, and not at the first deploy.
func NewTemplates(format Format, overrides map[string]Template) (*Templates, error) {
	t := &Templates{format: format, byType: map[string]*compiled{}}
	for typ, tmpl := range defaultTemplates {
		c, err := compile(format, typ, tmpl)
		if err != nil {
			return nil, fmt.Errorf("default template %s: %w", typ, err)
		}
		t.byType[typ] = c
	}
	fb, err := compile(format, "default", defaultTemplate)
	if err != nil {
		return nil, fmt.Errorf("default template: %w", err)
	}
	t.fallback = fb
	for typ, tmpl := range overrides {
		if typ != "default" && !eventType.MatchString(typ) {
			return nil, fmt.Errorf("%w: template key %q is not an event type (such as deploy.failed) or default", ErrInvalid, typ)
		}
		base, ok := defaultTemplates[typ]
		if !ok { // "default", and types without a template of their own
			base = defaultTemplate
		}
		// An override may set only the title or only the text.
		if tmpl.Title == "" {
			tmpl.Title = base.Title
		}
		if tmpl.Text == "" {
			tmpl.Text = base.Text
		}
		c, err := compile(format, typ, tmpl)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", typ, err)
		}
		if _, err := c.render(SampleEvent(typ)); err != nil {
			return nil, fmt.Errorf("template %s: %w", typ, err)
		}
		if typ == "default" {
			t.fallback = c
		} else {
			t.byType[typ] = c
		}
	}
	return t, nil
}

func compile(format Format, name string, tmpl Template) (*compiled, error) {
	funcs := funcMap(format)
	parse := func(part, text string) (*template.Template, error) {
		t, err := template.New(name + "." + part).Funcs(funcs).Option("missingkey=error").Parse(partials)
		if err != nil {
			return nil, err
		}
		if t, err = t.Parse(text); err != nil {
			return nil, fmt.Errorf("%s: %w", part, err)
		}
		return t, nil
	}
	title, err := parse("title", tmpl.Title)
	if err != nil {
		return nil, err
	}
	text, err := parse("text", tmpl.Text)
	if err != nil {
		return nil, err
	}
	return &compiled{title: title, text: text}, nil
}

func (c *compiled) render(e Event) (Message, error) {
	var title, text bytes.Buffer
	if err := c.title.Execute(&title, e); err != nil {
		return Message{}, err
	}
	if err := c.text.Execute(&text, e); err != nil {
		return Message{}, err
	}
	return Message{Title: strings.TrimSpace(title.String()), Text: strings.TrimSpace(text.String())}, nil
}

// Render turns e into the message for this channel: title and text from the templates,
// severity, link and fields from the event.
func (t *Templates) Render(e Event) (Message, error) {
	c := t.byType[e.Type]
	if c == nil {
		c = t.fallback
	}
	m, err := c.render(e)
	if err != nil {
		return Message{}, fmt.Errorf("render %s: %w", e.Type, err)
	}
	m.Severity = SeverityOf(e.Type)
	m.Link = e.URL
	m.Fields = fieldsOf(e)
	m.Event = e
	return m, nil
}

// maxGroupLines is how many alerts a grouped message lists before "and N more".
const maxGroupLines = 25

// RenderGroup renders several events as one message: one event as Render does; several,
// as a title counting them by type and a text listing each one's title, worst first as
// received. It is how a burst of alerts becomes one message.
func (t *Templates) RenderGroup(events []Event) (Message, error) {
	if len(events) == 1 {
		return t.Render(events[0])
	}
	counts := map[string]int{}
	var order []string
	var lines []string
	worst := SeverityGood
	rank := map[Severity]int{SeverityGood: 0, SeverityInfo: 1, SeverityWarning: 2, SeverityDanger: 3}
	for i, e := range events {
		m, err := t.Render(e)
		if err != nil {
			return Message{}, err
		}
		if rank[m.Severity] > rank[worst] {
			worst = m.Severity
		}
		verb := e.Type[strings.LastIndex(e.Type, ".")+1:]
		if counts[verb] == 0 {
			order = append(order, verb)
		}
		counts[verb]++
		if i < maxGroupLines {
			lines = append(lines, m.Title)
		}
	}
	if len(events) > maxGroupLines {
		lines = append(lines, fmt.Sprintf("… and %d more", len(events)-maxGroupLines))
	}
	parts := make([]string, len(order))
	for i, verb := range order {
		parts[i] = fmt.Sprintf("%d %s", counts[verb], verb)
	}
	first := events[0]
	group := first
	group.Attributes = map[string]string{"grouped": strconv.Itoa(len(events))}
	return Message{
		Title:    fmt.Sprintf("%d alerts: %s", len(events), strings.Join(parts, ", ")),
		Text:     strings.Join(lines, "\n"),
		Severity: worst,
		Link:     first.URL,
		Event:    group,
	}, nil
}

// SeverityOf is the colour an event type is shown in.
func SeverityOf(typ string) Severity {
	switch typ {
	case EventDeploySucceeded, EventHealthRecovered:
		return SeverityGood
	case EventDeployFailed:
		return SeverityDanger
	case EventHealthDegraded, EventDeployRollback:
		return SeverityWarning
	case EventAlertRaised, EventAlertEscalated, EventAlertReopened, EventErrorNew, EventErrorRegressed:
		return SeverityDanger
	case EventErrorSpike:
		return SeverityWarning
	case EventAlertClosed:
		return SeverityGood
	}
	return SeverityInfo
}

// fieldsOf lists an event's details as plain-text fields, for the services with attachments.
func fieldsOf(e Event) []Field {
	var f []Field
	add := func(title, value string, short bool) {
		if value != "" {
			f = append(f, Field{Title: title, Value: value, Short: short})
		}
	}
	add("Environment", e.Environment, true)
	add("Revision", shortSHA(e.Revision), true)
	add("Author", e.Author, true)
	if e.Duration > 0 {
		add("Duration", formatDuration(e.Duration), true)
	}
	if c := e.Changes; c != nil {
		add("Changes", fmt.Sprintf("%d created, %d configured, %d pruned", c.Created, c.Configured, c.Pruned), false)
	}
	add("Object", e.Object, false)
	add("Reason", truncate(1500, e.Reason), false)
	return f
}

func funcMap(format Format) template.FuncMap {
	return template.FuncMap{
		"esc":       escaper(format),
		"link":      linker(format),
		"short":     shortSHA,
		"firstLine": firstLine,
		"truncate":  truncate,
		"duration":  formatDuration,
		"upper":     strings.ToUpper,
	}
}

var (
	slackEscaper    = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	markdownEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "~", `\~`, "[", `\[`, "]", `\]`)
)

func escaper(format Format) func(string) string {
	switch format {
	case FormatHTML:
		return html.EscapeString
	case FormatSlack:
		return slackEscaper.Replace
	case FormatMarkdown:
		return markdownEscaper.Replace
	}
	return func(s string) string { return s }
}

func linker(format Format) func(url, text string) string {
	esc := escaper(format)
	switch format {
	case FormatHTML:
		return func(url, text string) string {
			return `<a href="` + html.EscapeString(url) + `">` + esc(text) + `</a>`
		}
	case FormatSlack:
		return func(url, text string) string {
			return "<" + strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(url) + "|" + esc(text) + ">"
		}
	case FormatMarkdown:
		return func(url, text string) string {
			return "[" + esc(text) + "](" + strings.NewReplacer("(", "%28", ")", "%29", " ", "%20").Replace(url) + ")"
		}
	}
	return func(url, text string) string { return text + " (" + url + ")" }
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// truncate cuts s to at most n characters, marking the cut with an ellipsis.
func truncate(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:max(n, 0)])
	}
	return string(r[:n-1]) + "…"
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// SampleEvent is an event of type typ with every field set, to check templates against.
func SampleEvent(typ string) Event {
	if typ == "default" || typ == "" {
		typ = "deploy.sample"
	}
	return Event{
		Type: typ, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Summary: "sample event",
		Application: "shop", Namespace: "shop", Environment: "production", ReleaseID: 42,
		Revision: "0123456789abcdef0123456789abcdef01234567", CommitMessage: "Fix checkout <script>\n\nbody",
		Author: "Alice <alice@example.com>", CommitURL: "https://git.example.com/shop/commit/0123456789abcdef",
		URL:     "https://ferry.example.com/releases/42",
		Changes: &Changes{Created: 1, Configured: 2, Unchanged: 3, Pruned: 4}, Duration: 12 * time.Second,
		Object: "apps/v1/Deployment/shop/web", Reason: "ImagePullBackOff", Attributes: map[string]string{"k": "v"},
	}
}
