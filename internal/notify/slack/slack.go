// Package slack sends notifications to a Slack-compatible incoming webhook: Slack's own, and
// Mattermost's, which takes the same payload.
//
// A message's Title and Text (mrkdwn, from the templates) form the message text, so push
// notifications and every client show all of it; an attachment in the severity's colour holds
// the link to Ferry's panel and the fields, whose plain-text values are escaped here.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
)

// Notifier posts messages to one incoming webhook. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	url    notify.Secret
	client *http.Client
}

// New returns a Notifier posting to the webhook URL webhookURL reads at each send. A nil
// client means notify.HTTPClient's default.
func New(cfg Config, webhookURL notify.Secret, client *http.Client) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if webhookURL == nil {
		return nil, errors.New("slack: no webhook URL")
	}
	return &Notifier{cfg: cfg, url: webhookURL, client: notify.HTTPClient(client)}, nil
}

type payload struct {
	Text        string       `json:"text"`
	Channel     string       `json:"channel,omitempty"`
	Username    string       `json:"username,omitempty"`
	IconEmoji   string       `json:"icon_emoji,omitempty"`
	IconURL     string       `json:"icon_url,omitempty"`
	Attachments []attachment `json:"attachments,omitempty"`
}

type attachment struct {
	Fallback  string  `json:"fallback"`
	Color     string  `json:"color,omitempty"`
	Title     string  `json:"title,omitempty"`
	TitleLink string  `json:"title_link,omitempty"`
	Text      string  `json:"text,omitempty"`
	Fields    []field `json:"fields,omitempty"`
	TS        int64   `json:"ts,omitempty"`
}

type field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Send posts m. See notify.Receiver.
func (n *Notifier) Send(ctx context.Context, m notify.Message) error {
	u, err := n.url(ctx)
	if err != nil {
		return &notify.SendError{Err: fmt.Errorf("read webhook URL: %w", err)}
	}
	if u == "" {
		return &notify.SendError{Err: errors.New("read webhook URL: empty")}
	}
	body, err := json.Marshal(n.payload(m))
	if err != nil {
		return &notify.SendError{Permanent: true, Err: fmt.Errorf("encode message: %w", err)}
	}
	resp, err := notify.Post(ctx, n.client, u, body, nil)
	if err != nil {
		return notify.Classify(err)
	}
	// Slack answers "ok", Mattermost "ok" too; Slack-compatible services vary, a 2xx is enough.
	if resp.Status >= 200 && resp.Status < 300 {
		return nil
	}
	return notify.StatusError(resp.Status, notify.ParseRetryAfter(resp.Header, time.Now()), detail(resp.Body, u))
}

// detail is the service's reason: Slack's plain-text code (invalid_payload, channel_not_found)
// or the message of Mattermost's JSON error.
func detail(body []byte, webhookURL string) string {
	var mm struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &mm) == nil && mm.Message != "" {
		return notify.Snippet([]byte(mm.Message), webhookURL)
	}
	if s := notify.Snippet(body, webhookURL); s != "" && !strings.HasPrefix(s, "<") {
		return s
	}
	return "" // empty, or a proxy's HTML page
}

func (n *Notifier) payload(m notify.Message) payload {
	p := payload{
		Text:      joinLines(m.Title, m.Text),
		Channel:   n.cfg.Channel,
		Username:  n.cfg.Username,
		IconEmoji: n.cfg.IconEmoji,
		IconURL:   n.cfg.IconURL,
	}
	if m.Link == "" && len(m.Fields) == 0 {
		return p
	}
	a := attachment{Fallback: m.Title, Color: m.Severity.Color(), TitleLink: m.Link}
	if m.Link != "" {
		a.Title = "Open in Ferry"
	}
	for _, f := range m.Fields {
		a.Fields = append(a.Fields, field{Title: Escape(f.Title), Value: Escape(f.Value), Short: f.Short})
	}
	if !m.Event.Time.IsZero() {
		a.TS = m.Event.Time.Unix()
	}
	p.Attachments = []attachment{a}
	return p
}

func joinLines(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "\n" + b
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape escapes plain text for Slack's mrkdwn: &, < and > are its control characters (a
// <...> is a link or a mention). Only text that did not come from a template needs it.
func Escape(s string) string { return escaper.Replace(s) }
