// Package rocketchat sends notifications to Rocket.Chat through an incoming webhook
// integration (POST /hooks/ID/TOKEN).
//
// A message's Title and Text (Markdown, from the templates) form the message text, so push
// notifications and every client show all of it; an attachment in the severity's colour holds
// the link to Ferry's panel and the fields.
package rocketchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
)

// Notifier posts messages to one Rocket.Chat incoming webhook. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	url    notify.Secret
	client *http.Client
}

// New returns a Notifier posting to the webhook URL webhookURL reads at each send. A nil
// client means notify.HTTPClient's default.
func New(cfg Config, webhookURL notify.Secret, client *http.Client) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rocketchat: %w", err)
	}
	if webhookURL == nil {
		return nil, errors.New("rocketchat: no webhook URL")
	}
	return &Notifier{cfg: cfg, url: webhookURL, client: notify.HTTPClient(client)}, nil
}

type payload struct {
	Text        string       `json:"text"`
	Channel     string       `json:"channel,omitempty"`
	Alias       string       `json:"alias,omitempty"`
	Emoji       string       `json:"emoji,omitempty"`
	Avatar      string       `json:"avatar,omitempty"`
	Attachments []attachment `json:"attachments,omitempty"`
}

type attachment struct {
	Title     string  `json:"title,omitempty"`
	TitleLink string  `json:"title_link,omitempty"`
	Text      string  `json:"text,omitempty"`
	Color     string  `json:"color,omitempty"`
	Fields    []field `json:"fields,omitempty"`
}

type field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// answer is Rocket.Chat's REST answer, success or failure.
type answer struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
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
	var a answer
	decodeErr := json.Unmarshal(resp.Body, &a)
	detail := notify.Snippet([]byte(a.Error), u)
	if resp.Status >= 200 && resp.Status < 300 {
		if decodeErr == nil && a.Success {
			return nil
		}
		if detail == "" {
			detail = "answer without success"
		}
		return &notify.SendError{Status: resp.Status, Err: errors.New(detail)}
	}
	if decodeErr != nil {
		detail = "" // not Rocket.Chat's answer, perhaps a proxy's page
	}
	return notify.StatusError(resp.Status, retryAfter(resp.Header, resp.Body, time.Now()), detail)
}

func (n *Notifier) payload(m notify.Message) payload {
	p := payload{
		Text:    joinLines(m.Title, m.Text),
		Channel: n.cfg.Channel,
		Alias:   n.cfg.Alias,
		Emoji:   n.cfg.Emoji,
		Avatar:  n.cfg.Avatar,
	}
	if m.Link == "" && len(m.Fields) == 0 {
		return p
	}
	a := attachment{Color: m.Severity.Color(), TitleLink: m.Link}
	if m.Link != "" {
		a.Title = "Open in Ferry"
	}
	for _, f := range m.Fields {
		a.Fields = append(a.Fields, field(f))
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

var waitRE = regexp.MustCompile(`wait (\d+) seconds?`)

// retryAfter reads how long Rocket.Chat asked to wait: Retry-After when a proxy set it, else
// X-RateLimit-Reset (Unix milliseconds of the window's end), else the "wait N seconds" of its
// error-too-many-requests text.
func retryAfter(h http.Header, body []byte, now time.Time) time.Duration {
	if d := notify.ParseRetryAfter(h, now); d > 0 {
		return d
	}
	if v, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64); err == nil && v > 0 {
		reset := time.UnixMilli(v)
		if v < 1e11 { // seconds, not milliseconds: before 1973 in milliseconds
			reset = time.Unix(v, 0)
		}
		if reset.After(now) {
			return reset.Sub(now)
		}
	}
	var a answer
	if json.Unmarshal(body, &a) == nil {
		if sm := waitRE.FindStringSubmatch(a.Error); sm != nil {
			if s, err := strconv.Atoi(sm[1]); err == nil && s > 0 {
				return time.Duration(s) * time.Second
			}
		}
	}
	return 0
}
