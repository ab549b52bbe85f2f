// Package traffic plays order journeys against the platform at an
// open-loop arrival rate (a journey starts on schedule whether or not the
// earlier ones finished, so a slow platform cannot slow the clock that
// measures it): users log in, order, pay, cancel before paying, ask for a
// refund after paying, or never pay. It records each request's latency in
// HDR histograms and, for the invariant checker, who acted and what was
// stocked. The acceptance tests, the benchmarks and qlload drive it.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"qianlang.io/services/invariant"
)

// Mix is the share of each journey; the shares are normalised.
type Mix struct {
	Pay             float64 // order and pay
	CancelBeforePay float64 // order, then cancel unpaid
	RefundAfterPay  float64 // order, pay, cancel once paid
	NeverPay        float64 // order and walk away (closed by the timer)
}

// DefaultMix is the evening's: most orders are paid.
var DefaultMix = Mix{Pay: 0.7, CancelBeforePay: 0.1, RefundAfterPay: 0.1, NeverPay: 0.1}

// Options describe a run.
type Options struct {
	Gateway, Provider, AdminToken string
	Rate                          float64       // journeys started per second
	Duration                      time.Duration // how long journeys are started
	Users                         int           // distinct users (default 200)
	SKUs                          int           // distinct SKUs (default 20)
	StockPerSKU                   int64         // units stocked per SKU (default 1,000,000)
	Mix                           Mix
	// MaxInFlight bounds journeys running at once; a journey due while
	// at the bound is counted as dropped, never delayed (default 2000).
	MaxInFlight int
	// Prefix keeps users and SKUs of separate runs apart (default: time).
	Prefix string
	// HTTP is the client (default: 30 s timeout, 512 idle conns per host).
	HTTP *http.Client
}

func (o *Options) defaults() error {
	if o.Rate <= 0 {
		return fmt.Errorf("traffic: rate %v must be positive", o.Rate)
	}
	if o.Duration <= 0 {
		return fmt.Errorf("traffic: duration %v must be positive", o.Duration)
	}
	if o.Users <= 0 {
		o.Users = 200
	}
	if o.SKUs <= 0 {
		o.SKUs = 20
	}
	if o.StockPerSKU <= 0 {
		o.StockPerSKU = 1_000_000
	}
	if o.Mix == (Mix{}) {
		o.Mix = DefaultMix
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2000
	}
	if o.Prefix == "" {
		o.Prefix = "t" + strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}}
	}
	return nil
}

// Endpoints whose latency is recorded.
const (
	EPPlace   = "POST /api/orders"
	EPPay     = "POST /api/orders/{id}/pay"
	EPConfirm = "POST /provider/payments/{id}/confirm"
	EPCancel  = "POST /api/orders/{id}/cancel"
)

// Result is what a run did.
type Result struct {
	World     invariant.World
	Started   int64 // journeys started
	Dropped   int64 // journeys not started: MaxInFlight was reached
	Orders    int64 // orders placed (201)
	Errors    int64 // requests that failed (transport errors or 5xx)
	Elapsed   time.Duration
	Latencies map[string]*hdrhistogram.Histogram // by endpoint, microseconds
	ByJourney map[string]int64
}

// Percentile returns an endpoint's latency at q (0-100).
func (r *Result) Percentile(endpoint string, q float64) time.Duration {
	h := r.Latencies[endpoint]
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond
}

// Summary prints the run in a few lines.
func (r *Result) Summary() string {
	s := fmt.Sprintf("journeys %d (dropped %d), orders %d, errors %d in %v\n", r.Started, r.Dropped, r.Orders, r.Errors, r.Elapsed.Round(time.Millisecond))
	eps := make([]string, 0, len(r.Latencies))
	for ep := range r.Latencies {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	for _, ep := range eps {
		h := r.Latencies[ep]
		s += fmt.Sprintf("  %-40s n=%-7d p50 %-8v p99 %-8v max %v\n", ep, h.TotalCount(),
			r.Percentile(ep, 50), r.Percentile(ep, 99), time.Duration(h.Max())*time.Microsecond)
	}
	return s
}

type run struct {
	o       Options
	c       *invariant.Client
	mu      sync.Mutex
	hist    map[string]*hdrhistogram.Histogram
	tokens  sync.Map // user -> token
	res     Result
	orders  atomic.Int64
	errs    atomic.Int64
	journey map[string]*atomic.Int64
}

// Run stocks the SKUs, then plays journeys for o.Duration at o.Rate and
// waits for the started ones to finish.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &run{o: o, c: invariant.NewClient(o.Gateway, o.Provider, o.AdminToken), hist: map[string]*hdrhistogram.Histogram{},
		journey: map[string]*atomic.Int64{"pay": {}, "cancel": {}, "refund": {}, "never": {}}}
	r.c.HTTP = o.HTTP
	r.res.World = invariant.World{Stocked: map[string]int64{}}
	if err := r.stock(ctx); err != nil {
		return nil, err
	}
	for i := range o.Users {
		r.res.World.Users = append(r.res.World.Users, fmt.Sprintf("%s-u%d", o.Prefix, i))
	}
	start := time.Now()
	var wg sync.WaitGroup
	inflight := make(chan struct{}, o.MaxInFlight)
	interval := time.Duration(float64(time.Second) / o.Rate)
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 7))
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= o.Duration || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case inflight <- struct{}{}:
		default:
			r.res.Dropped++
			continue
		}
		r.res.Started++
		user := r.res.World.Users[rng.IntN(o.Users)]
		sku := fmt.Sprintf("%s-s%d", o.Prefix, rng.IntN(o.SKUs))
		kind := pick(rng, o.Mix)
		wg.Add(1)
		go func(n int64) {
			defer wg.Done()
			defer func() { <-inflight }()
			r.play(ctx, kind, user, sku, fmt.Sprintf("%s-k%d", o.Prefix, n))
		}(i)
	}
	wg.Wait()
	r.res.Elapsed = time.Since(start)
	r.res.Orders, r.res.Errors = r.orders.Load(), r.errs.Load()
	r.res.Latencies = r.hist
	r.res.ByJourney = map[string]int64{}
	for k, v := range r.journey {
		r.res.ByJourney[k] = v.Load()
	}
	return &r.res, nil
}

