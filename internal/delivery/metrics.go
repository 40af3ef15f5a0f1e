package delivery

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrycd/ferry/api/v1alpha1"
)

// metrics are the delivery engine's Prometheus series.
type metrics struct {
	info      *prometheus.GaugeVec
	syncs     *prometheus.CounterVec
	reconcile prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_app_info",
			Help: "One series per Application, with value 1, labelled with its sync and health state.",
		}, []string{"namespace", "name", "sync", "health"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_app_sync_total",
			Help: "Syncs (deploys) finished, by result.",
		}, []string{"result"}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ferry_app_reconcile_duration_seconds",
			Help:    "Time to reconcile one Application, a sync included.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.info, m.syncs, m.reconcile)
	}
	return m
}

// observe records an Application's state, replacing its previous series.
func (m *metrics) observe(app *v1alpha1.Application) {
	m.forget(app.Namespace, app.Name)
	sync, health := string(app.Status.Sync.Status), string(app.Status.Health.Status)
	if sync == "" {
		sync = string(v1alpha1.SyncUnknown)
	}
	if health == "" {
		health = string(v1alpha1.HealthUnknown)
	}
	m.info.WithLabelValues(app.Namespace, app.Name, sync, health).Set(1)
}

// forget removes the series of a deleted Application.
func (m *metrics) forget(namespace, name string) {
	m.info.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "name": name})
}
