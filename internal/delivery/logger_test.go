package delivery_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferrycd/ferry/internal/delivery"
)

// TestKubeLoggerDropsBodies: even at the lowest log level, what client-go logs at V(8) (request
// and response bodies, Secret data among them) does not reach Ferry's log; V(1) and errors do.
func TestKubeLoggerDropsBodies(t *testing.T) {
	var buf bytes.Buffer
	log := delivery.KubeLogger(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.Level(-100)})).
		WithName("rest").WithValues("k", "v")
	log.V(8).Info("Request Body", "body", "canary-secret-body")
	log.V(8).WithValues("x", 1).Info("Response Body", "body", "canary-secret-body")
	log.V(1).Info("reconciling")
	log.Error(nil, "failed")
	if strings.Contains(buf.String(), "canary-secret-body") {
		t.Errorf("a V(8) message reached the log:\n%s", buf.String())
	}
	for _, want := range []string{"reconciling", "failed"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}
