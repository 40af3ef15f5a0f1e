// Package webhook posts notifications as JSON to any HTTP endpoint, for receivers Ferry has
// no package for. The body's schema is versioned and documented in
// docs/notifications-webhook.md; with a secret, each request carries an HMAC-SHA256 signature
// of its body, as GitHub's webhooks do, which Verify checks.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
)

// Version is the version of the Payload schema, sent as its "version".
const Version = "1"

// The headers of every request.
const (
	// HeaderEvent is the event's type, such as deploy.succeeded.
	HeaderEvent = "X-Ferry-Event"
	// HeaderDelivery is the message's ID: the same on every retry, for receivers to drop
	// duplicates.
	HeaderDelivery = "X-Ferry-Delivery"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body, with the webhook's
	// secret as key; absent when there is no secret.
	HeaderSignature = "X-Ferry-Signature-256"
)

// Payload is the JSON body of a request, schema version 1.
type Payload struct {
	// Version is the schema's, Version.
	Version string `json:"version"`
	// ID identifies the message; HeaderDelivery holds it too.
	ID int64 `json:"id"`
	// Channel is the name of the channel in Ferry's configuration.
	Channel string `json:"channel"`
	// Title and Text are the rendered message, plain text.
	Title string `json:"title"`
	Text  string `json:"text"`
	// Severity is good, info, warning or danger.
	Severity notify.Severity `json:"severity"`
	// Link is the page of Ferry's panel the message is about.
	Link   string         `json:"link,omitempty"`
	Fields []notify.Field `json:"fields,omitempty"`
	// Event is what happened, as data.
	Event notify.Event `json:"event"`
}

// Notifier posts messages to one webhook. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	url    notify.Secret
	secret notify.Secret
	client *http.Client
}

// New returns a Notifier posting to the URL webhookURL reads at each send, signed with the key
// secret reads, or unsigned when secret is nil. A nil client means notify.HTTPClient's default.
func New(cfg Config, webhookURL, secret notify.Secret, client *http.Client) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	if webhookURL == nil {
		return nil, errors.New("webhook: no URL")
	}
	return &Notifier{cfg: cfg, url: webhookURL, secret: secret, client: notify.HTTPClient(client)}, nil
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
	var key string
	if n.secret != nil {
		if key, err = n.secret(ctx); err != nil {
			return &notify.SendError{Err: fmt.Errorf("read webhook secret: %w", err)}
		}
		if key == "" {
			return &notify.SendError{Err: errors.New("read webhook secret: empty")}
		}
	}
	body, err := json.Marshal(Payload{
		Version: Version, ID: m.ID, Channel: m.Channel, Title: m.Title, Text: m.Text,
		Severity: m.Severity, Link: m.Link, Fields: m.Fields, Event: m.Event,
	})
	if err != nil {
		return &notify.SendError{Permanent: true, Err: fmt.Errorf("encode message: %w", err)}
	}

	h := make(http.Header, len(n.cfg.Headers)+3)
	secrets := []string{key}
	for k, v := range n.cfg.Headers {
		h.Set(k, v)
		secrets = append(secrets, v)
	}
	if m.Event.Type != "" {
		h.Set(HeaderEvent, m.Event.Type)
	}
	h.Set(HeaderDelivery, strconv.FormatInt(m.ID, 10))
	if key != "" {
		h.Set(HeaderSignature, Sign([]byte(key), body))
	}

	resp, err := notify.Post(ctx, n.client, u, body, h)
	if err != nil {
		return notify.Classify(err)
	}
	if resp.Status >= 200 && resp.Status < 300 {
		return nil
	}
	detail := notify.Snippet([]byte(notify.Scrub(string(resp.Body), secrets...)), u)
	if strings.HasPrefix(detail, "<") { // an HTML error page says no more than the status
		detail = ""
	}
	return notify.StatusError(resp.Status, notify.ParseRetryAfter(resp.Header, time.Now()), detail)
}

// Sign returns the HeaderSignature value of body: "sha256=" and the hex HMAC-SHA256 of body
// keyed with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header, a HeaderSignature value, signs body with secret. It compares
// in constant time, and rejects an empty secret, which authenticates nothing.
func Verify(secret, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
