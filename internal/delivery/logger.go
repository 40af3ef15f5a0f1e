package delivery

import (
	"log/slog"

	"github.com/go-logr/logr"
)

// maxKubeVerbosity is the highest logr verbosity that reaches Ferry's log from
// controller-runtime and client-go. client-go logs request and response bodies at V(8), and
// those bodies hold the data of the Secrets Ferry applies, Vault values included; URLs come
// at V(6). A log level as low as slog's "DEBUG-4" (-8) would otherwise let them through.
const maxKubeVerbosity = 4

// KubeLogger is the logr.Logger to give controller-runtime and client-go: h's, with every
// verbosity above maxKubeVerbosity dropped whatever h's level.
func KubeLogger(h slog.Handler) logr.Logger {
	return logr.New(cappedSink{LogSink: logr.FromSlogHandler(h).GetSink()})
}

// cappedSink drops what is logged above maxKubeVerbosity.
type cappedSink struct{ logr.LogSink }

func (s cappedSink) Enabled(level int) bool {
	return level <= maxKubeVerbosity && s.LogSink.Enabled(level)
}

func (s cappedSink) WithValues(kv ...any) logr.LogSink {
	return cappedSink{s.LogSink.WithValues(kv...)}
}

func (s cappedSink) WithName(name string) logr.LogSink {
	return cappedSink{s.LogSink.WithName(name)}
}
