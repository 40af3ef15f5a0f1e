// Command demo-app stands in for the sample application's process in `make demo`, where
// kwok's fake kubelets run no containers: it reports a failure to Ferry with the official
// Sentry SDK for Go, configured as a deployed app is, from SENTRY_DSN and the SENTRY_RELEASE
// and SENTRY_ENVIRONMENT that Ferry injected into the sample Deployment.
package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/getsentry/sentry-go"
)

func main() {
	err := sentry.Init(sentry.ClientOptions{
		Dsn:         os.Getenv("SENTRY_DSN"),
		Release:     os.Getenv("SENTRY_RELEASE"),
		Environment: os.Getenv("SENTRY_ENVIRONMENT"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-app: sentry:", err)
		os.Exit(1)
	}
	sentry.ConfigureScope(func(s *sentry.Scope) {
		s.SetUser(sentry.User{ID: "demo-user-1"})
		s.SetTag("component", "greeter")
	})
	for order := 1; order <= 3; order++ {
		sentry.AddBreadcrumb(&sentry.Breadcrumb{Category: "greeting", Message: fmt.Sprintf("greeting visitor %d", order)})
		sentry.CaptureException(greet(order))
	}
	if !sentry.Flush(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "demo-app: the SDK could not deliver every event")
		os.Exit(1)
	}
}

// greet fails the way the demo's bug does: one call site, one issue.
func greet(visitor int) error {
	return fmt.Errorf("greet visitor %d: %w", visitor, errors.New("template \"hello\" is missing"))
}
