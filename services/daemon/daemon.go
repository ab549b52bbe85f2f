// Package daemon is the skeleton every service binary runs on: flags
// checked at start, log/slog to stderr, its own MariaDB database created
// and migrated, an HTTP server with /healthz and /metrics and request
// metrics on every route, the queue's producers and consumers, and a
// shutdown that finishes in-flight requests, then stops consumers (their
// offsets persisted), then producers, then the database.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gorm.io/gorm"

	"qianlang.io/services/auth"
	"qianlang.io/services/bus"
	"qianlang.io/services/httpapi"
	"qianlang.io/services/migrate"
	"qianlang.io/services/txmsg"
)

// Flags are the flags every service takes.
type Flags struct {
	Listen      string
	DSN         string
	NameServers string // empty for services that do not use the queue
	Secrets     string
	LogLevel    string
	// ShutdownTimeout bounds the wait for in-flight requests at stop.
	ShutdownTimeout time.Duration
	// MaxReconsume is how often a consumer group's failed message is
	// redelivered before it goes to the group's dead-letter queue.
	MaxReconsume int
}

// Register adds the flags to fs; queue adds --namesrv.
func (f *Flags) Register(fs *flag.FlagSet, queue bool) {
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:0", "HTTP listen address host:port")
	fs.StringVar(&f.DSN, "dsn", "", "MariaDB DSN of this service's own database, user:pass@tcp(host:port)/dbname?parseTime=true (created if missing)")
	if queue {
		fs.StringVar(&f.NameServers, "namesrv", "", "NameServer addresses, host:port;host:port")
	}
	fs.StringVar(&f.Secrets, "secrets", "", "path of the secrets JSON file (token_secret, admin_token, provider_secret)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "longest wait for in-flight work at stop")
	if queue {
		fs.IntVar(&f.MaxReconsume, "max-reconsume", 16, "redeliveries of a failed message before it goes to its group's dead-letter queue (RocketMQ's maxReconsumeTimes)")
	}
}

// Validate checks the flags; queue requires --namesrv.
func (f *Flags) Validate(queue bool) error {
	if _, _, err := net.SplitHostPort(f.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", f.Listen, err)
	}
	if _, err := ParseDSN(f.DSN); err != nil {
		return fmt.Errorf("--dsn %q: %w", redact(f.DSN), err)
	}
	if queue {
		if _, err := bus.ParseNameServers(f.NameServers); err != nil {
			return fmt.Errorf("--namesrv %q: %w", f.NameServers, err)
		}
	}
	if f.Secrets == "" {
		return errors.New("--secrets: required")
	}
	if _, err := parseLevel(f.LogLevel); err != nil {
		return fmt.Errorf("--log-level %q: %w", f.LogLevel, err)
	}
	if queue && (f.MaxReconsume < 1 || f.MaxReconsume > 100) {
		return fmt.Errorf("--max-reconsume %d: want 1..100", f.MaxReconsume)
	}
	if f.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %s: must be positive", f.ShutdownTimeout)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// Spec describes one service to Main.
type Spec struct {
	Name       string
	Queue      bool // takes --namesrv and uses the queue
	Migrations []migrate.Migration
	// Flags registers the service's own flags; the returned function
	// validates them after parsing (nil: nothing to check).
	Flags func(fs *flag.FlagSet) func() error
	// Setup registers routes and consumers. Consumers it creates with
	// Service.Consumer start after Setup returns.
	Setup func(ctx context.Context, s *Service) error
}

// Service is what Setup builds on.
type Service struct {
	Name        string
	Log         *slog.Logger
	DB          *gorm.DB
	Secrets     auth.Secrets
	Tokens      *auth.Tokens
	NameServers []string
	// MaxReconsume is --max-reconsume, for every consumer group.
	MaxReconsume int32
	Registry     *prometheus.Registry
	Bus          *bus.Metrics

	faults    map[string]bool // from QIANLANG_FAULTS, comma-separated
	mux       *http.ServeMux
	http      *httpMetrics
	consumers []*bus.Consumer
	closers   []func() error // producers, then anything else; closed in reverse
}

// Handle routes pattern (a net/http ServeMux pattern, e.g. "GET /api/points")
// to h, with request metrics.
func (s *Service) Handle(pattern string, h httpapi.HandlerFunc) {
	s.mux.Handle(pattern, s.http.wrap(pattern, httpapi.Handler(s.Log, h)))
}

// HandleHTTP routes pattern to a plain http.Handler, with request metrics.
func (s *Service) HandleHTTP(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.http.wrap(pattern, h))
}

// OnClose runs fn at shutdown, after consumers and before the database,
// in reverse order of registration.
func (s *Service) OnClose(fn func() error) { s.closers = append(s.closers, fn) }

// Producer starts a producer in group, closed at shutdown. requestTopics
// are the topics it sends request-reply requests to, if any (see
// bus.ProducerOptions.RequestTopics).
func (s *Service) Producer(group string, requestTopics ...string) (*bus.Producer, error) {
	p, err := bus.NewProducer(bus.ProducerOptions{NameServers: s.NameServers, Group: group, Metrics: s.Bus, Log: s.Log, RequestTopics: requestTopics})
	if err != nil {
		return nil, err
	}
	s.OnClose(p.Close)
	return p, nil
}

// Publisher starts a transactional publisher in group for topics, closed at
// shutdown.
func (s *Service) Publisher(group string, topics ...string) (*txmsg.Publisher, error) {
	p, err := txmsg.New(txmsg.Options{NameServers: s.NameServers, Group: group, DB: s.DB, Log: s.Log, Metrics: s.Bus, Topics: topics})
	if err != nil {
		return nil, err
	}
	s.OnClose(p.Close)
	return p, nil
}

// Consumer creates group's consumer; it starts after Setup and stops first
// at shutdown. replies answers request-reply requests (may be nil).
func (s *Service) Consumer(group string, replies *bus.Producer) (*bus.Consumer, error) {
	c, err := bus.NewConsumer(bus.ConsumerOptions{NameServers: s.NameServers, Group: group, Metrics: s.Bus, Log: s.Log,
		Replies: replies, Redeliver: s.faults["redeliver"], MaxReconsume: s.MaxReconsume})
	if err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, c)
	return c, nil
}

