package warehouse

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/providerclient/providertest"
)

type gateFunc func(ctx context.Context, orderID string) (bool, error)

func (f gateFunc) MayShip(ctx context.Context, orderID string) (bool, error) { return f(ctx, orderID) }

// memStore is a Store in memory whose RecordShipped can fail, as a crash
// between the provider's answer and the commit would.
type memStore struct {
	mu         sync.Mutex
	rows       map[string]Shipment
	published  []string
	failRecord int
}

func (s *memStore) Get(_ context.Context, orderID string) (Shipment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, ok := s.rows[orderID]
	return sh, ok, nil
}

func (s *memStore) RecordCancelled(_ context.Context, orderID, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[orderID]; !ok {
		s.rows[orderID] = Shipment{OrderID: orderID, UserID: userID, State: StateCancelled}
	}
	return nil
}

func (s *memStore) RecordShipped(_ context.Context, sh Shipment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRecord > 0 {
		s.failRecord--
		return errors.New("crashed before commit")
	}
	if _, ok := s.rows[sh.OrderID]; !ok {
		s.rows[sh.OrderID] = sh
		s.published = append(s.published, "shipped:"+sh.OrderID)
	}
	return nil
}

func (s *memStore) RecordDelivered(_ context.Context, sh Shipment, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows[sh.OrderID].State == StateShipped {
		sh.State, sh.DeliveredAt = StateDelivered, &at
		s.rows[sh.OrderID] = sh
		s.published = append(s.published, "delivered:"+sh.OrderID)
	}
	return nil
}

func newTestWarehouse(t *testing.T, gate Gate, store Store) (*Warehouse, *providertest.Server) {
	p := providertest.New(t)
	c, err := providerclient.New(providerclient.Options{BaseURL: p.URL, Timeout: time.Second})
	require.NoError(t, err)
	return New(gate, c, store, "http://wh/callbacks/delivery", slog.New(slog.DiscardHandler), nil), p
}

func TestShipRetryAfterLostCommit(t *testing.T) {
	store := &memStore{rows: map[string]Shipment{}, failRecord: 1}
	asked := 0
	w, p := newTestWarehouse(t, gateFunc(func(context.Context, string) (bool, error) { asked++; return true, nil }), store)
	ev := events.OrderPaid{OrderID: "O1", UserID: "u1", Address: events.Address{Name: "n"}}
	require.Error(t, w.Ship(context.Background(), ev))
	require.NoError(t, w.Ship(context.Background(), ev))
	require.NoError(t, w.Ship(context.Background(), ev))
	require.Len(t, p.Shipments("O1"), 1, "the retry reuses the key: one shipment")
	require.Equal(t, 2, asked, "a recorded shipment asks no more")
	require.Equal(t, []string{"shipped:O1"}, store.published)
	sh := store.rows["O1"]
	require.Equal(t, StateShipped, sh.State)
	require.Equal(t, "u1", sh.UserID)
	require.NotEmpty(t, sh.TrackingNo)
}

func TestShipCancelledAndGateErrors(t *testing.T) {
	store := &memStore{rows: map[string]Shipment{}}
	answer := errors.New("timed out")
	w, p := newTestWarehouse(t, gateFunc(func(context.Context, string) (bool, error) {
		if answer != nil {
			return false, answer
		}
		return false, nil
	}), store)
	ev := events.OrderPaid{OrderID: "O2", UserID: "u2"}
	require.ErrorIs(t, w.Ship(context.Background(), ev), answer)
	_, ok, _ := store.Get(context.Background(), "O2")
	require.False(t, ok, "no answer records nothing")
	answer = nil
	require.NoError(t, w.Ship(context.Background(), ev))
	require.Equal(t, StateCancelled, store.rows["O2"].State)
	require.Empty(t, p.Shipments("O2"))
}

func TestDelivered(t *testing.T) {
	store := &memStore{rows: map[string]Shipment{
		"O3": {OrderID: "O3", UserID: "u3", State: StateShipped, TrackingNo: "T3"},
		"O4": {OrderID: "O4", UserID: "u4", State: StateCancelled},
	}}
	w, _ := newTestWarehouse(t, nil, store)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, w.Delivered(ctx, providerclient.DeliveryNotification{OrderID: "O3", TrackingNo: "T3", DeliveredAt: at}))
	require.NoError(t, w.Delivered(ctx, providerclient.DeliveryNotification{OrderID: "O3", TrackingNo: "T3", DeliveredAt: at}))
	require.Equal(t, []string{"delivered:O3"}, store.published)
	require.Equal(t, at, *store.rows["O3"].DeliveredAt)
	require.ErrorIs(t, w.Delivered(ctx, providerclient.DeliveryNotification{OrderID: "O4"}), ErrUnknownOrder)
	require.ErrorIs(t, w.Delivered(ctx, providerclient.DeliveryNotification{OrderID: "nope"}), ErrUnknownOrder)
}
