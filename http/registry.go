package http

import "github.com/prometheus/client_golang/prometheus"

// Registerer is the registry that GET /metrics serves, for metrics of
// other parts of the process (the audit sinks).
func (s *Server) Registerer() prometheus.Registerer { return s.registry }