func pick(rng *rand.Rand, m Mix) string {
	total := m.Pay + m.CancelBeforePay + m.RefundAfterPay + m.NeverPay
	x := rng.Float64() * total
	switch {
	case x < m.Pay:
		return "pay"
	case x < m.Pay+m.CancelBeforePay:
		return "cancel"
	case x < m.Pay+m.CancelBeforePay+m.RefundAfterPay:
		return "refund"
	}
	return "never"
}

func (r *run) stock(ctx context.Context) error {
	for i := range r.o.SKUs {
		id := fmt.Sprintf("%s-s%d", r.o.Prefix, i)
		price := int64(500 + 700*(i%9))
		body := map[string]any{"name": "SKU " + id, "price_cents": price, "cost_cents": price * 6 / 10, "stock": r.o.StockPerSKU}
		if _, err := r.c.Do(ctx, http.MethodPut, r.o.Gateway+"/api/admin/skus/"+id, r.o.AdminToken, body, nil, nil); err != nil {
			return fmt.Errorf("traffic: stock %s: %w", id, err)
		}
		r.res.World.Stocked[id] = r.o.StockPerSKU
	}
	return nil
}

func (r *run) observe(ep string, start time.Time, err error) {
	if err != nil {
		r.errs.Add(1)
	}
	us := time.Since(start).Microseconds()
	r.mu.Lock()
	h := r.hist[ep]
	if h == nil {
		h = hdrhistogram.New(1, 120_000_000, 3)
		r.hist[ep] = h
	}
	_ = h.RecordValue(us)
	r.mu.Unlock()
}

func (r *run) token(ctx context.Context, user string) (string, error) {
	if t, ok := r.tokens.Load(user); ok {
		return t.(string), nil
	}
	var out struct {
		Token string `json:"token"`
	}
	if _, err := r.c.Do(ctx, http.MethodPost, r.o.Gateway+"/api/login", "", map[string]string{"user_id": user}, nil, &out); err != nil {
		return "", err
	}
	r.tokens.Store(user, out.Token)
	return out.Token, nil
}

// errRefused is a 4xx answer: the journey ends there (e.g. a cancel that
// came after the shipment started).
var errRefused = errors.New("refused")

func (r *run) call(ctx context.Context, ep, method, url, token string, in any, hdr map[string]string, out any) error {
	start := time.Now()
	status, err := r.c.Do(ctx, method, url, token, in, hdr, out)
	if err != nil && status >= 400 && status < 500 {
		r.observe(ep, start, nil)
		return fmt.Errorf("%w: %v", errRefused, err)
	}
	r.observe(ep, start, err)
	return err
}

func (r *run) play(ctx context.Context, kind, user, sku, key string) {
	r.journey[kind].Add(1)
	tok, err := r.token(ctx, user)
	if err != nil {
		r.errs.Add(1)
		return
	}
	var o struct {
		OrderID string `json:"order_id"`
	}
	body := map[string]any{"items": []map[string]any{{"sku_id": sku, "qty": 1}},
		"address": map[string]string{"name": user, "phone": "13800000000", "line": "1 Binjiang Road"}}
	if err := r.call(ctx, EPPlace, http.MethodPost, r.o.Gateway+"/api/orders", tok, body, map[string]string{"Idempotency-Key": key}, &o); err != nil {
		return
	}
	r.orders.Add(1)
	orderURL := r.o.Gateway + "/api/orders/" + o.OrderID
	switch kind {
	case "never":
		return
	case "cancel":
		_ = r.call(ctx, EPCancel, http.MethodPost, orderURL+"/cancel", tok, nil, nil, nil)
		return
	}
	var p struct {
		PaymentID string `json:"payment_id"`
	}
	if err := r.call(ctx, EPPay, http.MethodPost, orderURL+"/pay", tok, nil, nil, &p); err != nil {
		return
	}
	if err := r.call(ctx, EPConfirm, http.MethodPost, r.o.Provider+"/provider/payments/"+p.PaymentID+"/confirm", "", nil, nil, nil); err != nil {
		return
	}
	if kind != "refund" {
		return
	}
	// Ask for the money back once the order shows PAID.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var v struct {
			State string `json:"state"`
		}
		if _, err := r.c.Do(ctx, http.MethodGet, orderURL, tok, nil, nil, &v); err == nil && v.State != "PENDING_PAYMENT" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = r.call(ctx, EPCancel, http.MethodPost, orderURL+"/cancel", tok, nil, nil, nil)
}
