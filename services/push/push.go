package push

import (
	"context"
	"errors"
	"flag"
	"time"

	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
)

var errBadTimeout = errors.New("--provider-timeout: must be positive")

// Config is push's own configuration.
type Config struct {
	ProviderURL     string
	ProviderTimeout time.Duration
}

// Register adds push's flags to fs; the function returned checks them.
func (c *Config) Register(fs *flag.FlagSet) func() error {
	fs.StringVar(&c.ProviderURL, "provider", "", "base URL of the provider's API, e.g. http://127.0.0.1:9000")
	fs.DurationVar(&c.ProviderTimeout, "provider-timeout", 5*time.Second, "longest wait for one provider call")
	return func() error {
		if _, err := providerclient.ParseBaseURL(c.ProviderURL); err != nil {
			return err
		}
		if c.ProviderTimeout <= 0 {
			return errBadTimeout
		}
		return nil
	}
}

// Setup wires push into s: the consumer of the order events and
// GET /api/notifications.
func (c *Config) Setup(_ context.Context, s *daemon.Service) error {
	provider, err := providerclient.New(providerclient.Options{
		// No retries in the client: the consumer tries a failing handler
		// again in place, then the queue redelivers it.
		BaseURL: c.ProviderURL, Timeout: c.ProviderTimeout,
		Metrics: providerclient.NewMetrics(s.Registry),
	})
	if err != nil {
		return err
	}
	n := NewNotifier(provider, NewDBStore(s.DB), s.Log, NewMetrics(s.Registry))
	cons, err := s.Consumer(events.GroupPush, nil)
	if err != nil {
		return err
	}
	if err := Subscribe(cons, n, s.Log); err != nil {
		return err
	}
	s.Handle("GET /api/notifications", listHandler(s.Tokens, n))
	return nil
}

// Spec returns the push service's daemon spec.
func Spec() daemon.Spec {
	c := &Config{}
	return daemon.Spec{Name: "push", Queue: true, Migrations: Migrations, Flags: c.Register, Setup: c.Setup}
}
