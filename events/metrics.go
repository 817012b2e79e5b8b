package events

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrument wraps s so that every append is counted and timed in reg (Prometheus), labelled
// with the store's kind ("embedded", "memory", "kurrentdb").
func Instrument(s Store, reg prometheus.Registerer, kind string) Store {
	labels := prometheus.Labels{"store": kind}
	m := &instrumented{
		Store: s,
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "p2chat_events_appended_total", Help: "Events durably appended.", ConstLabels: labels,
		}),
		appends: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "p2chat_event_append_seconds", Help: "Time from Append to durable acknowledgement.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14), // 50µs .. 0.4s
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "p2chat_event_append_failures_total", Help: "Appends refused or failed, by reason.", ConstLabels: labels,
		}, []string{"reason"}),
	}
	reg.MustRegister(m.appended, m.appends, m.failures)
	return m
}

type instrumented struct {
	Store
	appended prometheus.Counter
	appends  prometheus.Histogram
	failures *prometheus.CounterVec
}

func (m *instrumented) Append(ctx context.Context, stream string, expected ExpectedRevision, evs ...Event) (AppendResult, error) {
	start := time.Now()
	res, err := m.Store.Append(ctx, stream, expected, evs...)
	switch {
	case err == nil:
		m.appends.Observe(time.Since(start).Seconds())
		m.appended.Add(float64(len(evs)))
	case errors.Is(err, ErrWrongExpectedRevision):
		m.failures.WithLabelValues("wrong_expected_revision").Inc()
	case errors.Is(err, ErrInvalidStream), errors.Is(err, ErrInvalidEvent):
		m.failures.WithLabelValues("invalid").Inc()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		m.failures.WithLabelValues("context").Inc()
	default:
		m.failures.WithLabelValues("error").Inc()
	}
	return res, err
}
