package provider

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"qianlang.io/services/auth"
)

// Callback delivery: the outbox rows are polled, each due row is POSTed,
// signed, to its URL, a 2xx marks it done, anything else puts it off by a
// backoff from 100 ms doubling to 2 s. Rows are durable, so a restart
// picks up where the last run stopped; a delivery whose answer was lost is
// delivered again, as a real provider's notifications may be.
const (
	pollEvery       = 50 * time.Millisecond
	maxInFlight     = 64
	callbackTimeout = 5 * time.Second
	firstBackoff    = 100 * time.Millisecond
	maxBackoff      = 2 * time.Second
)

// backoff is the wait after the n-th failed attempt (n ≥ 1).
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 6 {
		return maxBackoff
	}
	return min(firstBackoff<<(n-1), maxBackoff)
}

type outbox struct {
	store  *store
	client *http.Client
	secret string
	log    *slog.Logger
	m      *metrics

	wakeCh   chan struct{}
	mu       sync.Mutex
	inflight map[int64]bool
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

func newOutbox(s *store, secret string, log *slog.Logger, m *metrics) *outbox {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxInFlight
	return &outbox{
		store: s, secret: secret, log: log, m: m,
		client:   &http.Client{Timeout: callbackTimeout, Transport: tr},
		wakeCh:   make(chan struct{}, 1),
		inflight: map[int64]bool{},
	}
}

// start polls until ctx ends or stop.
func (o *outbox) start(ctx context.Context) {
	ctx, o.cancel = context.WithCancel(ctx)
	o.wg.Go(func() { o.loop(ctx) })
}

// stop ends polling and waits for the deliveries under way (cancelled: an
// interrupted delivery stays due and is made again at the next start).
func (o *outbox) stop() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	o.wg.Wait()
	o.client.CloseIdleConnections()
}

// wake makes the poller look at once, after a callback due now was queued.
func (o *outbox) wake() {
	select {
	case o.wakeCh <- struct{}{}:
	default:
	}
}

func (o *outbox) loop(ctx context.Context) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		o.dispatch(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.wakeCh:
		}
	}
}

// dispatch starts delivering the due rows not already under way.
func (o *outbox) dispatch(ctx context.Context) {
	o.mu.Lock()
	free := maxInFlight - len(o.inflight)
	exclude := make([]int64, 0, len(o.inflight))
	for id := range o.inflight {
		exclude = append(exclude, id)
	}
	o.mu.Unlock()
	if free <= 0 {
		return
	}
	rows, err := o.store.dueCallbacks(ctx, now(), exclude, free)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn("poll callbacks", "err", err)
		}
		return
	}
	for _, r := range rows {
		o.mu.Lock()
		o.inflight[r.ID] = true
		o.mu.Unlock()
		o.wg.Go(func() { o.deliver(ctx, r) })
	}
}

func (o *outbox) deliver(ctx context.Context, r callbackRow) {
	defer func() {
		o.mu.Lock()
		delete(o.inflight, r.ID)
		o.mu.Unlock()
	}()
	err := o.post(ctx, r)
	if err == nil {
		// Recorded even while stopping, so a delivered callback is not sent again.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := o.store.delivered(dctx, r.ID, now()); err != nil {
			o.log.Warn("record callback delivered", "id", r.ID, "err", err)
		}
		o.m.delivered.WithLabelValues(r.Kind).Inc()
		return
	}
	if ctx.Err() != nil {
		return // stopping: the row stays due
	}
	next := now().Add(backoff(r.Attempts + 1))
	if err := o.store.failed(ctx, r.ID, next, err.Error()); err != nil && ctx.Err() == nil {
		o.log.Warn("record callback attempt", "id", r.ID, "err", err)
	}
	o.m.retried.WithLabelValues(r.Kind).Inc()
	o.log.Debug("callback retried", "id", r.ID, "kind", r.Kind, "ref", r.Ref, "attempt", r.Attempts+1, "next", next, "err", err)
}

// post delivers one callback; nil only for a 2xx answer.
func (o *outbox) post(ctx context.Context, r callbackRow) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, strings.NewReader(r.Body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.SignatureHeader, auth.SignBody(o.secret, []byte(r.Body)))
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
