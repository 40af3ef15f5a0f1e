package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Handler answers git providers' webhooks. For each authentic push it calls trigger, which
// refreshes the Applications the push concerns (Push.Matches tells which) and returns how many;
// trigger runs with the request's context, so it should hand work off rather than sync.
//
// It answers 202 with {"provider","ref","applications"} for a push, 200 for a ping, 202 for any
// other authentic event (without calling trigger), 400 for an unknown provider or event or a
// malformed push, 401 for a wrong or missing signature or token, 405 for anything but POST, 413
// for a body over DefaultMaxBytes, and 500 when trigger fails. Error answers say what is wrong
// with the request but never quote a secret; trigger's error is logged, not answered. Logs carry
// the delivery id and either the reason for refusing or the provider, ref and SHA, never a
// secret or the payload. A nil log discards.
func Handler(secrets Secrets, trigger func(ctx context.Context, p Push) (int, error), log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		attrs := []slog.Attr{
			slog.String("remote", r.RemoteAddr),
			slog.String("delivery", deliveryID(r.Header)),
		}
		if r.Body != nil {
			// Bounding the body through w as well tells the server to close the connection
			// rather than drain the rest of an oversized body.
			r.Body = http.MaxBytesReader(w, r.Body, DefaultMaxBytes)
		}
		p, err := Parse(r, secrets, DefaultMaxBytes)
		if err != nil {
			status := statusOf(err)
			level := slog.LevelInfo
			if status < 300 {
				level = slog.LevelDebug // pings and events Ferry has no use for
			}
			log.LogAttrs(ctx, level, "webhook not acted on", append(attrs,
				slog.Int("status", status), slog.String("reason", err.Error()))...)
			switch status {
			case http.StatusOK, http.StatusAccepted:
				reply(w, status, message{Message: err.Error()})
			case http.StatusMethodNotAllowed:
				w.Header().Set("Allow", http.MethodPost)
				fallthrough
			default:
				reply(w, status, message{Error: err.Error()})
			}
			return
		}
		attrs = append(attrs, slog.String("provider", p.Provider), slog.String("ref", p.Ref),
			slog.String("after", p.After), slog.Bool("deleted", p.Deleted))
		n, err := trigger(ctx, p)
		if err != nil {
			log.LogAttrs(ctx, slog.LevelError, "webhook push not acted on", append(attrs,
				slog.Any("error", err))...)
			reply(w, http.StatusInternalServerError, message{Error: "internal error: refresh not started; polling will catch up"})
			return
		}
		log.LogAttrs(ctx, slog.LevelInfo, "webhook push", append(attrs, slog.Int("applications", n))...)
		reply(w, http.StatusAccepted, pushReply{Provider: p.Provider, Ref: p.Ref, Applications: n})
	})
}

type pushReply struct {
	Provider     string `json:"provider"`
	Ref          string `json:"ref"`
	Applications int    `json:"applications"`
}

type message struct {
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// statusOf is the one place a Parse error becomes an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrPing):
		return http.StatusOK
	case errors.Is(err, ErrIgnored):
		return http.StatusAccepted
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupported), errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// deliveryID is the provider's id for this delivery, which its UI shows beside the answer.
func deliveryID(h http.Header) string {
	return clip(firstOf(h, "X-GitHub-Delivery", "X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gitlab-Webhook-UUID", "X-Gitlab-Event-UUID"))
}
