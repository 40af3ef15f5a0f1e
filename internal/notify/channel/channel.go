// Package channel turns the channels of Ferry's configuration into notify.Channels: it
// validates each, builds its receiver, and reads its secrets (bot tokens, webhook URLs) from
// the value, a file, or a Kubernetes Secret when the receiver needs them, so a rotated secret
// takes effect without a restart.
package channel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ferrycd/ferry/internal/notify"
	"github.com/ferrycd/ferry/internal/notify/rocketchat"
	"github.com/ferrycd/ferry/internal/notify/slack"
	"github.com/ferrycd/ferry/internal/notify/telegram"
	"github.com/ferrycd/ferry/internal/notify/webhook"
)

// Config is one channel: a name, exactly one receiver, and template overrides.
type Config struct {
	// Name is how subscriptions, spec.notify and the API name the channel.
	Name       string      `yaml:"name"`
	Telegram   *Telegram   `yaml:"telegram"`
	RocketChat *RocketChat `yaml:"rocketchat"`
	Slack      *Slack      `yaml:"slack"`
	Webhook    *Webhook    `yaml:"webhook"`
	// Templates override the default messages, keyed by event type or "default".
	Templates map[string]notify.Template `yaml:"templates"`
}

// SecretRef names a key of a Kubernetes Secret. An empty namespace means Ferry's own.
type SecretRef struct {
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
	Key       string `yaml:"key"`
}

// Telegram is a Telegram chat; the bot token comes from token, token_file or token_ref.
type Telegram struct {
	telegram.Config `yaml:",inline"`
	Token           string     `yaml:"token"`
	TokenFile       string     `yaml:"token_file"`
	TokenRef        *SecretRef `yaml:"token_ref"`
}

// Hook is the secret URL of an incoming webhook: url, url_file or url_ref.
type Hook struct {
	URL     string     `yaml:"url"`
	URLFile string     `yaml:"url_file"`
	URLRef  *SecretRef `yaml:"url_ref"`
}

// RocketChat is a Rocket.Chat incoming webhook.
type RocketChat struct {
	rocketchat.Config `yaml:",inline"`
	Hook              `yaml:",inline"`
}

// Slack is a Slack-compatible incoming webhook (Slack, Mattermost).
type Slack struct {
	slack.Config `yaml:",inline"`
	Hook         `yaml:",inline"`
}

// Webhook is the generic webhook; hmac_secret, hmac_secret_file or hmac_secret_ref, when
// set, signs its bodies.
type Webhook struct {
	webhook.Config `yaml:",inline"`
	Hook           `yaml:",inline"`
	HMACSecret     string     `yaml:"hmac_secret"`
	HMACSecretFile string     `yaml:"hmac_secret_file"`
	HMACSecretRef  *SecretRef `yaml:"hmac_secret_ref"`
}

var nameGrammar = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Type names the channel's receiver: telegram, rocketchat, slack or webhook.
func (c Config) Type() string {
	switch {
	case c.Telegram != nil:
		return "telegram"
	case c.RocketChat != nil:
		return "rocketchat"
	case c.Slack != nil:
		return "slack"
	case c.Webhook != nil:
		return "webhook"
	}
	return ""
}

// Format is the markup the channel's receiver reads.
func (c Config) Format() notify.Format {
	switch c.Type() {
	case "telegram":
		return notify.FormatHTML
	case "rocketchat":
		return notify.FormatMarkdown
	case "slack":
		return notify.FormatSlack
	}
	return notify.FormatPlain
}

// Validate reports the first setting of the channel that cannot work.
func (c Config) Validate() error {
	if !nameGrammar.MatchString(c.Name) || len(c.Name) > 63 {
		return fmt.Errorf("channel name %q: want 1-63 lowercase letters, digits and dashes", c.Name)
	}
	n := 0
	for _, set := range []bool{c.Telegram != nil, c.RocketChat != nil, c.Slack != nil, c.Webhook != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("channel %s: set exactly one of telegram, rocketchat, slack, webhook", c.Name)
	}
	err := c.validateReceiver()
	if err == nil {
		_, err = notify.NewTemplates(c.Format(), c.Templates)
	}
	if err != nil {
		return fmt.Errorf("channel %s: %w", c.Name, err)
	}
	return nil
}

func (c Config) validateReceiver() error {
	switch {
	case c.Telegram != nil:
		return errors.Join(c.Telegram.Validate(),
			checkSource("telegram.token", c.Telegram.Token, c.Telegram.TokenFile, c.Telegram.TokenRef, true))
	case c.RocketChat != nil:
		return errors.Join(c.RocketChat.Validate(), c.RocketChat.check("rocketchat"))
	case c.Slack != nil:
		return errors.Join(c.Slack.Validate(), c.Slack.check("slack"))
	default:
		return errors.Join(c.Webhook.Validate(), c.Webhook.check("webhook"),
			checkSource("webhook.hmac_secret", c.Webhook.HMACSecret, c.Webhook.HMACSecretFile, c.Webhook.HMACSecretRef, false))
	}
}

func (h Hook) check(prefix string) error {
	return checkSource(prefix+".url", h.URL, h.URLFile, h.URLRef, true)
}

// checkSource checks that a secret comes from at most one source, and from one if required.
func checkSource(key, value, file string, ref *SecretRef, required bool) error {
	n := 0
	for _, set := range []bool{value != "", file != "", ref != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return fmt.Errorf("%s: set one of %[1]s, %[1]s_file and %[1]s_ref", key)
	case n == 0 && required:
		return fmt.Errorf("%s: required: set %[1]s_file, %[1]s_ref or %[1]s", key)
	case ref != nil && (ref.Name == "" || ref.Key == ""):
		return fmt.Errorf("%s_ref: name and key are required", key)
	}
	return nil
}

