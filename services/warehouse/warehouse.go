package warehouse

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
)

// Producer groups of the warehouse. The transactional one must stay the
// same across restarts: the broker asks it back about open transactions.
const (
	GroupRequests = "wms_request_producer"
	GroupTimers   = "wms_timer_producer"
	GroupTx       = "wms_tx_producer"
)

// Config is the warehouse's own configuration.
type Config struct {
	ProviderURL     string
	PublicURL       string
	ProviderTimeout time.Duration
	AskTimeout      time.Duration
	// ShipAfter is the handling time from payment to handing the parcel
	// to the carrier; until then the order can still be cancelled.
	ShipAfter time.Duration
}

// Register adds the warehouse's flags to fs; the function returned checks
// them.
func (c *Config) Register(fs *flag.FlagSet) func() error {
	fs.StringVar(&c.ProviderURL, "provider", "", "base URL of the provider's API, e.g. http://127.0.0.1:9000")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL at which the provider reaches this service, e.g. http://127.0.0.1:8085 (deliveries go to <public-url>"+CallbackPath+")")
	fs.DurationVar(&c.ProviderTimeout, "provider-timeout", 5*time.Second, "longest wait for one provider call")
	fs.DurationVar(&c.AskTimeout, "ship-request-timeout", 5*time.Second, "longest wait for the order service's answer to may-I-ship")
	fs.DurationVar(&c.ShipAfter, "ship-after", 10*time.Second, "handling time from payment to handing the parcel to the carrier (a timer message); 0 ships at once")
	return c.validate
}

func (c *Config) validate() error {
	if _, err := providerclient.ParseBaseURL(c.ProviderURL); err != nil {
		return errors.New("--provider: " + err.Error())
	}
	if _, err := providerclient.ParseBaseURL(c.PublicURL); err != nil {
		return errors.New("--public-url: " + err.Error())
	}
	if c.ProviderTimeout <= 0 || c.AskTimeout <= 0 {
		return errors.New("--provider-timeout and --ship-request-timeout must be positive")
	}
	if c.ShipAfter < 0 {
		return fmt.Errorf("--ship-after %s: must not be negative", c.ShipAfter)
	}
	return nil
}

// CallbackURL is the delivery callback's address.
func (c *Config) CallbackURL() string {
	u, _ := providerclient.ParseBaseURL(c.PublicURL)
	return u.String() + CallbackPath
}

// Setup wires the warehouse into s: the paid-order consumer and the
// delivery callback.
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
	requests, err := s.Producer(GroupRequests, events.TopicShipmentStart)
	if err != nil {
		return err
	}
	timers, err := s.Producer(GroupTimers)
	if err != nil {
		return err
	}
	pub, err := s.Publisher(GroupTx, events.TopicOrderShipped, events.TopicOrderDelivered)
	if err != nil {
		return err
	}
	w := New(QueueGate{Requests: requests, Timeout: c.AskTimeout}, provider, NewDBStore(s.DB, pub), c.CallbackURL(), s.Log, NewMetrics(s.Registry))
	cons, err := s.Consumer(events.GroupWMS, nil)
	if err != nil {
		return err
	}
	if err := Subscribe(cons, w, Handling{Timers: timers, After: c.ShipAfter}, s.Log); err != nil {
		return err
	}
	s.Handle("POST "+CallbackPath, deliveryHandler(s.Secrets.ProviderSecret, w))
	return nil
}

// Spec returns the warehouse service's daemon spec.
func Spec() daemon.Spec {
	c := &Config{}
	return daemon.Spec{Name: "warehouse", Queue: true, Migrations: Migrations, Flags: c.Register, Setup: c.Setup}
}
