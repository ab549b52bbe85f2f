// Package providertest is a fake of the provider's HTTP API for tests:
// payments, refunds, SMS and shipments with idempotency keys (the same key
// answers the same result and applies nothing twice), and faults injected
// per endpoint or per key: a 500, a dropped connection before the call is
// applied, or one dropped after it was applied.
package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"qianlang.io/services/providerclient"
)

// Mode is how an injected fault fails a call.
type Mode int

const (
	// Status500 answers 500 and applies nothing.
	Status500 Mode = iota
	// DropBefore drops the connection without applying the call.
	DropBefore
	// DropAfter applies the call, then drops the connection before
	// answering: the caller cannot tell it happened.
	DropAfter
	// Status409 answers 409 CONFLICT and applies nothing (a refusal).
	Status409
)

// Call is one applied call, with the key it was applied under.
type Call[T any] struct {
	Key string
	Req T
	At  time.Time
}

type fault struct {
	path, key string // key "" matches any
	left      int
	mode      Mode
}

// Server is a running fake provider.
type Server struct {
	URL string

	mu        sync.Mutex
	srv       *httptest.Server
	results   map[string][]byte // path + "\x00" + key → the 200 answer
	attempts  map[string]int    // path → requests received
	faults    []*fault
	latency   time.Duration
	seq       int
	payments  []Call[providerclient.PaymentRequest]
	paymentID map[string]int64 // payment id → cents
	refunded  map[string]int64 // payment id → cents refunded
	refunds   []Call[providerclient.RefundRequest]
	sms       []Call[providerclient.SMSRequest]
	shipments []Call[providerclient.ShipmentRequest]
}

// New starts a fake provider, stopped when the test ends.
func New(t testing.TB) *Server {
	s := &Server{results: map[string][]byte{}, attempts: map[string]int{}, paymentID: map[string]int64{}, refunded: map[string]int64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+providerclient.PathPayments, s.handle(providerclient.PathPayments, s.payment))
	mux.HandleFunc("POST "+providerclient.PathRefunds, s.handle(providerclient.PathRefunds, s.refund))
	mux.HandleFunc("POST "+providerclient.PathSMS, s.handle(providerclient.PathSMS, s.sendSMS))
	mux.HandleFunc("POST "+providerclient.PathShipments, s.handle(providerclient.PathShipments, s.shipment))
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Fail makes the next n calls of path (providerclient.PathSMS, …) fail
// with mode.
func (s *Server) Fail(path string, n int, mode Mode) { s.FailKey(path, "", n, mode) }

// FailKey makes the next n calls of path with idempotency key key fail
// with mode.
func (s *Server) FailKey(path, key string, n int, mode Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{path: path, key: key, left: n, mode: mode})
}

// Heal drops every fault set with Fail or FailKey.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Attempts returns how many requests path received, faults included.
func (s *Server) Attempts(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[path]
}

// SMS returns the texts applied for orderID ("" for all).
func (s *Server) SMS(orderID string) []Call[providerclient.SMSRequest] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filter(s.sms, func(r providerclient.SMSRequest) bool { return orderID == "" || r.OrderID == orderID })
}

// Shipments returns the shipments applied for orderID ("" for all).
func (s *Server) Shipments(orderID string) []Call[providerclient.ShipmentRequest] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filter(s.shipments, func(r providerclient.ShipmentRequest) bool { return orderID == "" || r.OrderID == orderID })
}

// Payments returns the payments opened for orderID ("" for all).
func (s *Server) Payments(orderID string) []Call[providerclient.PaymentRequest] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filter(s.payments, func(r providerclient.PaymentRequest) bool { return orderID == "" || r.OrderID == orderID })
}

// Refunds returns the refunds made of paymentID ("" for all).
func (s *Server) Refunds(paymentID string) []Call[providerclient.RefundRequest] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filter(s.refunds, func(r providerclient.RefundRequest) bool { return paymentID == "" || r.PaymentID == paymentID })
}

func filter[T any](calls []Call[T], keep func(T) bool) []Call[T] {
	var out []Call[T]
	for _, c := range calls {
		if keep(c.Req) {
			out = append(out, c)
		}
	}
	return out
}

// takeFault returns the fault that applies to a call, consuming one use.
func (s *Server) takeFault(path, key string) (Mode, bool) {
	for i, f := range s.faults {
		if f.path == path && (f.key == "" || f.key == key) {
			f.left--
			if f.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
			return f.mode, true
		}
	}
	return 0, false
}

