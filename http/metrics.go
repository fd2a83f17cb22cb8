package http

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/signetdev/signet"
)

type metrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	urls       *prometheus.CounterVec
	auditWrite prometheus.Histogram
	auditFail  prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "signet_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		urls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_urls_issued_total", Help: "Pre-signed URLs issued by backend and method.",
		}, []string{"backend", "method"}),
		auditWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "signet_audit_commit_seconds", Help: "Time to commit a decision and its audit records.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		auditFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_audit_failures_total", Help: "Decisions refused because their audit record could not be made durable.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.urls, m.auditWrite, m.auditFail,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// counter is a counter read from the store when /metrics is scraped.
func counter(name, help string, read func() int64) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
		func() float64 { return float64(read()) })
}

// registerWALCheckpoints exports the WAL checkpoint counts of a store that
// runs its own (SQLite, sqlite/walcheckpoint.go).
func registerWALCheckpoints(reg *prometheus.Registry, store signet.Store) {
	st, ok := store.(interface {
		WALCheckpoints() (background, writer, failed int64)
	})
	if !ok {
		return
	}
	reg.MustRegister(
		counter("signet_store_wal_checkpoints_total",
			"Checkpoints of the SQLite write-ahead log run in the background, failed ones included.",
			func() int64 { n, _, _ := st.WALCheckpoints(); return n }),
		counter("signet_store_wal_writer_checkpoints_total",
			"Checkpoints the SQLite writer ran between batches because steady commits kept the background from starting the WAL over.",
			func() int64 { _, n, _ := st.WALCheckpoints(); return n }),
		counter("signet_store_wal_checkpoint_failures_total",
			"SQLite WAL checkpoints that failed (disk full, I/O error); while they fail the WAL grows.",
			func() int64 { _, _, n := st.WALCheckpoints(); return n }),
	)
}

// registerAuditHeadRaces exports how often a PostgreSQL writer appended in
// one round trip at the head it knew, and how often another replica had
// moved the head meanwhile (postgres.DB.AuditHeadRaces).
func registerAuditHeadRaces(reg *prometheus.Registry, store signet.Store) {
	st, ok := store.(interface{ AuditHeadRaces() (known, moved int64) })
	if !ok {
		return
	}
	reg.MustRegister(
		counter("signet_store_audit_known_head_appends_total",
			"Batches of audit records this process appended in one round trip at the head of the chain it knew.",
			func() int64 { n, _ := st.AuditHeadRaces(); return n }),
		counter("signet_store_audit_head_moved_total",
			"Batches of audit records sent at the head this process knew that found another replica had moved it, and were appended under its lock instead (two more round trips).",
			func() int64 { _, n := st.AuditHeadRaces(); return n }),
	)
}

// registerCommitStats exports the group commit counts of a store that
// reports them (SQLite, PostgreSQL): the rate of the second over the first
// is how many requests shared a commit and its fsync, which is what keeps
// durable auditing fast under load.
func registerCommitStats(reg *prometheus.Registry, store signet.Store) {
	st, ok := store.(interface{ Stats() signet.CommitStats })
	if !ok {
		return
	}
	reg.MustRegister(
		counter("signet_store_commits_total",
			"Transactions the store's writer committed; each carries one or more requests (group commit).",
			func() int64 { return st.Stats().Commits }),
		counter("signet_store_committed_updates_total",
			"Successful write requests (Updates) the store's commits carried.",
			func() int64 { return st.Stats().Updates }),
	)
}
