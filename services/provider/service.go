package provider

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Idempotency scopes: a key is unique per endpoint.
const (
	endpointPayments  = "payments"
	endpointRefunds   = "refunds"
	endpointSMS       = "sms"
	endpointShipments = "shipments"
)

// Service is the provider's use cases, independent of HTTP.
type Service struct {
	store  *store
	outbox *outbox
	log    *slog.Logger

	faultsMu sync.Mutex // serialises changes to faults
	faults   atomic.Pointer[Faults]
}

// NewService reads the persisted faults and prepares the callback outbox
// (not yet started).
func NewService(ctx context.Context, db *gorm.DB, log *slog.Logger, secret string, m *metrics) (*Service, error) {
	s := &Service{store: &store{db: db}, log: log}
	f, err := s.store.loadFaults(ctx)
	if err != nil {
		return nil, err
	}
	s.faults.Store(&f)
	s.outbox = newOutbox(s.store, secret, log, m)
	return s, nil
}

// Faults returns the faults in force.
func (s *Service) Faults() Faults { return *s.faults.Load() }

// SetFaults applies patch to the faults in force, persists them and
// returns them; a bad patch changes nothing.
func (s *Service) SetFaults(ctx context.Context, patch map[string]json.RawMessage) (Faults, error) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f, err := s.Faults().Apply(patch)
	if err != nil {
		return s.Faults(), &InvalidError{Err: err}
	}
	return f, s.replaceFaults(ctx, f)
}

// ResetFaults restores the defaults.
func (s *Service) ResetFaults(ctx context.Context) (Faults, error) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f := DefaultFaults()
	return f, s.replaceFaults(ctx, f)
}

func (s *Service) replaceFaults(ctx context.Context, f Faults) error {
	if err := s.store.saveFaults(ctx, f); err != nil {
		return err
	}
	s.faults.Store(&f)
	s.log.Info("faults set", "faults", f)
	return nil
}

// OpenPayment opens a payment for the user to pay; with a key, once per key.
func (s *Service) OpenPayment(ctx context.Context, key string, req PaymentRequest) (PaymentAnswer, bool, error) {
	return once(ctx, s.store, endpointPayments, key, func(tx *gorm.DB) (PaymentAnswer, error) {
		p := paymentRow{PaymentID: newID("pay_"), OrderID: req.OrderID, UserID: req.UserID, Cents: req.Cents,
			NotifyURL: req.NotifyURL, State: PaymentOpen, CreatedAt: now()}
		return PaymentAnswer{PaymentID: p.PaymentID}, createPayment(tx, p)
	})
}

// Payment returns one payment.
func (s *Service) Payment(ctx context.Context, id string) (Payment, error) {
	p, err := payment(s.store.db.WithContext(ctx), id)
	if err != nil {
		return Payment{}, err
	}
	return Payment{PaymentID: p.PaymentID, OrderID: p.OrderID, UserID: p.UserID, Cents: p.Cents,
		RefundedCents: p.RefundedCents, State: p.State, CreatedAt: p.CreatedAt.UTC(), PaidAt: utcPtr(p.PaidAt)}, nil
}

// Confirm is the user paying: the payment becomes PAID and its
// notification is queued in the same transaction (twice at the duplicate
// rate). Confirming a paid payment changes nothing and answers the same.
func (s *Service) Confirm(ctx context.Context, id string) (ConfirmAnswer, error) {
	copies := s.Faults().copies()
	var queued bool
	err := s.store.transact(ctx, func(tx *gorm.DB) error {
		p, changed, err := markPaid(tx, id, now())
		if err != nil || !changed {
			return err
		}
		body, err := json.Marshal(PaymentNotification{PaymentID: p.PaymentID, OrderID: p.OrderID, Cents: p.Cents, PaidAt: stamp(*p.PaidAt)})
		if err != nil {
			return err
		}
		queued = true
		return enqueue(tx, kindPayment, p.PaymentID, p.NotifyURL, body, *p.PaidAt, copies)
	})
	if err != nil {
		return ConfirmAnswer{}, err
	}
	if queued {
		s.outbox.wake()
	}
	return ConfirmAnswer{PaymentID: id, State: PaymentPaid}, nil
}

// Refund returns cents of a paid payment, once per key. It is recorded
// only when made; it fails with ErrNotFound, ErrNotPaid or
// ErrRefundExceeds (refunds never exceed the payment).
func (s *Service) Refund(ctx context.Context, key string, req RefundRequest) (RefundAnswer, bool, error) {
	return once(ctx, s.store, endpointRefunds, key, func(tx *gorm.DB) (RefundAnswer, error) {
		p, err := takeRefund(tx, req.PaymentID, req.Cents)
		if err != nil {
			return RefundAnswer{}, err
		}
		r := refundRow{RefundID: newID("ref_"), PaymentID: p.PaymentID, OrderID: p.OrderID, Cents: req.Cents, CreatedAt: now()}
		return RefundAnswer{RefundID: r.RefundID, State: RefundRefunded, PaymentID: r.PaymentID, Cents: r.Cents}, insert(tx, "refund", &r)
	})
}

// SendSMS sends a text message, once per key.
func (s *Service) SendSMS(ctx context.Context, key string, req SMSRequest) (SMSAnswer, bool, error) {
	return once(ctx, s.store, endpointSMS, key, func(tx *gorm.DB) (SMSAnswer, error) {
		m := smsRow{SMSID: newID("sms_"), UserID: req.UserID, OrderID: req.OrderID, Kind: req.Kind, Text: req.Text, CreatedAt: now()}
		return SMSAnswer{SMSID: m.SMSID}, insert(tx, "sms", &m)
	})
}

// Ship hands a parcel to a carrier, once per key; delivery_ms later the
// carrier delivers it and its callback is due (twice at the duplicate rate).
func (s *Service) Ship(ctx context.Context, key string, req ShipmentRequest) (ShipmentAnswer, bool, error) {
	f := s.Faults()
	copies := f.copies()
	return once(ctx, s.store, endpointShipments, key, func(tx *gorm.DB) (ShipmentAnswer, error) {
		carrier, tracking := newTracking()
		created := now()
		sh := shipmentRow{TrackingNo: tracking, OrderID: req.OrderID, Carrier: carrier, Address: string(req.Address),
			CallbackURL: req.CallbackURL, CreatedAt: created, DeliveredAt: created.Add(ms(f.DeliveryMS))}
		ans := ShipmentAnswer{TrackingNo: tracking, Carrier: carrier}
		if err := insert(tx, "shipment", &sh); err != nil {
			return ans, err
		}
		body, err := json.Marshal(DeliveryCallback{OrderID: sh.OrderID, TrackingNo: tracking, Carrier: carrier, DeliveredAt: stamp(sh.DeliveredAt)})
		if err != nil {
			return ans, err
		}
		return ans, enqueue(tx, kindDelivery, tracking, sh.CallbackURL, body, sh.DeliveredAt, copies)
	})
}

// Ledger returns what left for orderID (every order when empty).
func (s *Service) Ledger(ctx context.Context, orderID string) (Ledger, error) {
	return s.store.ledger(ctx, orderID)
}

// Start starts delivering callbacks until ctx ends or Close.
func (s *Service) Start(ctx context.Context) { s.outbox.start(ctx) }

// Close stops delivering callbacks and waits for deliveries under way.
func (s *Service) Close() error {
	s.outbox.stop()
	return nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
