package order

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
)

func validInput() PlaceInput {
	return PlaceInput{UserID: "u1", IdemKey: "k1", Items: []ItemInput{{SKUID: "sku-a", Qty: 2}},
		Address: &Address{Name: "Li", Phone: "138", Line: "1 Road"}}
}

func TestPlaceInputValidate(t *testing.T) {
	many := make([]ItemInput, MaxLines+1)
	for i := range many {
		many[i] = ItemInput{SKUID: "s", Qty: 1}
	}
	fifty := many[:MaxLines]
	for _, tc := range []struct {
		name   string
		change func(*PlaceInput)
		bad    string // "" for valid
	}{
		{"valid", func(*PlaceInput) {}, ""},
		{"fifty lines", func(in *PlaceInput) { in.Items = fifty }, ""},
		{"qty 99", func(in *PlaceInput) { in.Items[0].Qty = 99 }, ""},
		{"key of 128", func(in *PlaceInput) { in.IdemKey = strings.Repeat("k", 128) }, ""},
		{"no key", func(in *PlaceInput) { in.IdemKey = "" }, "Idempotency-Key"},
		{"key of 129", func(in *PlaceInput) { in.IdemKey = strings.Repeat("k", 129) }, "Idempotency-Key"},
		{"no lines", func(in *PlaceInput) { in.Items = nil }, "at least one"},
		{"51 lines", func(in *PlaceInput) { in.Items = many }, "at most 50"},
		{"qty 0", func(in *PlaceInput) { in.Items[0].Qty = 0 }, "qty"},
		{"qty -1", func(in *PlaceInput) { in.Items[0].Qty = -1 }, "qty"},
		{"qty 100", func(in *PlaceInput) { in.Items[0].Qty = 100 }, "qty"},
		{"no sku", func(in *PlaceInput) { in.Items[0].SKUID = " " }, "sku_id"},
		{"long sku", func(in *PlaceInput) { in.Items[0].SKUID = strings.Repeat("s", 65) }, "sku_id"},
		{"no address", func(in *PlaceInput) { in.Address = nil }, "address"},
		{"no name", func(in *PlaceInput) { in.Address.Name = "" }, "address.name"},
		{"no phone", func(in *PlaceInput) { in.Address.Phone = "  " }, "address.phone"},
		{"no line", func(in *PlaceInput) { in.Address.Line = "" }, "address.line"},
		{"long coupon", func(in *PlaceInput) { in.CouponID = strings.Repeat("c", 129) }, "coupon_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := validInput()
			tc.change(&in)
			err := in.Validate()
			if tc.bad == "" {
				require.NoError(t, err)
				return
			}
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			require.Contains(t, inv.Msg, tc.bad)
		})
	}
}

func TestPriceLines(t *testing.T) {
	req := []events.Line{{SKUID: "a", Qty: 2}, {SKUID: "b", Qty: 1}}
	lines, total, err := priceLines(req, []events.Line{{SKUID: "a", Qty: 2, PriceCents: 100, CostCents: 50}, {SKUID: "b", Qty: 1, PriceCents: 30}})
	require.NoError(t, err)
	require.EqualValues(t, 230, total)
	require.EqualValues(t, 50, lines[0].CostCents)
	_, _, err = priceLines(req, req[:1])
	require.Error(t, err)
	_, _, err = priceLines(req, []events.Line{{SKUID: "a", Qty: 1}, {SKUID: "b", Qty: 1}})
	require.Error(t, err)
}

func TestDiscount(t *testing.T) {
	require.EqualValues(t, 500, discount(500, 2000))
	require.EqualValues(t, 2000, discount(5000, 2000))
	require.EqualValues(t, 0, discount(-1, 2000))
}

func TestDecisions(t *testing.T) {
	for _, tc := range []struct {
		state   State
		started bool
		cancel  cancelAction
		ship    shipAction
		pay     paymentAction
	}{
		{StatePending, false, cancelClose, shipWait, paymentAccept},
		{StatePaid, false, cancelRefund, shipStart, paymentReturn},
		{StatePaid, true, cancelRefuse, shipGo, paymentReturn},
		{StateShipped, true, cancelRefuse, shipGo, paymentReturn},
		{StateCompleted, true, cancelRefuse, shipGo, paymentReturn},
		{StateClosed, false, cancelNothing, shipCancel, paymentReturn},
		{StateRefunding, false, cancelNothing, shipCancel, paymentReturn},
		{StateRefunded, false, cancelNothing, shipCancel, paymentReturn},
	} {
		o := &Order{State: tc.state, ShippingStarted: tc.started, PayCents: 100}
		require.Equal(t, tc.cancel, decideCancel(o), "cancel %s started=%v", tc.state, tc.started)
		require.Equal(t, tc.ship, decideShipment(o), "ship %s started=%v", tc.state, tc.started)
		require.Equal(t, tc.pay, decidePayment(o, 100), "pay %s", tc.state)
	}
	require.Equal(t, paymentReturn, decidePayment(&Order{State: StatePending, PayCents: 100}, 99), "wrong amount")
}

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC), OrderID: "Oabc"}
	got, err := DecodeCursor(EncodeCursor(c))
	require.NoError(t, err)
	require.Equal(t, c, *got)
	for _, bad := range []string{"!!", "bm9waXBl", EncodeCursor(Cursor{})[:2]} {
		_, err := DecodeCursor(bad)
		require.Error(t, err, bad)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int{"": 20, "1": 1, "100": 100} {
		n, err := parseLimit(in)
		require.NoError(t, err)
		require.Equal(t, want, n)
	}
	for _, bad := range []string{"0", "101", "-1", "x", "1.5"} {
		_, err := parseLimit(bad)
		require.Error(t, err, bad)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.ProviderURL, ok.PublicURL = "http://127.0.0.1:9000", "http://127.0.0.1:8081"
	require.NoError(t, ok.Validate())
	require.Equal(t, "http://127.0.0.1:8081/callbacks/payment", ok.NotifyURL())
	for name, change := range map[string]func(*Config){
		"no provider":   func(c *Config) { c.ProviderURL = "" },
		"bad public":    func(c *Config) { c.PublicURL = "ftp://x" },
		"zero timeout":  func(c *Config) { c.OrderTimeout = 0 },
		"zero seckill":  func(c *Config) { c.SeckillOrderRate = 0 },
		"zero requests": func(c *Config) { c.RequestTimeout = 0 },
	} {
		c := ok
		change(&c)
		require.Error(t, c.Validate(), name)
	}
}
