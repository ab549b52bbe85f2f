package inventory

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
)

func ptr[T any](v T) *T { return &v }

func TestSKUInputValidate(t *testing.T) {
	ok := SKUInput{Name: ptr("Tea"), PriceCents: ptr(int64(100)), CostCents: ptr(int64(60)), Stock: ptr(int64(5))}
	for _, tc := range []struct {
		name    string
		edit    func(in *SKUInput)
		want    SKUChange
		wantErr string
	}{
		{"valid", func(*SKUInput) {}, SKUChange{Name: "Tea", PriceCents: 100, CostCents: 60, Stock: 5}, ""},
		{"stock left out", func(in *SKUInput) { in.Stock = nil }, SKUChange{Name: "Tea", PriceCents: 100, CostCents: 60}, ""},
		{"zeros", func(in *SKUInput) {
			in.PriceCents, in.CostCents, in.Stock = ptr(int64(0)), ptr(int64(0)), ptr(int64(0))
		},
			SKUChange{Name: "Tea"}, ""},
		{"no name", func(in *SKUInput) { in.Name = nil }, SKUChange{}, "name"},
		{"blank name", func(in *SKUInput) { in.Name = ptr(" \t") }, SKUChange{}, "name"},
		{"long name", func(in *SKUInput) { in.Name = ptr(strings.Repeat("x", MaxNameLen+1)) }, SKUChange{}, "name"},
		{"no price", func(in *SKUInput) { in.PriceCents = nil }, SKUChange{}, "price_cents"},
		{"negative price", func(in *SKUInput) { in.PriceCents = ptr(int64(-1)) }, SKUChange{}, "price_cents"},
		{"huge price", func(in *SKUInput) { in.PriceCents = ptr(int64(MaxCents + 1)) }, SKUChange{}, "price_cents"},
		{"no cost", func(in *SKUInput) { in.CostCents = nil }, SKUChange{}, "cost_cents"},
		{"negative cost", func(in *SKUInput) { in.CostCents = ptr(int64(-5)) }, SKUChange{}, "cost_cents"},
		{"negative stock", func(in *SKUInput) { in.Stock = ptr(int64(-1)) }, SKUChange{}, "stock"},
		{"huge stock", func(in *SKUInput) { in.Stock = ptr(int64(MaxStock + 1)) }, SKUChange{}, "stock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			got, err := in.Validate()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestValidSKUID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "SKU-1_x": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "a.b": false, "a b": false, "a/b": false, "é": false,
	} {
		require.Equal(t, want, ValidSKUID(id), id)
	}
}

func TestPlanLock(t *testing.T) {
	l := func(sku string, qty int) events.Line { return events.Line{SKUID: sku, Qty: qty} }
	many := make([]events.Line, MaxLines+1)
	for i := range many {
		many[i] = l("a", 1)
	}
	for _, tc := range []struct {
		name    string
		items   []events.Line
		want    LockPlan
		refusal *events.StockLockReply
	}{
		{"one line", []events.Line{l("a", 2)}, LockPlan{Lines: []events.Line{l("a", 2)}, PerSKU: []SKUQty{{"a", 2}}}, nil},
		{"summed and sorted", []events.Line{l("b", 1), l("a", 2), l("b", 3)},
			LockPlan{Lines: []events.Line{l("b", 1), l("a", 2), l("b", 3)}, PerSKU: []SKUQty{{"a", 2}, {"b", 4}}}, nil},
		{"prices in the request are ignored", []events.Line{{SKUID: "a", Qty: 1, PriceCents: 1, CostCents: 2}},
			LockPlan{Lines: []events.Line{l("a", 1)}, PerSKU: []SKUQty{{"a", 1}}}, nil},
		{"no lines", nil, LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU}},
		{"too many lines", many, LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU}},
		{"zero qty", []events.Line{l("a", 1), l("b", 0)}, LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU, SKUID: "b"}},
		{"negative qty", []events.Line{l("a", -1)}, LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU, SKUID: "a"}},
		{"qty too large", []events.Line{l("a", MaxQty+1)}, LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU, SKUID: "a"}},
		{"bad sku id", []events.Line{l("a b", 1)}, LockPlan{}, &events.StockLockReply{Result: events.StockUnknownSKU, SKUID: "a b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, refusal := PlanLock(tc.items)
			require.Equal(t, tc.refusal, refusal)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestTransition(t *testing.T) {
	type out struct {
		to   State
		move Move
		ok   bool
	}
	for _, tc := range []struct {
		from State
		ev   Event
		want out
	}{
		{StateLocked, EventPaid, out{StateSold, MoveSell, true}},
		{StateLocked, EventClosed, out{StateReleased, MoveRelease, true}},
		{StateLocked, EventRefunded, out{StateRestored, MoveRelease, true}},
		{StateSold, EventRefunded, out{StateRestored, MoveRestore, true}},
		{StateSold, EventPaid, out{StateSold, MoveNone, false}},
		{StateSold, EventClosed, out{StateSold, MoveNone, false}},
		{StateReleased, EventPaid, out{StateReleased, MoveNone, false}},
		{StateReleased, EventClosed, out{StateReleased, MoveNone, false}},
		{StateReleased, EventRefunded, out{StateReleased, MoveNone, false}},
		{StateRestored, EventPaid, out{StateRestored, MoveNone, false}},
		{StateRestored, EventRefunded, out{StateRestored, MoveNone, false}},
		{StateRestored, EventClosed, out{StateRestored, MoveNone, false}},
		{StateFailed, EventPaid, out{StateFailed, MoveNone, false}},
		{StateFailed, EventClosed, out{StateFailed, MoveNone, false}},
		{StateFailed, EventRefunded, out{StateFailed, MoveNone, false}},
	} {
		to, move, ok := Transition(tc.from, tc.ev)
		require.Equal(t, tc.want, out{to, move, ok}, "%s on %s", tc.from, tc.ev)
	}
}

// Every sequence of events, each possibly repeated, leaves an order's
// units where the last effective event puts them, and never moves units
// that are not there.
func TestTransitionConservesUnits(t *testing.T) {
	evs := []Event{EventPaid, EventClosed, EventRefunded}
	var walk func(st State, avail, locked, sold int, depth int)
	walk = func(st State, avail, locked, sold int, depth int) {
		require.Equal(t, 1, avail+locked+sold)
		require.GreaterOrEqual(t, min(avail, locked, sold), 0)
		if depth == 0 {
			return
		}
		for _, ev := range evs {
			to, move, _ := Transition(st, ev)
			a, l, s := avail, locked, sold
			switch move {
			case MoveSell:
				l, s = l-1, s+1
			case MoveRelease:
				l, a = l-1, a+1
			case MoveRestore:
				s, a = s-1, a+1
			}
			walk(to, a, l, s, depth-1)
		}
	}
	walk(StateLocked, 0, 1, 0, 5)
}

func TestTombstone(t *testing.T) {
	st, ok := Tombstone(EventClosed)
	require.True(t, ok)
	require.Equal(t, StateReleased, st)
	st, ok = Tombstone(EventRefunded)
	require.True(t, ok)
	require.Equal(t, StateRestored, st)
	_, ok = Tombstone(EventPaid)
	require.False(t, ok)
}
