// Package telegram sends notifications to a Telegram chat with the Bot API's sendMessage.
//
// Messages are HTML (the templates escape what they insert): the Title in bold, then the Text.
// Fields are not sent, the templates put the details in the text. A text longer than Telegram
// takes is cut by Trim, which keeps the HTML valid and links the full message in Ferry.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
)

// MinInterval is the least time between two messages to one chat that Telegram allows; the
// outbox spaces the messages of each ChatKey by it.
const MinInterval = time.Second

// Notifier posts messages to one Telegram chat as one bot. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	apiURL string
	token  notify.Secret
	client *http.Client
}

// New returns a Notifier posting as the bot whose token token reads at each send. A nil
// client means notify.HTTPClient's default.
func New(cfg Config, token notify.Secret, client *http.Client) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	if token == nil {
		return nil, errors.New("telegram: no bot token")
	}
	apiURL := cfg.APIURL
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	return &Notifier{cfg: cfg, apiURL: strings.TrimRight(apiURL, "/"), token: token, client: notify.HTTPClient(client)}, nil
}

// ChatKey names the chat for the outbox's per-chat rate limit (see MinInterval). It holds
// no secret.
func (n *Notifier) ChatKey() string { return "telegram:" + n.cfg.ChatID }

type sendMessage struct {
	ChatID              any                `json:"chat_id"`
	MessageThreadID     int64              `json:"message_thread_id,omitempty"`
	Text                string             `json:"text"`
	ParseMode           string             `json:"parse_mode"`
	DisableNotification bool               `json:"disable_notification,omitempty"`
	LinkPreviewOptions  linkPreviewOptions `json:"link_preview_options"`
}

type linkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

// answer is the Bot API's answer, success or failure.
type answer struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// Send posts m. See notify.Receiver.
func (n *Notifier) Send(ctx context.Context, m notify.Message) error {
	tok, err := n.token(ctx)
	if err != nil {
		return &notify.SendError{Err: fmt.Errorf("read bot token: %w", err)}
	}
	if tok == "" {
		return &notify.SendError{Err: errors.New("read bot token: empty")}
	}
	body, err := json.Marshal(sendMessage{
		ChatID:              n.cfg.chatID(),
		MessageThreadID:     n.cfg.MessageThreadID,
		Text:                Trim(text(m), m.Link, MaxTextLen),
		ParseMode:           "HTML",
		DisableNotification: n.cfg.DisableNotification,
		LinkPreviewOptions:  linkPreviewOptions{IsDisabled: true},
	})
	if err != nil {
		return &notify.SendError{Permanent: true, Err: fmt.Errorf("encode message: %w", err)}
	}
	// PathEscape keeps a malformed token from changing the path; Telegram's have no / ? #.
	endpoint := n.apiURL + "/bot" + url.PathEscape(tok) + "/sendMessage"
	resp, err := notify.Post(ctx, n.client, endpoint, body, nil)
	if err != nil {
		return notify.Classify(err)
	}
	var a answer
	decodeErr := json.Unmarshal(resp.Body, &a)
	if resp.Status >= 200 && resp.Status < 300 {
		if decodeErr == nil && a.OK {
			return nil
		}
		return &notify.SendError{Status: resp.Status, Err: errors.New("answer without ok")}
	}
	if decodeErr != nil { // not the Bot API's answer, perhaps a proxy's page
		return notify.StatusError(resp.Status, notify.ParseRetryAfter(resp.Header, time.Now()), "")
	}
	retry := time.Duration(a.Parameters.RetryAfter) * time.Second
	if retry <= 0 {
		retry = notify.ParseRetryAfter(resp.Header, time.Now())
	}
	detail := notify.Snippet([]byte(notify.Scrub(a.Description, tok)), endpoint)
	if id := a.Parameters.MigrateToChatID; id != 0 {
		detail += fmt.Sprintf(" (set chat_id to %d)", id)
	}
	return notify.StatusError(resp.Status, retry, detail)
}

// text is the message as Telegram HTML: the title in bold, then the text.
func text(m notify.Message) string {
	switch {
	case m.Title == "":
		return m.Text
	case m.Text == "":
		return "<b>" + m.Title + "</b>"
	}
	return "<b>" + m.Title + "</b>\n" + m.Text
}
