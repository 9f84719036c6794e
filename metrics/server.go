package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"segfs/internal/logfields"
)

// Server is the HTTP endpoint of -o metrics=ADDR. Listen binds before the mount goes live, so a bad
// or taken address fails the mount; Close stops it at unmount.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// Listen binds addr (host:port; port 0 picks a free one).
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint %s: %w", addr, err)
	}
	return &Server{ln: ln}, nil
}

// Addr is the address bound, with the port chosen when addr asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers /metrics from m's registry in a goroutine Close stops.
func (s *Server) Serve(m *Metrics, log logrus.FieldLogger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      log.WithField("op", "metrics"),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "segfs: metrics at /metrics")
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logfields.Err(log.WithField("op", "metrics"), err).Error("metrics endpoint stopped")
		}
	}()
}

// Close stops the endpoint: scrapes in flight get a few seconds, then their connections are closed.
func (s *Server) Close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
