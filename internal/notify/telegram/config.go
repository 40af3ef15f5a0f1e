package telegram

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
)

// DefaultAPIURL is the Bot API's address, used when Config.APIURL is empty.
const DefaultAPIURL = "https://api.telegram.org"

// Config is a Telegram chat to post to. The bot token is a secret and is not here: New takes
// it as a notify.Secret.
type Config struct {
	// ChatID is the chat's numeric ID (-1001234567890 for a supergroup or channel) or a public
	// channel's @username.
	ChatID string `yaml:"chat_id"`
	// MessageThreadID posts to one topic of a forum supergroup; zero posts to the chat.
	MessageThreadID int64 `yaml:"message_thread_id"`
	// DisableNotification delivers messages silently.
	DisableNotification bool `yaml:"disable_notification"`
	// APIURL is the Bot API server, for a self-hosted one; empty means DefaultAPIURL.
	APIURL string `yaml:"api_url"`
}

var usernameRE = regexp.MustCompile(`^@[A-Za-z][A-Za-z0-9_]{3,31}$`)

// Validate reports the first setting the Bot API would reject.
func (c Config) Validate() error {
	switch id, err := strconv.ParseInt(c.ChatID, 10, 64); {
	case c.ChatID == "":
		return errors.New("chat_id: required")
	case err == nil && id == 0:
		return errors.New("chat_id: zero is not a chat")
	case err != nil && !usernameRE.MatchString(c.ChatID):
		return fmt.Errorf("chat_id %q: want a number such as -1001234567890 or an @channelusername", c.ChatID)
	}
	if c.MessageThreadID < 0 {
		return fmt.Errorf("message_thread_id %d: want a topic's positive ID, or zero", c.MessageThreadID)
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("api_url %q: want an http or https URL without query", c.APIURL)
		}
	}
	return nil
}

// chatID is the chat_id to send: a number when it is one, so the Bot API reads it as an ID.
func (c Config) chatID() any {
	if id, err := strconv.ParseInt(c.ChatID, 10, 64); err == nil {
		return id
	}
	return c.ChatID
}
