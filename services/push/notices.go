package push

import (
	"fmt"

	"qianlang.io/services/events"
)

// The notices of the events, with short texts in plain words. A text
// depends only on its event, so a retried notice sends the same words.

// PaidNotice is the notice of a paid order.
func PaidNotice(ev events.OrderPaid) Notice {
	return Notice{OrderID: ev.OrderID, UserID: ev.UserID, Kind: KindPaid,
		Text: fmt.Sprintf("Qianlang: we received your payment of %s for order %s. Thank you!", money(ev.PayCents), ev.OrderID)}
}

// ShippedNotice is the notice of a shipped order.
func ShippedNotice(ev events.OrderShipped) Notice {
	return Notice{OrderID: ev.OrderID, UserID: ev.UserID, Kind: KindShipped,
		Text: fmt.Sprintf("Qianlang: your order %s has shipped with %s, tracking number %s.", ev.OrderID, ev.Carrier, ev.TrackingNo)}
}

// ClosedNotice is the notice of a closed order; ok is false when the user
// is not told (an order that was never created).
func ClosedNotice(ev events.OrderClosed) (n Notice, ok bool) {
	if !ev.Notify() {
		return Notice{}, false
	}
	text := fmt.Sprintf("Qianlang: your order %s was closed.", ev.OrderID)
	switch ev.Reason {
	case events.CloseCancelled:
		text = fmt.Sprintf("Qianlang: your order %s was cancelled as you asked.", ev.OrderID)
	case events.CloseTimeout:
		text = fmt.Sprintf("Qianlang: your order %s was closed because it was not paid in time.", ev.OrderID)
	}
	return Notice{OrderID: ev.OrderID, UserID: ev.UserID, Kind: KindClosed, Text: text}, true
}

// RefundedNotice is the notice of a refunded order.
func RefundedNotice(ev events.OrderRefunded) Notice {
	return Notice{OrderID: ev.OrderID, UserID: ev.UserID, Kind: KindRefunded,
		Text: fmt.Sprintf("Qianlang: your order %s has been refunded; the money is on its way back to you.", ev.OrderID)}
}

// money formats cents as yuan, e.g. 1234 as "¥12.34".
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, cents/100, cents%100)
}
