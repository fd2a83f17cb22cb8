// Package http serves signet's HTTP API (v1) and provides its Go client.
//
// The server authenticates callers by API key, applies the team policy,
// signs URLs through the portable storage layer, and records every decision
// in the audit log in the same transaction as the decision, before any byte
// of the answer is written (fail closed).
package http

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
)

// OpenBackend returns the driver that serves a connector, signing with
// secret (the connector's unsealed stored credentials, nil when it has
// none). It returns Unimplemented for backends this build cannot serve and
// Invalid for connectors or credentials it cannot use. Implementations may
// cache drivers; secret is a bearer secret and must never be logged.
type OpenBackend func(ctx context.Context, c *signet.Connector, secret map[string]string) (driver.Backend, error)

// Config holds what a Server needs. Store and Backends are required.
type Config struct {
	Store    signet.Store
	Backends OpenBackend
	// Sealer seals store credentials given with a connector and opens them
	// to sign; without it, connectors with credentials are refused.
	Sealer *signet.Sealer
	// Blob, when set, serves the built-in local store under /blob/.
	Blob   http.Handler
	Logger *slog.Logger
	// Now is the clock used for every expiry; time.Now when nil.
	Now func() time.Time
	// ClientIP finds the client's address behind trusted proxies.
	ClientIP ClientIPResolver
	// Revoked, when set, is told of each revocation once it is stored, so
	// the process can apply it at once (its local store checks, cached
	// signing sessions).
	Revoked func(*signet.Revocation)
}

// Server is signet's API server. It is an http.Handler.
type Server struct {
	store    signet.Store
	backends OpenBackend
	sealer   *signet.Sealer
	ips      ClientIPResolver
	logger   *slog.Logger
	now      func() time.Time
	handler  http.Handler
	metrics  *metrics
	registry *prometheus.Registry
	revoked  func(*signet.Revocation)

	auditHealth auditHealth // record.go
	cache       authCache   // cache.go
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) *Server {
	s := &Server{
		store:    cfg.Store,
		backends: cfg.Backends,
		sealer:   cfg.Sealer,
		ips:      cfg.ClientIP,
		logger:   cfg.Logger,
		now:      cfg.Now,
		registry: prometheus.NewRegistry(),
		revoked:  cfg.Revoked,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newMetrics(s.registry)
	registerCommitStats(s.registry, s.store)
	registerWALCheckpoints(s.registry, s.store)
	registerAuditHeadRaces(s.registry, s.store)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))

	api := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		mux.Handle(pattern, s.authenticate(http.HandlerFunc(h)))
	}
	api("GET /v1/whoami", s.handleWhoami)
	api("POST /v1/teams", s.handleCreateTeam)
	api("GET /v1/teams", s.handleListTeams)
	api("GET /v1/teams/{team}", s.handleGetTeam)
	api("PATCH /v1/teams/{team}", s.handleUpdateTeam)
	api("GET /v1/teams/{team}/members", s.handleListMembers)
	api("POST /v1/teams/{team}/members", s.handleAddMember)
	api("DELETE /v1/teams/{team}/members/{user}", s.handleRemoveMember)
	api("POST /v1/users", s.handleCreateUser)
	api("GET /v1/users", s.handleListUsers)
	api("POST /v1/keys", s.handleCreateKey)
	api("GET /v1/keys", s.handleListKeys)
	api("DELETE /v1/keys/{id}", s.handleRevokeKey)
	api("PUT /v1/teams/{team}/connector", s.handleSetConnector)
	api("GET /v1/teams/{team}/connector", s.handleGetConnector)
	api("GET /v1/teams/{team}/policy", s.handleRenderPolicy)
	api("PUT /v1/teams/{team}/policy", s.handleApplyPolicy)
	api("GET /v1/teams/{team}/doctor", s.handleDoctor)
	api("POST /v1/teams/{team}/presign", s.handlePresign)
	api("GET /v1/teams/{team}/objects", s.handleListObjects)
	api("POST /v1/teams/{team}/uploads", s.handleCreateUpload)
	api("GET /v1/teams/{team}/uploads/{id}", s.handleUploadState)
	api("POST /v1/teams/{team}/uploads/{id}/parts", s.handleUploadParts)
	api("POST /v1/teams/{team}/uploads/{id}/complete", s.handleCompleteUpload)
	api("DELETE /v1/teams/{team}/uploads/{id}", s.handleAbortUpload)
	api("GET /v1/audit", s.handleAudit)
	api("POST /v1/ingest/minio", s.handleIngestMinIO)
	api("POST /v1/ingest/s3-access-log", s.handleIngestS3AccessLog)
	api("PUT /v1/ingest/users/{user}", s.handleSetIngestUser)
	api("DELETE /v1/ingest/users/{user}", s.handleSetIngestUser)
	api("GET /v1/teams/{team}/usage", s.handleTeamUsage)
	api("GET /v1/usage", s.handleUsage)
	api("POST /v1/revocations", s.handleRevoke)
	api("GET /v1/revocations", s.handleListRevocations)
	if cfg.Blob != nil {
		mux.Handle("/blob/", cfg.Blob)
	}
	// "/" matches every method, so ServeMux never answers 405 itself:
	// unrouted asks it which methods the path has.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.unrouted(w, r, mux) })
	s.handler = s.observe(mux)
	return s
}

// httpMethods are the standard HTTP methods, in the order Allow lists them.
var httpMethods = []string{http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead,
	http.MethodOptions, http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace}

// unrouted answers a request that no route of mux serves: 405 with Allow
// when routes serve its path with other methods, else 404.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	var allow []string
	probe := r.WithContext(r.Context())
	for _, m := range httpMethods {
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if allow == nil {
		s.writeError(w, r, signet.Errorf(signet.NotFound, "no such endpoint"))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	s.writeError(w, r, signet.Errorf(methodNotAllowed, "method %s is not allowed here; the endpoint takes %s", r.Method, strings.Join(allow, ", ")))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// ReadHeaderTimeout is how long a client may take to send a request's
// headers; a slow client (a byte a second) is cut off after it, so it
// cannot hold connections and goroutines.
var ReadHeaderTimeout = 10 * time.Second

// HTTPServer returns an *http.Server for s with timeouts that keep slow or
// idle clients from holding resources. Bodies are not time-limited because
// the local store receives large uploads.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxActor
	ctxClientIP
)

// clientIP returns the client's address: the one authenticate resolved,
// so the forwarding headers are read once per request, or else resolved
// now.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	if ip, ok := r.Context().Value(ctxClientIP).(netip.Addr); ok {
		return ip
	}
	return s.ips.ClientIP(r)
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxRequestID).(string)
	return id
}

func actorOf(r *http.Request) signet.Actor {
	a, _ := r.Context().Value(ctxActor).(signet.Actor)
	return a
}

// statusWriter records the status an inner handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe assigns a request id, logs each API request (method and route
// pattern only: /blob URLs carry signatures and are logged by the store
// without them) and counts it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := signet.NewID(10)
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), ctxRequestID, id))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, http.StatusText(sw.status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if route != "/blob/" {
			s.logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", id), slog.String("route", route),
				slog.Int("status", sw.status), slog.Duration("took", time.Since(start)))
		}
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.writeError(w, r, signet.E("readyz", signet.Unavailable, "metadata store unavailable", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
