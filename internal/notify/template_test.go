package notify_test

import (
	"errors"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/internal/notify"
)

var formats = []notify.Format{notify.FormatHTML, notify.FormatMarkdown, notify.FormatSlack, notify.FormatPlain}

func newTemplates(t *testing.T, f notify.Format, overrides map[string]notify.Template) *notify.Templates {
	t.Helper()
	tmpl, err := notify.NewTemplates(f, overrides)
	if err != nil {
		t.Fatalf("NewTemplates(%s): %v", f, err)
	}
	return tmpl
}

func render(t *testing.T, tmpl *notify.Templates, e notify.Event) notify.Message {
	t.Helper()
	m, err := tmpl.Render(e)
	if err != nil {
		t.Fatalf("Render(%s): %v", e.Type, err)
	}
	return m
}

// TestRenderEveryType renders the sample of every event type with the defaults of every format.
func TestRenderEveryType(t *testing.T) {
	severities := map[string]notify.Severity{
		notify.EventDeployStarted:   notify.SeverityInfo,
		notify.EventDeploySucceeded: notify.SeverityGood,
		notify.EventDeployFailed:    notify.SeverityDanger,
		notify.EventDeployRollback:  notify.SeverityWarning,
		notify.EventHealthDegraded:  notify.SeverityWarning,
		notify.EventHealthRecovered: notify.SeverityGood,
		notify.EventSecretRotated:   notify.SeverityInfo,
		notify.EventTest:            notify.SeverityInfo,
		"alert.firing":              notify.SeverityInfo, // no template of its own: the fallback
	}
	for _, f := range formats {
		tmpl := newTemplates(t, f, nil)
		for typ, severity := range severities {
			t.Run(string(f)+"/"+typ, func(t *testing.T) {
				e := notify.SampleEvent(typ)
				m := render(t, tmpl, e)
				if strings.TrimSpace(m.Title) == "" || strings.TrimSpace(m.Text) == "" {
					t.Errorf("empty title or text: %+v", m)
				}
				// The sample's commit message is "Fix checkout <script>\n\nbody": only its first
				// line is shown, and in HTML and Slack its < is escaped.
				if strings.Contains(m.Text, "body") {
					t.Errorf("text holds more than the commit message's first line:\n%s", m.Text)
				}
				if f == notify.FormatHTML || f == notify.FormatSlack {
					for _, raw := range []string{"<script>", "<alice@"} {
						if strings.Contains(m.Title+m.Text, raw) {
							t.Errorf("%s left unescaped:\n%s\n%s", raw, m.Title, m.Text)
						}
					}
				}
				if m.Severity != severity {
					t.Errorf("Severity = %q, want %q", m.Severity, severity)
				}
				if m.Link != e.URL {
					t.Errorf("Link = %q, want %q", m.Link, e.URL)
				}
				if diff := cmp.Diff(e, m.Event); diff != "" {
					t.Errorf("Event (-want +got):\n%s", diff)
				}
				if len(m.Fields) == 0 {
					t.Error("no fields")
				}
			})
		}
	}
}

func TestRenderFallback(t *testing.T) {
	tests := []struct {
		format notify.Format
		want   string
	}{
		{notify.FormatHTML, "sample event\n" + `<a href="https://ferry.example.com/releases/42">Open in Ferry</a>`},
		{notify.FormatSlack, "sample event\n<https://ferry.example.com/releases/42|Open in Ferry>"},
		{notify.FormatMarkdown, "sample event\n[Open in Ferry](https://ferry.example.com/releases/42)"},
		{notify.FormatPlain, "sample event\nOpen in Ferry (https://ferry.example.com/releases/42)"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			m := render(t, newTemplates(t, tt.format, nil), notify.SampleEvent("alert.firing"))
			if diff := cmp.Diff([]string{"shop: alert.firing", tt.want}, []string{m.Title, m.Text}); diff != "" {
				t.Errorf("title and text (-want +got):\n%s", diff)
			}
		})
	}
}

// hostile is an event whose text fields hold every character some format treats as markup.
func hostile(typ string) notify.Event {
	e := notify.SampleEvent(typ)
	e.Application = "<b>shop"
	e.CommitMessage = "<script>&\"*_[x](y)\nsecond line"
	e.Author = "Alice <alice@example.com>"
	e.Duration = 2*time.Minute + 3400*time.Millisecond
	e.Object = "Deployment/<web>"
	e.Reason = `pull "img_1" & <retry> *now*`
	return e
}

