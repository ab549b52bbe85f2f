package order

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/daemon"
	"qianlang.io/services/dbtest"
	"qianlang.io/services/events"
	"qianlang.io/services/migrate"
)

func testStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	db, err := daemon.OpenDB(ctx, dbtest.DSN(t, "orderstore"))
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	require.NoError(t, migrate.Apply(ctx, db, Migrations))
	require.NoError(t, migrate.Apply(ctx, db, Migrations), "migrations run twice")
	return NewStore(db)
}

func testOrder(id, user, key string) *Order {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &Order{ID: id, UserID: user, IdemKey: key, State: StatePending, TotalCents: 300, PayCents: 300,
		Lines:   []events.Line{{SKUID: "a", Qty: 1, PriceCents: 100, CostCents: 50}, {SKUID: "b", Qty: 2, PriceCents: 100}},
		Address: Address{Name: "n", Phone: "p", Line: "l"}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
}

// The order id's fate is decided once: by the placement's insert or by
// the timer that found no order; an idempotency key places one order.
func TestStoreClaimsAndKeys(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()

	placed := testOrder("O1", "u1", "k1")
	require.NoError(t, s.Insert(ctx, placed))
	abandoned, err := s.ClaimAbandoned(ctx, "O1")
	require.NoError(t, err)
	require.False(t, abandoned, "placed first")
	got, err := s.Get(ctx, "O1")
	require.NoError(t, err)
	require.Equal(t, placed.Lines, got.Lines)
	require.Equal(t, placed.ExpiresAt, got.ExpiresAt)

	abandoned, err = s.ClaimAbandoned(ctx, "O2")
	require.NoError(t, err)
	require.True(t, abandoned)
	abandoned, err = s.ClaimAbandoned(ctx, "O2")
	require.NoError(t, err)
	require.True(t, abandoned, "again")
	require.ErrorIs(t, s.Insert(ctx, testOrder("O2", "u1", "k2")), errAbandonedID)
	_, err = s.Get(ctx, "O2")
	require.ErrorIs(t, err, ErrNotFound)

	require.ErrorIs(t, s.Insert(ctx, testOrder("O3", "u1", "k1")), errDuplicatePlacement)
	require.NoError(t, s.Insert(ctx, testOrder("O4", "u2", "k1")), "keys are per user")
	_, err = s.GetForUser(ctx, "u2", "O1")
	require.ErrorIs(t, err, ErrNotFound)
}

// Every transition is conditional: applied twice, the second changes
// nothing.
func TestStoreTransitionsAreConditional(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	require.NoError(t, s.Insert(ctx, testOrder("O1", "u1", "k1")))
	now := time.Now().UTC()
	require.NoError(t, markPaid(s.db, "O1", "P1", now))
	require.ErrorIs(t, markPaid(s.db, "O1", "P2", now), errStateChanged)
	require.ErrorIs(t, markClosed(s.db, "O1", events.CloseTimeout, now), errStateChanged)
	require.NoError(t, s.MarkShippingStarted(ctx, "O1"))
	require.ErrorIs(t, s.MarkShippingStarted(ctx, "O1"), errStateChanged)
	require.ErrorIs(t, markRefunding(s.db, "O1", "R1", now), errStateChanged, "shipping started")
	ok, err := s.MarkShipped(ctx, "O1", "SF", "T1", now)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.MarkShipped(ctx, "O1", "SF", "T9", now)
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = s.MarkDelivered(ctx, "O1", "SF", "T9", now)
	require.NoError(t, err)
	require.True(t, ok)
	o, err := s.Get(ctx, "O1")
	require.NoError(t, err)
	require.Equal(t, StateCompleted, o.State)
	require.Equal(t, "T1", o.TrackingNo, "the shipped tracking number stays")
	require.Equal(t, "P1", o.PaymentID)

	require.NoError(t, s.Insert(ctx, testOrder("O2", "u1", "k2")))
	require.NoError(t, markPaid(s.db, "O2", "P3", now))
	require.NoError(t, markRefunding(s.db, "O2", "R2", now))
	require.ErrorIs(t, markRefunding(s.db, "O2", "R3", now), errStateChanged)
	require.NoError(t, markRefunded(s.db, "O2", "PR2", now))
	require.ErrorIs(t, markRefunded(s.db, "O2", "PR9", now), errStateChanged)
	o, err = s.Get(ctx, "O2")
	require.NoError(t, err)
	require.Equal(t, StateRefunded, o.State)
	require.Equal(t, "R2", o.RefundID)
	require.Equal(t, "PR2", o.ProviderRefundID)
}

// fakeBus records timers set again.
type fakeBus struct {
	messenger
	at []time.Time
}

func (f *fakeBus) SendAt(_ context.Context, _, _, _ string, _ any, at time.Time) error {
	f.at = append(f.at, at)
	return nil
}

// A timer delivered before its deadline never closes early: held when
// the deadline is near, set again for it when it is not.
func TestAwaitDeadline(t *testing.T) {
	f := &fakeBus{}
	a := &App{bus: f, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()

	due, err := a.awaitDeadline(ctx, events.OrderTimeout{OrderID: "O1", Deadline: time.Now().Add(-time.Second)})
	require.NoError(t, err)
	require.True(t, due)

	deadline := time.Now().Add(150 * time.Millisecond)
	due, err = a.awaitDeadline(ctx, events.OrderTimeout{OrderID: "O1", Deadline: deadline})
	require.NoError(t, err)
	require.True(t, due)
	require.False(t, time.Now().Before(deadline), "held until the deadline")

	far := time.Now().Add(time.Hour)
	due, err = a.awaitDeadline(ctx, events.OrderTimeout{OrderID: "O1", Deadline: far})
	require.NoError(t, err)
	require.False(t, due)
	require.Equal(t, []time.Time{far}, f.at, "set again for the deadline")
}
