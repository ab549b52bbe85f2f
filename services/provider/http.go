package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"qianlang.io/services/httpapi"
)

// Headers of the provider's API.
const (
	// IdempotencyKeyHeader makes a call's effect happen once per key and
	// endpoint: a repeated call gets the first call's answer.
	IdempotencyKeyHeader = "Idempotency-Key"
	// ReplayedHeader is "true" on an answer that is a repeated call's
	// stored first answer.
	ReplayedHeader = "Idempotent-Replayed"
)

// api is the provider's HTTP port.
type api struct {
	svc      *Service
	m        *metrics
	stopping <-chan struct{} // closed when the service starts to stop
}

// routes registers every endpoint with handle.
func (a *api) routes(handle func(pattern string, h httpapi.HandlerFunc)) {
	handle("POST /provider/payments", a.call("payments", noFaults, a.openPayment))
	handle("GET /provider/payments/{payment_id}", a.getPayment)
	handle("POST /provider/payments/{payment_id}/confirm", a.call("confirm", noFaults, a.confirm))
	handle("POST /provider/refunds", a.call("refunds", refundFaults, a.refund))
	handle("POST /provider/sms", a.call("sms", smsFaults, a.sms))
	handle("POST /provider/shipments", a.call("shipments", logisticsFaults, a.ship))
	handle("GET /provider/ledger", a.ledger)
	handle("GET /provider/faults", a.getFaults)
	handle("PUT /provider/faults", a.putFaults)
	handle("DELETE /provider/faults", a.resetFaults)
}

// op does a call's work and returns its answer and whether that was a
// stored answer.
type op func(r *http.Request) (answer any, replayed bool, err error)

// call runs fn under the faults of kind: a share of calls fails before
// anything is done (503 or a dropped connection, so a failed call has no
// effect); a call that succeeds is answered after the latency.
func (a *api) call(endpoint string, kind faultKind, fn op) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := a.svc.Faults().of(kind)
		switch roll(p.errorRate) {
		case unavailable:
			a.m.call(endpoint, outcomeInjectedError)
			return httpapi.Unavailable("injected fault: %s is unavailable", endpoint)
		case dropped:
			a.m.call(endpoint, outcomeDropped)
			drop(w)
			return nil
		}
		ans, replayed, err := fn(r)
		if err != nil {
			err = toHTTP(err)
			a.m.call(endpoint, outcomeOf(err))
			return err
		}
		a.wait(r.Context(), p.latency)
		outcome := outcomeOK
		if replayed {
			outcome = outcomeReplayed
			w.Header().Set(ReplayedHeader, "true")
		}
		a.m.call(endpoint, outcome)
		httpapi.WriteJSON(w, http.StatusOK, ans)
		return nil
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection unanswered
	}
	_ = conn.Close()
}

// wait sleeps d, less if the client leaves or the service stops.
func (a *api) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-a.stopping:
	}
}

func (a *api) openPayment(r *http.Request) (any, bool, error) {
	key, err := idemKey(r, false)
	if err != nil {
		return nil, false, err
	}
	req, err := decodeValid[PaymentRequest](r)
	if err != nil {
		return nil, false, err
	}
	return answer(a.svc.OpenPayment(r.Context(), key, req))
}

func (a *api) confirm(r *http.Request) (any, bool, error) {
	ans, err := a.svc.Confirm(r.Context(), r.PathValue("payment_id"))
	return ans, false, err
}

func (a *api) refund(r *http.Request) (any, bool, error) {
	key, err := idemKey(r, true)
	if err != nil {
		return nil, false, err
	}
	req, err := decodeValid[RefundRequest](r)
	if err != nil {
		return nil, false, err
	}
	return answer(a.svc.Refund(r.Context(), key, req))
}

func (a *api) sms(r *http.Request) (any, bool, error) {
	key, err := idemKey(r, true)
	if err != nil {
		return nil, false, err
	}
	req, err := decodeValid[SMSRequest](r)
	if err != nil {
		return nil, false, err
	}
	return answer(a.svc.SendSMS(r.Context(), key, req))
}

func (a *api) ship(r *http.Request) (any, bool, error) {
	key, err := idemKey(r, true)
	if err != nil {
		return nil, false, err
	}
	req, err := decodeValid[ShipmentRequest](r)
	if err != nil {
		return nil, false, err
	}
	return answer(a.svc.Ship(r.Context(), key, req))
}

func (a *api) getPayment(w http.ResponseWriter, r *http.Request) error {
	p, err := a.svc.Payment(r.Context(), r.PathValue("payment_id"))
	if err != nil {
		return toHTTP(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (a *api) ledger(w http.ResponseWriter, r *http.Request) error {
	l, err := a.svc.Ledger(r.Context(), r.URL.Query().Get("order_id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, l)
	return nil
}

func (a *api) getFaults(w http.ResponseWriter, r *http.Request) error {
	httpapi.WriteJSON(w, http.StatusOK, a.svc.Faults())
	return nil
}

func (a *api) putFaults(w http.ResponseWriter, r *http.Request) error {
	var patch map[string]json.RawMessage
	if err := httpapi.Decode(r, &patch); err != nil {
		return err
	}
	if patch == nil {
		return httpapi.BadRequest("the body must be a JSON object of fault keys")
	}
	f, err := a.svc.SetFaults(r.Context(), patch)
	if err != nil {
		return toHTTP(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, f)
	return nil
}

func (a *api) resetFaults(w http.ResponseWriter, r *http.Request) error {
	f, err := a.svc.ResetFaults(r.Context())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, f)
	return nil
}

func answer[T any](v T, replayed bool, err error) (any, bool, error) { return v, replayed, err }

// idemKey reads the Idempotency-Key header, at most 191 bytes.
func idemKey(r *http.Request, required bool) (string, error) {
	key := r.Header.Get(IdempotencyKeyHeader)
	switch {
	case key == "" && required:
		return "", httpapi.BadRequest("%s header: required", IdempotencyKeyHeader)
	case len(key) > maxIdemKey:
		return "", httpapi.BadRequest("%s header: longer than %d bytes", IdempotencyKeyHeader, maxIdemKey)
	}
	return key, nil
}

// decodeValid decodes r's body as a T and checks it.
func decodeValid[T interface{ Validate() error }](r *http.Request) (T, error) {
	var v T
	if err := httpapi.Decode(r, &v); err != nil {
		return v, err
	}
	if err := v.Validate(); err != nil {
		return v, httpapi.BadRequest("%v", err)
	}
	return v, nil
}

// toHTTP maps domain errors to the contract's answers.
func toHTTP(err error) error {
	var invalid *InvalidError
	switch {
	case errors.As(err, new(*httpapi.Error)):
		return err
	case errors.As(err, &invalid):
		return httpapi.BadRequest("%v", invalid.Err)
	case errors.Is(err, ErrNotFound):
		return httpapi.NotFound("%v", err)
	case errors.Is(err, ErrRefundExceeds):
		return httpapi.Conflict("REFUND_EXCEEDS_PAYMENT", "%v", err)
	case errors.Is(err, ErrNotPaid):
		return httpapi.Conflict("PAYMENT_NOT_PAID", "%v", err)
	}
	return err
}

func outcomeOf(err error) string {
	var e *httpapi.Error
	if errors.As(err, &e) && e.Status < 500 {
		return outcomeRejected
	}
	return outcomeError
}
