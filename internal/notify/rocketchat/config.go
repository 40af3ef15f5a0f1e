package rocketchat

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Config is a Rocket.Chat destination. The incoming webhook's URL holds the integration's
// token, so it is not here: New takes it as a notify.Secret.
type Config struct {
	// Channel overrides the integration's default channel: #channel or @user.
	Channel string `yaml:"channel"`
	// Alias is the sender name shown instead of the integration's user.
	Alias string `yaml:"alias"`
	// Emoji, such as :rocket:, replaces the sender's avatar.
	Emoji string `yaml:"emoji"`
	// Avatar is the URL of an image that replaces the sender's avatar.
	Avatar string `yaml:"avatar"`
}

var emojiRE = regexp.MustCompile(`^:[a-z0-9_+-]+:$`)

// Validate reports the first setting Rocket.Chat would reject or ignore.
func (c Config) Validate() error {
	if c.Channel != "" && !strings.HasPrefix(c.Channel, "#") && !strings.HasPrefix(c.Channel, "@") {
		return fmt.Errorf("channel %q: want #channel or @user", c.Channel)
	}
	if c.Emoji != "" && !emojiRE.MatchString(c.Emoji) {
		return fmt.Errorf("emoji %q: want a name between colons (:rocket:)", c.Emoji)
	}
	if c.Avatar != "" {
		u, err := url.Parse(c.Avatar)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("avatar %q: want an http or https URL", c.Avatar)
		}
	}
	if c.Emoji != "" && c.Avatar != "" {
		return errors.New("emoji and avatar: set at most one")
	}
	return nil
}
