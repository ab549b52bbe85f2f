package marketing

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
)

func ptr[T any](v T) *T { return &v }

func TestCouponInputValidate(t *testing.T) {
	ok := CouponInput{UserID: ptr("u1"), AmountCents: ptr(int64(500)), MinSpendCents: ptr(int64(5000))}
	for _, tc := range []struct {
		name    string
		edit    func(in *CouponInput)
		want    CouponSpec
		wantErr string
	}{
		{"valid", func(*CouponInput) {}, CouponSpec{UserID: "u1", AmountCents: 500, MinSpendCents: 5000}, ""},
		{"min spend left out", func(in *CouponInput) { in.MinSpendCents = nil }, CouponSpec{UserID: "u1", AmountCents: 500}, ""},
		{"no user", func(in *CouponInput) { in.UserID = nil }, CouponSpec{}, "user_id"},
		{"bad user", func(in *CouponInput) { in.UserID = ptr("u 1") }, CouponSpec{}, "user_id"},
		{"long user", func(in *CouponInput) { in.UserID = ptr(strings.Repeat("u", 65)) }, CouponSpec{}, "user_id"},
		{"no amount", func(in *CouponInput) { in.AmountCents = nil }, CouponSpec{}, "amount_cents"},
		{"zero amount", func(in *CouponInput) { in.AmountCents = ptr(int64(0)) }, CouponSpec{}, "amount_cents"},
		{"negative amount", func(in *CouponInput) { in.AmountCents = ptr(int64(-1)) }, CouponSpec{}, "amount_cents"},
		{"huge amount", func(in *CouponInput) { in.AmountCents = ptr(int64(MaxCents + 1)) }, CouponSpec{}, "amount_cents"},
		{"negative min spend", func(in *CouponInput) { in.MinSpendCents = ptr(int64(-1)) }, CouponSpec{}, "min_spend_cents"},
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

func TestValidCouponID(t *testing.T) {
	for id, want := range map[string]bool{
		"c1": true, "reward-O_123": true, strings.Repeat("c", 160): true,
		"": false, strings.Repeat("c", 161): false, "c.1": false, "c 1": false,
	} {
		require.Equal(t, want, ValidCouponID(id), id)
	}
}

func TestDecideReserve(t *testing.T) {
	coupon := func(st CouponState, holder string) *Coupon {
		c := &Coupon{CouponID: "c1", UserID: "u1", AmountCents: 500, MinSpendCents: 2000, State: st}
		if holder != "" {
			c.OrderID = &holder
		}
		return c
	}
	req := events.CouponReserveRequest{OrderID: "O1", UserID: "u1", CouponID: "c1", TotalCents: 2000}
	for _, tc := range []struct {
		name   string
		c      *Coupon
		order  OrderState
		edit   func(r *events.CouponReserveRequest)
		want   Decision
		reason string
	}{
		{"available", coupon(CouponAvailable, ""), "", nil, Reserve, ""},
		{"available, order known", coupon(CouponAvailable, ""), OrderOpen, nil, Reserve, ""},
		{"unknown", nil, "", nil, Refuse, "unknown"},
		{"another user's", coupon(CouponAvailable, ""), "", func(r *events.CouponReserveRequest) { r.UserID = "u2" }, Refuse, "unknown"},
		{"below min spend", coupon(CouponAvailable, ""), "", func(r *events.CouponReserveRequest) { r.TotalCents = 1999 }, Refuse, "minimum"},
		{"locked by this order", coupon(CouponLocked, "O1"), OrderOpen, nil, AlreadyHeld, ""},
		{"used by this order", coupon(CouponUsed, "O1"), OrderPaid, nil, AlreadyHeld, ""},
		{"locked by another", coupon(CouponLocked, "O2"), "", nil, Refuse, "LOCKED"},
		{"used by another", coupon(CouponUsed, "O2"), "", nil, Refuse, "USED"},
		{"revoked", coupon(CouponRevoked, ""), "", nil, Refuse, "REVOKED"},
		{"order closed first", coupon(CouponAvailable, ""), OrderClosed, nil, Refuse, "CLOSED"},
		{"order refunded first", coupon(CouponAvailable, ""), OrderRefunded, nil, Refuse, "REFUNDED"},
		{"order paid", coupon(CouponAvailable, ""), OrderPaid, nil, Refuse, "PAID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			if tc.edit != nil {
				tc.edit(&r)
			}
			got, reason := DecideReserve(tc.c, tc.order, r)
			require.Equal(t, tc.want, got)
			if tc.reason == "" {
				require.Empty(t, reason)
			} else {
				require.Contains(t, reason, tc.reason)
			}
		})
	}
}

func TestTransition(t *testing.T) {
	type out struct {
		to  OrderState
		eff Effects
		ok  bool
	}
	for _, tc := range []struct {
		from OrderState
		ev   Event
		want out
	}{
		{"", EventPaid, out{OrderPaid, Effects{UseLocked: true, IssueReward: true}, true}},
		{OrderOpen, EventPaid, out{OrderPaid, Effects{UseLocked: true, IssueReward: true}, true}},
		{OrderOpen, EventClosed, out{OrderClosed, Effects{ReleaseLocked: true}, true}},
		{"", EventClosed, out{OrderClosed, Effects{ReleaseLocked: true}, true}},
		{OrderOpen, EventRefund, out{OrderRefunded, Effects{ReleaseLocked: true}, true}},
		{OrderPaid, EventRefund, out{OrderRefunded, Effects{ReleaseUsed: true, RevokeReward: true}, true}},
		{OrderPaid, EventPaid, out{OrderPaid, Effects{}, false}},
		{OrderPaid, EventClosed, out{OrderPaid, Effects{}, false}},
		{OrderClosed, EventPaid, out{OrderClosed, Effects{}, false}},
		{OrderClosed, EventClosed, out{OrderClosed, Effects{}, false}},
		{OrderClosed, EventRefund, out{OrderClosed, Effects{}, false}},
		{OrderRefunded, EventPaid, out{OrderRefunded, Effects{}, false}},
		{OrderRefunded, EventRefund, out{OrderRefunded, Effects{}, false}},
		{OrderRefunded, EventClosed, out{OrderRefunded, Effects{}, false}},
	} {
		to, eff, ok := Transition(tc.from, tc.ev)
		require.Equal(t, tc.want, out{to, eff, ok}, "%q on %s", tc.from, tc.ev)
	}
}

func TestCouponSpecSame(t *testing.T) {
	s := CouponSpec{UserID: "u1", AmountCents: 5, MinSpendCents: 10}
	require.True(t, s.Same(Coupon{UserID: "u1", AmountCents: 5, MinSpendCents: 10, State: CouponUsed}))
	require.False(t, s.Same(Coupon{UserID: "u2", AmountCents: 5, MinSpendCents: 10}))
	require.False(t, s.Same(Coupon{UserID: "u1", AmountCents: 6, MinSpendCents: 10}))
	require.False(t, s.Same(Coupon{UserID: "u1", AmountCents: 5, MinSpendCents: 11}))
}
