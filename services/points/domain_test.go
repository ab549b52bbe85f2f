package points

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFor(t *testing.T) {
	for pay, want := range map[int64]int64{-100: 0, 0: 0, 1: 0, 99: 0, 100: 1, 199: 1, 200: 2, 12345: 123, 1_000_000_00: 1_000_000} {
		require.Equal(t, want, For(pay), "pay %d", pay)
	}
}

func TestTransition(t *testing.T) {
	type out struct {
		to  OrderState
		eff Effect
		ok  bool
	}
	for _, tc := range []struct {
		from OrderState
		ev   Event
		want out
	}{
		{"", EventPaid, out{OrderPaid, Credit, true}},
		{"", EventRefund, out{OrderRefunded, None, true}},
		{OrderPaid, EventRefund, out{OrderRefunded, Debit, true}},
		{OrderPaid, EventPaid, out{OrderPaid, None, false}},
		{OrderRefunded, EventPaid, out{OrderRefunded, None, false}},
		{OrderRefunded, EventRefund, out{OrderRefunded, None, false}},
	} {
		to, eff, ok := Transition(tc.from, tc.ev)
		require.Equal(t, tc.want, out{to, eff, ok}, "%q on %s", tc.from, tc.ev)
	}
}

// Whatever the order and repetition of an order's two events, it ends with
// at most one credit and one debit, and a debit only after a credit.
func TestTransitionSequences(t *testing.T) {
	var walk func(st OrderState, credits, debits, depth int)
	walk = func(st OrderState, credits, debits, depth int) {
		require.LessOrEqual(t, credits, 1)
		require.LessOrEqual(t, debits, credits)
		if depth == 0 {
			return
		}
		for _, ev := range []Event{EventPaid, EventRefund} {
			to, eff, _ := Transition(st, ev)
			c, d := credits, debits
			switch eff {
			case Credit:
				c++
			case Debit:
				d++
			}
			walk(to, c, d, depth-1)
		}
	}
	walk("", 0, 0, 6)
}