// Subscribe creates group's consumer with a handler for each topic.
func (s *Service) Subscribe(group string, handlers map[string]bus.Handler) error {
	c, err := s.Consumer(group, nil)
	if err != nil {
		return err
	}
	for topic, h := range handlers {
		if err := c.Handle(topic, h); err != nil {
			return err
		}
	}
	return nil
}

// Answer creates group's consumer answering the request-reply requests of
// topic with r; the replies go out from producer group replyGroup.
func (s *Service) Answer(group, replyGroup, topic string, r bus.Responder) error {
	replies, err := s.Producer(replyGroup)
	if err != nil {
		return err
	}
	c, err := s.Consumer(group, replies)
	if err != nil {
		return err
	}
	return c.Respond(topic, r)
}

// Main runs the service described by spec with the process's arguments
// and exits.
func Main(spec Spec) {
	if err := Run(context.Background(), spec, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", spec.Name, err)
		os.Exit(1)
	}
}

// Run parses args, starts the service and blocks until ctx ends or SIGINT
// or SIGTERM arrives, then shuts down in order.
func Run(ctx context.Context, spec Spec, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(spec.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f Flags
	f.Register(fs, spec.Queue)
	var extra func() error
	if spec.Flags != nil {
		extra = spec.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := f.Validate(spec.Queue); err != nil {
		return err
	}
	if extra != nil {
		if err := extra(); err != nil {
			return err
		}
	}
	level, _ := parseLevel(f.LogLevel)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})).With("service", spec.Name)
	secrets, err := auth.LoadSecrets(f.Secrets)
	if err != nil {
		return fmt.Errorf("--secrets %q: %w", f.Secrets, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := OpenDB(ctx, f.DSN)
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if err := migrate.Apply(ctx, db, spec.Migrations); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Service{
		Name: spec.Name, Log: log, DB: db, Secrets: secrets, Tokens: auth.NewTokens(secrets),
		Registry: reg, Bus: bus.NewMetrics(reg), mux: http.NewServeMux(), http: newHTTPMetrics(reg),
		faults: parseFaults(os.Getenv("QIANLANG_FAULTS")),
	}
	if len(s.faults) > 0 {
		log.Warn("fault injection on", "QIANLANG_FAULTS", os.Getenv("QIANLANG_FAULTS"))
	}
	if spec.Queue {
		s.NameServers, _ = bus.ParseNameServers(f.NameServers)
		s.MaxReconsume = int32(f.MaxReconsume)
	}
	defer s.closeAll()
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := sqlDB.PingContext(r.Context()); err != nil {
			httpapi.WriteError(w, nil, httpapi.Unavailable("database: %v", err))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "service": spec.Name})
	})
	s.mux.Handle("/", httpapi.NotFoundHandler())
	if err := spec.Setup(ctx, s); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	for _, c := range s.consumers {
		if err := c.Start(); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", f.Listen, err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String())

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http: %w", err)
	}
	log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), f.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// closeAll stops consumers first (no new deliveries; offsets persisted),
// then everything registered with OnClose, newest first. Calling it again
// does nothing.
func (s *Service) closeAll() {
	for _, c := range s.consumers {
		if err := c.Close(); err != nil {
			s.Log.Warn("consumer close", "err", err)
		}
	}
	s.consumers = nil
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.Log.Warn("close", "err", err)
		}
	}
	s.closers = nil
}

func redact(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	colon := strings.IndexByte(dsn, ':')
	if at < 0 || colon < 0 || colon > at {
		return dsn
	}
	return dsn[:colon+1] + "***" + dsn[at:]
}

// parseFaults reads QIANLANG_FAULTS, a comma-separated list of fault
// injections for tests: "redeliver" handles every delivery twice.
func parseFaults(v string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			m[f] = true
		}
	}
	return m
}