// apply runs one call under s.mu: it returns the answer's status and body.
type apply func(key string, body []byte, now time.Time) (int, any)

func (s *Server) handle(path string, fn apply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, errBody("BAD_REQUEST", err.Error()))
			return
		}
		key := r.Header.Get(providerclient.IdempotencyHeader)
		if key == "" {
			writeJSON(w, http.StatusBadRequest, errBody("BAD_REQUEST", "Idempotency-Key required"))
			return
		}
		s.mu.Lock()
		s.attempts[path]++
		latency := s.latency
		mode, faulty := s.takeFault(path, key)
		s.mu.Unlock()
		time.Sleep(latency)
		if faulty && mode != DropAfter {
			switch mode {
			case Status500:
				writeJSON(w, http.StatusInternalServerError, errBody("INTERNAL", "injected fault"))
			case Status409:
				writeJSON(w, http.StatusConflict, errBody("CONFLICT", "injected refusal"))
			default:
				drop(w)
			}
			return
		}
		status, answer := s.applyOnce(path, key, body, fn)
		if faulty {
			drop(w)
			return
		}
		writeJSON(w, status, answer)
	}
}

// applyOnce applies a call once per (path, key); a repeated key gets the
// first 200 answer again.
func (s *Server) applyOnce(path, key string, body []byte, fn apply) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rk := path + "\x00" + key
	if prev, ok := s.results[rk]; ok {
		return http.StatusOK, json.RawMessage(prev)
	}
	status, answer := fn(key, body, time.Now().UTC())
	if status == http.StatusOK {
		b, _ := json.Marshal(answer)
		s.results[rk] = b
	}
	return status, answer
}

func (s *Server) next(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%06d", prefix, s.seq)
}

func (s *Server) payment(key string, body []byte, now time.Time) (int, any) {
	var req providerclient.PaymentRequest
	if err := json.Unmarshal(body, &req); err != nil || req.OrderID == "" || req.Cents <= 0 {
		return http.StatusBadRequest, errBody("BAD_REQUEST", "order_id and cents required")
	}
	id := s.next("P")
	s.paymentID[id] = req.Cents
	s.payments = append(s.payments, Call[providerclient.PaymentRequest]{Key: key, Req: req, At: now})
	return http.StatusOK, providerclient.Payment{PaymentID: id}
}

func (s *Server) refund(key string, body []byte, now time.Time) (int, any) {
	var req providerclient.RefundRequest
	if err := json.Unmarshal(body, &req); err != nil || req.PaymentID == "" || req.Cents <= 0 {
		return http.StatusBadRequest, errBody("BAD_REQUEST", "payment_id and cents required")
	}
	paid, ok := s.paymentID[req.PaymentID]
	if !ok {
		return http.StatusNotFound, errBody("NOT_FOUND", "unknown payment")
	}
	if s.refunded[req.PaymentID]+req.Cents > paid {
		return http.StatusConflict, errBody(providerclient.CodeRefundExceedsPayment, "refunds would exceed the payment")
	}
	s.refunded[req.PaymentID] += req.Cents
	s.refunds = append(s.refunds, Call[providerclient.RefundRequest]{Key: key, Req: req, At: now})
	return http.StatusOK, providerclient.Refund{RefundID: s.next("R"), State: "REFUNDED"}
}

func (s *Server) sendSMS(key string, body []byte, now time.Time) (int, any) {
	var req providerclient.SMSRequest
	if err := json.Unmarshal(body, &req); err != nil || req.UserID == "" || req.Text == "" {
		return http.StatusBadRequest, errBody("BAD_REQUEST", "user_id and text required")
	}
	s.sms = append(s.sms, Call[providerclient.SMSRequest]{Key: key, Req: req, At: now})
	return http.StatusOK, providerclient.SMS{SMSID: s.next("S")}
}

func (s *Server) shipment(key string, body []byte, now time.Time) (int, any) {
	var req providerclient.ShipmentRequest
	if err := json.Unmarshal(body, &req); err != nil || req.OrderID == "" || req.CallbackURL == "" {
		return http.StatusBadRequest, errBody("BAD_REQUEST", "order_id and callback_url required")
	}
	s.shipments = append(s.shipments, Call[providerclient.ShipmentRequest]{Key: key, Req: req, At: now})
	return http.StatusOK, providerclient.Shipment{TrackingNo: s.next("T"), Carrier: "FAKE-EXPRESS"}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errBody(code, msg string) errorBody {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
