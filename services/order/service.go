package order

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"qianlang.io/services/bus"
	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
)

// Producer groups of the order service.
const (
	ProducerGroup  = "order_producer_group"    // plain sends, timers, requests, replies
	PublisherGroup = "order_tx_producer_group" // transactional messages; check-backs come here
)

// CallbackPath is where the provider notifies payments.
const CallbackPath = "/callbacks/payment"

const (
	defaultRequest  = 5 * time.Second
	defaultTimeout  = 30 * time.Minute
	defaultSeckill  = 500
	releaseDeadline = 10 * time.Second // for the release of an abandoned placement
)

// Config is the order service's own configuration.
type Config struct {
	// ProviderURL is the provider's base URL (--provider).
	ProviderURL string
	// PublicURL is this service's base URL as the provider reaches it
	// (--public-url); payments notify PublicURL + /callbacks/payment.
	PublicURL string
	// OrderTimeout is how long an order may stay unpaid (--order-timeout).
	OrderTimeout time.Duration
	// SeckillOrderRate is the rate at which seckill winners become orders
	// (--seckill-order-rate).
	SeckillOrderRate int
	// RequestTimeout bounds each request to inventory and marketing while
	// placing an order.
	RequestTimeout time.Duration
}

// DefaultConfig is the configuration before flags.
func DefaultConfig() Config {
	return Config{OrderTimeout: defaultTimeout, SeckillOrderRate: defaultSeckill, RequestTimeout: defaultRequest}
}

// register adds the service's flags to fs and returns their check.
func (c *Config) register(fs *flag.FlagSet) func() error {
	fs.StringVar(&c.ProviderURL, "provider", c.ProviderURL, "the provider's base URL, http://host:port")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "this service's base URL as the provider calls it back (notify_url = <public-url>"+CallbackPath+")")
	fs.DurationVar(&c.OrderTimeout, "order-timeout", c.OrderTimeout, "how long an order may stay unpaid before it is closed")
	fs.IntVar(&c.SeckillOrderRate, "seckill-order-rate", c.SeckillOrderRate, "seckill winners turned into orders per second")
	return c.Validate
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if _, err := providerclient.ParseBaseURL(c.ProviderURL); err != nil {
		return fmt.Errorf("--provider: %w", err)
	}
	if _, err := providerclient.ParseBaseURL(c.PublicURL); err != nil {
		return fmt.Errorf("--public-url: %w", err)
	}
	if c.OrderTimeout <= 0 {
		return fmt.Errorf("--order-timeout %s: must be positive", c.OrderTimeout)
	}
	if c.SeckillOrderRate <= 0 {
		return fmt.Errorf("--seckill-order-rate %d: must be positive", c.SeckillOrderRate)
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("request timeout %s: must be positive", c.RequestTimeout)
	}
	return nil
}

// NotifyURL is where the provider posts payment notifications.
func (c *Config) NotifyURL() string { return strings.TrimRight(c.PublicURL, "/") + CallbackPath }

// Spec is the order service for daemon.Main.
func Spec() daemon.Spec { return NewSpec(DefaultConfig()) }

// NewSpec is the order service starting from base, which its flags
// override.
func NewSpec(base Config) daemon.Spec {
	c := base
	return daemon.Spec{Name: "order", Queue: true, Migrations: Migrations, Flags: c.register, Setup: c.setup}
}

// setup wires the service: the transactional publisher, the plain
// producer, the provider, the routes and the consumers.
func (c *Config) setup(_ context.Context, s *daemon.Service) error {
	pub, err := s.Publisher(PublisherGroup, events.TopicOrderPaySuccess, events.TopicOrderClosed,
		events.TopicOrderRefund, events.TopicOrderRefunded, events.TopicPaymentRefund)
	if err != nil {
		return err
	}
	prod, err := s.Producer(ProducerGroup, events.TopicStockLock, events.TopicCouponReserve)
	if err != nil {
		return err
	}
	prov, err := newProvider(c.ProviderURL, providerclient.NewMetrics(s.Registry))
	if err != nil {
		return err
	}
	app := NewApp(*c, s.Log, NewStore(s.DB), prod, pub, prov)
	NewAPI(app, s.Tokens, s.Secrets.ProviderSecret).Routes(s.Handle)
	return app.subscribe(s)
}

// ReplyGroup is the producer group the order service answers the
// warehouse's may-I-ship requests from.
const ReplyGroup = "order_reply_group"

// subscribe creates the service's consumer groups.
func (a *App) subscribe(s *daemon.Service) error {
	return errors.Join(
		s.Subscribe(events.GroupOrderTimeout, map[string]bus.Handler{events.TopicOrderTimeout: a.HandleTimeout}),
		s.Subscribe(events.GroupRefund, map[string]bus.Handler{
			events.TopicOrderRefund:   a.HandleOrderRefund,
			events.TopicPaymentRefund: a.HandlePaymentRefund,
		}),
		s.Subscribe(events.GroupOrderShipping, map[string]bus.Handler{
			events.TopicOrderShipped:   a.HandleShipped,
			events.TopicOrderDelivered: a.HandleDelivered,
		}),
		s.Answer(events.GroupShipmentStart, ReplyGroup, events.TopicShipmentStart, a.RespondShipmentStart),
	)
}

// messenger sends plain messages, timers and requests (bus.Producer).
type messenger interface {
	Send(ctx context.Context, topic, key, eventID string, ev any) error
	SendAt(ctx context.Context, topic, key, eventID string, ev any, at time.Time) error
	Request(ctx context.Context, topic, key string, req, resp any, timeout time.Duration) error
}

// publisher commits a local transaction and a message together (txmsg).
type publisher interface {
	Publish(ctx context.Context, topic, key, eventID string, ev any, local func(tx *gorm.DB) error) error
}

// App is the order service's logic over its store, the queue and the
// provider.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    *Store
	bus      messenger
	pub      publisher
	provider Provider
	locks    stripes
	now      func() time.Time
}

// NewApp returns the service's logic.
func NewApp(cfg Config, log *slog.Logger, store *Store, bus messenger, pub publisher, prov Provider) *App {
	return &App{cfg: cfg, log: log, store: store, bus: bus, pub: pub, provider: prov,
		now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }}
}

// stripes serialises work per order within the process (payment
// notifications for one order, which txmsg would otherwise refuse to
// publish concurrently).
type stripes [64]sync.Mutex

func (s *stripes) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &s[h.Sum32()%uint32(len(s))]
	m.Lock()
	return m.Unlock
}