func TestRenderEscapes(t *testing.T) {
	tests := []struct {
		format                      notify.Format
		succeededTitle, failedTitle string
		// The pieces of the texts: the links, the commit line, the failed object and reason.
		commitLink, panelLink      string
		commitLine, object, reason string
	}{
		{
			format:         notify.FormatHTML,
			succeededTitle: "✅ &lt;b&gt;shop deployed to production",
			failedTitle:    "❌ &lt;b&gt;shop failed to deploy to production",
			commitLink:     `<a href="https://git.example.com/shop/commit/0123456789abcdef">0123456</a>`,
			panelLink:      `<a href="https://ferry.example.com/releases/42">Open in Ferry</a>`,
			commitLine:     "&lt;script&gt;&amp;&#34;*_[x](y) — Alice &lt;alice@example.com&gt;",
			object:         "Deployment/&lt;web&gt;",
			reason:         "pull &#34;img_1&#34; &amp; &lt;retry&gt; *now*",
		},
		{
			format:         notify.FormatSlack,
			succeededTitle: "✅ &lt;b&gt;shop deployed to production",
			failedTitle:    "❌ &lt;b&gt;shop failed to deploy to production",
			commitLink:     "<https://git.example.com/shop/commit/0123456789abcdef|0123456>",
			panelLink:      "<https://ferry.example.com/releases/42|Open in Ferry>",
			commitLine:     `&lt;script&gt;&amp;"*_[x](y) — Alice &lt;alice@example.com&gt;`,
			object:         "Deployment/&lt;web&gt;",
			reason:         `pull "img_1" &amp; &lt;retry&gt; *now*`,
		},
		{
			format:         notify.FormatMarkdown,
			succeededTitle: "✅ <b>shop deployed to production",
			failedTitle:    "❌ <b>shop failed to deploy to production",
			commitLink:     "[0123456](https://git.example.com/shop/commit/0123456789abcdef)",
			panelLink:      "[Open in Ferry](https://ferry.example.com/releases/42)",
			commitLine:     `<script>&"\*\_\[x\](y) — Alice <alice@example.com>`,
			object:         "Deployment/<web>",
			reason:         `pull "img\_1" & <retry> \*now\*`,
		},
		{
			format:         notify.FormatPlain,
			succeededTitle: "✅ <b>shop deployed to production",
			failedTitle:    "❌ <b>shop failed to deploy to production",
			commitLink:     "0123456 (https://git.example.com/shop/commit/0123456789abcdef)",
			panelLink:      "Open in Ferry (https://ferry.example.com/releases/42)",
			commitLine:     `<script>&"*_[x](y) — Alice <alice@example.com>`,
			object:         "Deployment/<web>",
			reason:         `pull "img_1" & <retry> *now*`,
		},
	}
	// Fields are plain text whatever the format: receivers escape them for their service.
	wantFields := []notify.Field{
		{Title: "Environment", Value: "production", Short: true},
		{Title: "Revision", Value: "0123456", Short: true},
		{Title: "Author", Value: "Alice <alice@example.com>", Short: true},
		{Title: "Duration", Value: "2m3s", Short: true},
		{Title: "Changes", Value: "1 created, 2 configured, 4 pruned"},
		{Title: "Object", Value: "Deployment/<web>"},
		{Title: "Reason", Value: `pull "img_1" & <retry> *now*`},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			tmpl := newTemplates(t, tt.format, nil)

			m := render(t, tmpl, hostile(notify.EventDeploySucceeded))
			want := []string{tt.succeededTitle, tt.commitLink + " is applied and healthy in 2m3s.\n" +
				tt.commitLine + "\n" +
				"Changes: 1 created, 2 configured, 4 pruned, 3 unchanged.\n" +
				tt.panelLink}
			if diff := cmp.Diff(want, []string{m.Title, m.Text}); diff != "" {
				t.Errorf("deploy.succeeded title and text (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantFields, m.Fields); diff != "" {
				t.Errorf("deploy.succeeded fields (-want +got):\n%s", diff)
			}

			m = render(t, tmpl, hostile(notify.EventDeployFailed))
			want = []string{tt.failedTitle, "Sync of " + tt.commitLink + " failed after 2m3s.\n" +
				"Object: " + tt.object + "\n" +
				"Reason: " + tt.reason + "\n" +
				tt.commitLine + "\n" +
				tt.panelLink}
			if diff := cmp.Diff(want, []string{m.Title, m.Text}); diff != "" {
				t.Errorf("deploy.failed title and text (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantFields, m.Fields); diff != "" {
				t.Errorf("deploy.failed fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderOmitsWhatIsMissing(t *testing.T) {
	e := notify.Event{
		Type: notify.EventDeploySucceeded, Application: "shop", Environment: "production",
		Revision: "0123456789abcdef",
	}
	m := render(t, newTemplates(t, notify.FormatPlain, nil), e)
	want := []string{"✅ shop deployed to production", "0123456 is applied and healthy."}
	if diff := cmp.Diff(want, []string{m.Title, m.Text}); diff != "" {
		t.Errorf("title and text (-want +got):\n%s", diff)
	}
	wantFields := []notify.Field{
		{Title: "Environment", Value: "production", Short: true},
		{Title: "Revision", Value: "0123456", Short: true},
	}
	if diff := cmp.Diff(wantFields, m.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestRenderCutsLongValues(t *testing.T) {
	e := notify.SampleEvent(notify.EventDeployFailed)
	e.Reason = strings.Repeat("r", 2000)
	e.CommitMessage = strings.Repeat("c", 400) + "\nbody"
	e.Author = ""
	m := render(t, newTemplates(t, notify.FormatPlain, nil), e)
	for _, want := range []string{
		"\nReason: " + strings.Repeat("r", 1499) + "…\n",
		"\n" + strings.Repeat("c", 299) + "…\n",
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text does not hold %.40q…:\n%s", want, m.Text)
		}
	}
	if got, want := m.Fields[len(m.Fields)-1], (notify.Field{Title: "Reason", Value: strings.Repeat("r", 1499) + "…"}); got != want {
		t.Errorf("last field = %.60v, want %.60v", got, want)
	}
}

func TestRenderLinkEscapes(t *testing.T) {
	// The override links a URL and a text holding each format's control characters.
	overrides := map[string]notify.Template{"default": {Title: "t", Text: `{{link .URL "a*b<c>"}}`}}
	tests := []struct {
		format notify.Format
		want   string
	}{
		{notify.FormatHTML, `<a href="https://x.example/p?a=1&amp;b=(2) 3|&#34;&lt;4&gt;&#34;">a*b&lt;c&gt;</a>`},
		{notify.FormatSlack, `<https://x.example/p?a=1&b=(2) 3%7C"%3C4%3E"|a*b&lt;c&gt;>`},
		{notify.FormatMarkdown, `[a\*b<c>](https://x.example/p?a=1&b=%282%29%203|"<4>")`},
		{notify.FormatPlain, `a*b<c> (https://x.example/p?a=1&b=(2) 3|"<4>")`},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			e := notify.SampleEvent("alert.firing")
			e.URL = `https://x.example/p?a=1&b=(2) 3|"<4>"`
			m := render(t, newTemplates(t, tt.format, overrides), e)
			if diff := cmp.Diff(tt.want, m.Text); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewTemplatesOverrides(t *testing.T) {
	defaults := newTemplates(t, notify.FormatHTML, nil)
	sample := func(typ string) notify.Event {
		e := notify.SampleEvent(typ)
		e.Application = "<b>"
		return e
	}
	def := func(typ string) notify.Message { return render(t, defaults, sample(typ)) }
	tests := []struct {
		name      string
		overrides map[string]notify.Template
		event     notify.Event
		want      []string // title, text
	}{
		{
			name:      "title only keeps the default text",
			overrides: map[string]notify.Template{notify.EventDeploySucceeded: {Title: "{{esc .Application}} is out"}},
			event:     sample(notify.EventDeploySucceeded),
			want:      []string{"&lt;b&gt; is out", def(notify.EventDeploySucceeded).Text},
		},
		{
			name:      "text only keeps the default title",
			overrides: map[string]notify.Template{notify.EventDeployFailed: {Text: "{{upper .Environment}} {{short .Revision}}"}},
			event:     sample(notify.EventDeployFailed),
			want:      []string{def(notify.EventDeployFailed).Title, "PRODUCTION 0123456"},
		},
		{
			name:      "an override leaves other types alone",
			overrides: map[string]notify.Template{notify.EventDeployFailed: {Title: "x", Text: "y"}},
			event:     sample(notify.EventDeploySucceeded),
			want:      []string{def(notify.EventDeploySucceeded).Title, def(notify.EventDeploySucceeded).Text},
		},
		{
			name:      "partials are callable",
			overrides: map[string]notify.Template{notify.EventHealthDegraded: {Text: `{{template "revision" .}}{{template "panel" .}}`}},
			event:     sample(notify.EventHealthDegraded),
			want: []string{def(notify.EventHealthDegraded).Title,
				`<a href="https://git.example.com/shop/commit/0123456789abcdef">0123456</a>` + "\n" +
					`<a href="https://ferry.example.com/releases/42">Open in Ferry</a>`},
		},
		{
			name:      "default applies to types without a template",
			overrides: map[string]notify.Template{"default": {Title: "{{.Type}}!"}},
			event:     sample("alert.firing"),
			want:      []string{"alert.firing!", def("alert.firing").Text},
		},
		{
			name:      "default leaves types with a template alone",
			overrides: map[string]notify.Template{"default": {Title: "{{.Type}}!", Text: "z"}},
			event:     sample(notify.EventSecretRotated),
			want:      []string{def(notify.EventSecretRotated).Title, def(notify.EventSecretRotated).Text},
		},
		{
			name:      "an override for a type without a default",
			overrides: map[string]notify.Template{"alert.firing": {Title: "fire {{index .Attributes \"k\"}}"}},
			event:     sample("alert.firing"),
			want:      []string{"fire v", def("alert.firing").Text},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := render(t, newTemplates(t, notify.FormatHTML, tt.overrides), tt.event)
			if diff := cmp.Diff(tt.want, []string{m.Title, m.Text}); diff != "" {
				t.Errorf("title and text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewTemplatesRejects(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]notify.Template
		// check says whether the error is the expected one.
		check func(error) bool
	}{
		{
			name:      "missing field in the title",
			overrides: map[string]notify.Template{notify.EventDeploySucceeded: {Title: "{{.Nope}}"}},
			check:     isExecError,
		},
		{
			name:      "missing field in the text",
			overrides: map[string]notify.Template{notify.EventDeployFailed: {Text: "{{.Application}} {{.Nope}}"}},
			check:     isExecError,
		},
		{
			name:      "missing field in default",
			overrides: map[string]notify.Template{"default": {Text: "{{.Changes.Nope}}"}},
			check:     isExecError,
		},
		{
			name:      "unknown function",
			overrides: map[string]notify.Template{notify.EventDeploySucceeded: {Title: "{{nope .Application}}"}},
			check:     notInvalid,
		},
		{
			name:      "unclosed action",
			overrides: map[string]notify.Template{notify.EventDeploySucceeded: {Title: "{{.Application"}},
			check:     notInvalid,
		},
		{
			name:      "unclosed if",
			overrides: map[string]notify.Template{notify.EventDeploySucceeded: {Text: "{{if .URL}}x"}},
			check:     notInvalid,
		},
		{
			name:      "unknown partial",
			overrides: map[string]notify.Template{notify.EventDeploySucceeded: {Text: `{{template "nope" .}}`}},
			check:     isExecError,
		},
		{
			name:      "key that is not an event type",
			overrides: map[string]notify.Template{"Deploy Succeeded": {Title: "x"}},
			check:     func(err error) bool { return errors.Is(err, notify.ErrInvalid) },
		},
		{
			name:      "key without a dot",
			overrides: map[string]notify.Template{"deploy": {Title: "x"}},
			check:     func(err error) bool { return errors.Is(err, notify.ErrInvalid) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range formats {
				tmpl, err := notify.NewTemplates(f, tt.overrides)
				if err == nil {
					t.Fatalf("NewTemplates(%s) = %v, want an error", f, tmpl)
				}
				if !tt.check(err) {
					t.Errorf("NewTemplates(%s): unexpected error %v", f, err)
				}
			}
		})
	}
}

// isExecError reports whether err is the error of executing a template, which NewTemplates
// returns when it runs an override against the sample event.
func isExecError(err error) bool {
	var ee template.ExecError
	return errors.As(err, &ee) && !errors.Is(err, notify.ErrInvalid)
}

// notInvalid accepts parse errors, which text/template does not type.
func notInvalid(err error) bool {
	var ee template.ExecError
	return !errors.As(err, &ee) && !errors.Is(err, notify.ErrInvalid)
}
