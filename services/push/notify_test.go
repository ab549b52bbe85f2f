package push

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

// memStore is a Store in memory whose Record can be made to fail, as a
// crash between the text and the row would.
type memStore struct {
	mu       sync.Mutex
	rows     map[string]Notification
	users    map[string]string
	failNext int
}

func newMemStore() *memStore {
	return &memStore{rows: map[string]Notification{}, users: map[string]string{}}
}

func (s *memStore) Sent(_ context.Context, orderID, kind string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rows[orderID+":"+kind]
	return ok, nil
}

func (s *memStore) Record(_ context.Context, n Notice, _ string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return errors.New("crashed before commit")
	}
	if _, ok := s.rows[n.Key()]; !ok {
		s.rows[n.Key()] = Notification{OrderID: n.OrderID, Kind: n.Kind, At: at}
		s.users[n.Key()] = n.UserID
	}
	return nil
}

func (s *memStore) List(_ context.Context, userID string) ([]Notification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Notification
	for k, n := range s.rows {
		if s.users[k] == userID {
			out = append(out, n)
		}
	}
	return out, nil
}

func newTestNotifier(t *testing.T, store Store) (*Notifier, *providertest.Server) {
	p := providertest.New(t)
	c, err := providerclient.New(providerclient.Options{BaseURL: p.URL, Timeout: time.Second})
	require.NoError(t, err)
	return NewNotifier(c, store, slog.New(slog.DiscardHandler), nil), p
}

// A crash after the text and before the row: the retry sends the same key
// and the provider sends nothing new.
func TestNotifyRetryAfterLostRecord(t *testing.T) {
	store := newMemStore()
	store.failNext = 1
	n, p := newTestNotifier(t, store)
	notice := PaidNotice(events.OrderPaid{OrderID: "O1", UserID: "u1", PayCents: 990})
	require.Error(t, n.Notify(context.Background(), notice))
	require.Len(t, p.SMS("O1"), 1)
	require.NoError(t, n.Notify(context.Background(), notice))
	require.NoError(t, n.Notify(context.Background(), notice))
	require.Len(t, p.SMS("O1"), 1)
	require.Equal(t, 2, p.Attempts(providerclient.PathSMS), "a recorded notice calls the provider no more")
	list, err := n.List(context.Background(), "u1")
	require.NoError(t, err)
	require.Len(t, list, 1)
	list, err = n.List(context.Background(), "nobody")
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Empty(t, list)
}

// A provider failure records nothing.
func TestNotifyProviderFailureRecordsNothing(t *testing.T) {
	store := newMemStore()
	n, p := newTestNotifier(t, store)
	p.Fail(providerclient.PathSMS, 1, providertest.Status500)
	notice := RefundedNotice(events.OrderRefunded{OrderID: "O2", UserID: "u2"})
	err := n.Notify(context.Background(), notice)
	require.ErrorIs(t, err, providerclient.ErrUnavailable)
	sent, _ := store.Sent(context.Background(), "O2", KindRefunded)
	require.False(t, sent)
	require.NoError(t, n.Notify(context.Background(), notice))
	require.Len(t, p.SMS("O2"), 1)
}

func TestNotices(t *testing.T) {
	paid := PaidNotice(events.OrderPaid{OrderID: "O1", UserID: "u1", PayCents: 12345})
	require.Equal(t, Notice{OrderID: "O1", UserID: "u1", Kind: KindPaid, Text: "Qianlang: we received your payment of ¥123.45 for order O1. Thank you!"}, paid)
	require.Equal(t, "O1:ORDER_PAID", paid.Key())
	require.Contains(t, ShippedNotice(events.OrderShipped{OrderID: "O1", Carrier: "SF", TrackingNo: "T7"}).Text, "SF, tracking number T7")
	for _, tc := range []struct {
		reason string
		notify bool
		text   string
	}{
		{events.CloseCancelled, true, "cancelled"},
		{events.CloseTimeout, true, "not paid in time"},
		{events.CloseAbandoned, false, ""},
	} {
		n, ok := ClosedNotice(events.OrderClosed{OrderID: "O1", UserID: "u1", Reason: tc.reason})
		require.Equal(t, tc.notify, ok, tc.reason)
		if ok {
			require.Equal(t, KindClosed, n.Kind)
			require.Contains(t, n.Text, tc.text)
		}
	}
	require.Equal(t, KindRefunded, RefundedNotice(events.OrderRefunded{OrderID: "O1"}).Kind)
	require.Equal(t, "¥0.05", money(5))
	require.Equal(t, "-¥1.00", money(-100))
}
