package projections

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by projection name; one set serves every projection of a runner.
type metrics struct {
	applied  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	position *prometheus.GaugeVec
	caughtUp *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	label := []string{"projection"}
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2chat_projection_events_applied_total",
			Help: "Events applied to the read model and committed with their checkpoint.",
		}, label),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2chat_projection_errors_total",
			Help: "Failed attempts (apply, store or database errors); each is retried after a backoff.",
		}, label),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "p2chat_projection_checkpoint_position",
			Help: "Global position of the last event applied (the checkpoint).",
		}, label),
		caughtUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "p2chat_projection_caught_up",
			Help: "1 once the projection has applied everything stored when it subscribed, else 0.",
		}, label),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "p2chat_projection_lag_seconds",
			Help: "Age of the last applied event when it was applied; 0 when caught up and idle.",
		}, label),
	}
	if reg == nil {
		return m, nil
	}
	// A registry that already has them (a second runner, a restarted one) shares its collectors.
	var errs [5]error
	m.applied, errs[0] = register(reg, m.applied)
	m.errors, errs[1] = register(reg, m.errors)
	m.position, errs[2] = register(reg, m.position)
	m.caughtUp, errs[3] = register(reg, m.caughtUp)
	m.lag, errs[4] = register(reg, m.lag)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("register projection metrics: %w", err)
	}
	return m, nil
}

// register returns c, or the identical collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// projectionMetrics are one projection's children, looked up once rather than per batch.
type projectionMetrics struct {
	applied  prometheus.Counter
	errors   prometheus.Counter
	position prometheus.Gauge
	caughtUp prometheus.Gauge
	lag      prometheus.Gauge
}

func (m *metrics) forProjection(name string) projectionMetrics {
	return projectionMetrics{
		applied:  m.applied.WithLabelValues(name),
		errors:   m.errors.WithLabelValues(name),
		position: m.position.WithLabelValues(name),
		caughtUp: m.caughtUp.WithLabelValues(name),
		lag:      m.lag.WithLabelValues(name),
	}
}