// SecretReader reads a Kubernetes Secret's data.
type SecretReader func(ctx context.Context, namespace, name string) (map[string][]byte, error)

// Options are what Build needs besides the configuration.
type Options struct {
	// Secrets reads Kubernetes Secrets for *_ref settings; nil makes them an error.
	Secrets SecretReader
	// Namespace is the namespace of SecretRefs that name none: Ferry's own.
	Namespace string
	// Client sends the requests; nil means one with notify.DefaultTimeout.
	Client *http.Client
	// SecretTTL is how long a secret read from a Kubernetes Secret is reused; zero means 30s.
	SecretTTL time.Duration
}

// Build validates the channels and returns them ready for a notify.Worker.
func Build(cfgs []Config, opts Options) ([]*notify.Channel, error) {
	if opts.SecretTTL <= 0 {
		opts.SecretTTL = 30 * time.Second
	}
	seen := map[string]bool{}
	var out []*notify.Channel
	for _, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("channel %s: defined twice", c.Name)
		}
		seen[c.Name] = true
		ch, err := build(c, opts)
		if err != nil {
			return nil, fmt.Errorf("channel %s: %w", c.Name, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

func build(c Config, opts Options) (*notify.Channel, error) {
	tmpl, err := notify.NewTemplates(c.Format(), c.Templates)
	if err != nil {
		return nil, err
	}
	ch := &notify.Channel{Name: c.Name, Type: c.Type(), Templates: tmpl}
	src := func(key, value, file string, ref *SecretRef) (notify.Secret, error) {
		return source(key, value, file, ref, opts)
	}
	switch {
	case c.Telegram != nil:
		token, err := src("telegram.token", c.Telegram.Token, c.Telegram.TokenFile, c.Telegram.TokenRef)
		if err != nil {
			return nil, err
		}
		n, err := telegram.New(c.Telegram.Config, token, opts.Client)
		if err != nil {
			return nil, err
		}
		ch.Receiver, ch.ChatKey, ch.MinInterval = n, n.ChatKey(), telegram.MinInterval
	case c.RocketChat != nil:
		u, err := src("rocketchat.url", c.RocketChat.URL, c.RocketChat.URLFile, c.RocketChat.URLRef)
		if err != nil {
			return nil, err
		}
		if ch.Receiver, err = rocketchat.New(c.RocketChat.Config, u, opts.Client); err != nil {
			return nil, err
		}
	case c.Slack != nil:
		u, err := src("slack.url", c.Slack.URL, c.Slack.URLFile, c.Slack.URLRef)
		if err != nil {
			return nil, err
		}
		if ch.Receiver, err = slack.New(c.Slack.Config, u, opts.Client); err != nil {
			return nil, err
		}
	default:
		u, err := src("webhook.url", c.Webhook.URL, c.Webhook.URLFile, c.Webhook.URLRef)
		if err != nil {
			return nil, err
		}
		var hmacSecret notify.Secret
		if c.Webhook.HMACSecret != "" || c.Webhook.HMACSecretFile != "" || c.Webhook.HMACSecretRef != nil {
			if hmacSecret, err = src("webhook.hmac_secret", c.Webhook.HMACSecret, c.Webhook.HMACSecretFile, c.Webhook.HMACSecretRef); err != nil {
				return nil, err
			}
		}
		if ch.Receiver, err = webhook.New(c.Webhook.Config, u, hmacSecret, opts.Client); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// source returns the getter of one secret setting. Files are read at every use, so a
// rotated file is picked up at once; Kubernetes Secrets are cached for opts.SecretTTL.
func source(key, value, file string, ref *SecretRef, opts Options) (notify.Secret, error) {
	switch {
	case file != "":
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("%s_file: %w", key, err)
		}
		return func(context.Context) (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("%s_file: %w", key, err)
			}
			v := strings.TrimSpace(string(b))
			if v == "" {
				return "", fmt.Errorf("%s_file %s is empty", key, file)
			}
			return v, nil
		}, nil
	case ref != nil:
		if opts.Secrets == nil {
			return nil, fmt.Errorf("%s_ref needs a Kubernetes cluster; use %s_file", key, key)
		}
		ns := ref.Namespace
		if ns == "" {
			ns = opts.Namespace
		}
		c := &cachedSecret{read: opts.Secrets, ns: ns, name: ref.Name, key: ref.Key, ttl: opts.SecretTTL, setting: key}
		return c.get, nil
	}
	return func(context.Context) (string, error) { return value, nil }, nil
}

// cachedSecret is one key of a Kubernetes Secret, re-read after ttl.
type cachedSecret struct {
	read          SecretReader
	ns, name, key string
	setting       string
	ttl           time.Duration
	mu            sync.Mutex
	value         string
	readAt        time.Time
}

func (c *cachedSecret) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.value != "" && time.Since(c.readAt) < c.ttl {
		return c.value, nil
	}
	data, err := c.read(ctx, c.ns, c.name)
	if err != nil {
		return "", fmt.Errorf("%s_ref: Secret %s/%s: %w", c.setting, c.ns, c.name, err)
	}
	v := strings.TrimSpace(string(data[c.key]))
	if v == "" {
		return "", fmt.Errorf("%s_ref: Secret %s/%s has no key %q or it is empty", c.setting, c.ns, c.name, c.key)
	}
	c.value, c.readAt = v, time.Now()
	return v, nil
}
