package slack

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Config is a Slack (or Mattermost) destination. The incoming webhook's URL is the credential,
// so it is not here: New takes it as a notify.Secret.
type Config struct {
	// Channel overrides the webhook's channel (#channel, @user) where the service allows it:
	// Mattermost and Slack's legacy webhooks do, a Slack app's webhook posts to its own.
	Channel string `yaml:"channel"`
	// Username overrides the sender's name, where the service allows it.
	Username string `yaml:"username"`
	// IconEmoji (such as :ship:) or IconURL (an image) overrides the sender's icon.
	IconEmoji string `yaml:"icon_emoji"`
	IconURL   string `yaml:"icon_url"`
}

var emojiRE = regexp.MustCompile(`^:[a-z0-9_+'-]+:$`)

// Validate reports the first setting the service would reject or ignore.
func (c Config) Validate() error {
	if strings.ContainsAny(c.Channel, " \t\r\n") {
		return fmt.Errorf("channel %q: want #channel, @user or a channel ID", c.Channel)
	}
	if c.IconEmoji != "" && !emojiRE.MatchString(c.IconEmoji) {
		return fmt.Errorf("icon_emoji %q: want a name between colons (:ship:)", c.IconEmoji)
	}
	if c.IconURL != "" {
		u, err := url.Parse(c.IconURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("icon_url %q: want an http or https URL", c.IconURL)
		}
	}
	if c.IconEmoji != "" && c.IconURL != "" {
		return errors.New("icon_emoji and icon_url: set at most one")
	}
	return nil
}
