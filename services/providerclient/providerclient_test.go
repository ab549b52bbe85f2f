package providerclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/providerclient/providertest"
)

func newClient(t *testing.T, url string, o providerclient.Options) *providerclient.Client {
	t.Helper()
	o.BaseURL = url
	c, err := providerclient.New(o)
	require.NoError(t, err)
	return c
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    providerclient.Options
		ok   bool
	}{
		{"http", providerclient.Options{BaseURL: "http://127.0.0.1:9000"}, true},
		{"trailing slash", providerclient.Options{BaseURL: "https://p.example/"}, true},
		{"empty", providerclient.Options{}, false},
		{"no scheme", providerclient.Options{BaseURL: "127.0.0.1:9000"}, false},
		{"ftp", providerclient.Options{BaseURL: "ftp://h:1"}, false},
		{"query", providerclient.Options{BaseURL: "http://h:1/?a=b"}, false},
		{"negative timeout", providerclient.Options{BaseURL: "http://h:1", Timeout: -1}, false},
		{"negative retries", providerclient.Options{BaseURL: "http://h:1", Retries: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := providerclient.New(tc.o)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// Every call posts JSON with the Idempotency-Key header, and the same key
// gets the same answer without a second effect.
func TestCallsSendIdempotencyKey(t *testing.T) {
	p := providertest.New(t)
	c := newClient(t, p.URL, providerclient.Options{})
	ctx := context.Background()

	pay, err := c.OpenPayment(ctx, "pay-O1", providerclient.PaymentRequest{OrderID: "O1", UserID: "u1", Cents: 1000, NotifyURL: "http://x/cb"})
	require.NoError(t, err)
	again, err := c.OpenPayment(ctx, "pay-O1", providerclient.PaymentRequest{OrderID: "O1", UserID: "u1", Cents: 1000, NotifyURL: "http://x/cb"})
	require.NoError(t, err)
	require.Equal(t, pay, again)
	require.Len(t, p.Payments("O1"), 1)
	require.Equal(t, "pay-O1", p.Payments("O1")[0].Key)

	ref, err := c.Refund(ctx, "R1", providerclient.RefundRequest{PaymentID: pay.PaymentID, Cents: 1000})
	require.NoError(t, err)
	require.Equal(t, "REFUNDED", ref.State)
	again2, err := c.Refund(ctx, "R1", providerclient.RefundRequest{PaymentID: pay.PaymentID, Cents: 1000})
	require.NoError(t, err)
	require.Equal(t, ref, again2)
	require.Len(t, p.Refunds(pay.PaymentID), 1)

	sms, err := c.SendSMS(ctx, "O1:ORDER_PAID", providerclient.SMSRequest{UserID: "u1", OrderID: "O1", Kind: "ORDER_PAID", Text: "paid"})
	require.NoError(t, err)
	require.NotEmpty(t, sms.SMSID)
	require.Equal(t, "O1:ORDER_PAID", p.SMS("O1")[0].Key)

	sh, err := c.CreateShipment(ctx, "O1", providerclient.ShipmentRequest{OrderID: "O1", Address: events.Address{Name: "A", Phone: "1", Line: "L"}, CallbackURL: "http://x/callbacks/delivery"})
	require.NoError(t, err)
	require.NotEmpty(t, sh.TrackingNo)
	require.NotEmpty(t, sh.Carrier)
	require.Equal(t, "A", p.Shipments("O1")[0].Req.Address.Name)

	_, err = c.SendSMS(ctx, "", providerclient.SMSRequest{UserID: "u1", Text: "x"})
	require.Error(t, err)
}

// A raw check of the request the client sends.
func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		_, _ = w.Write([]byte(`{"sms_id":"S1"}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/", providerclient.Options{})
	_, err := c.SendSMS(context.Background(), "k1", providerclient.SMSRequest{UserID: "u1", OrderID: "O1", Kind: "ORDER_PAID", Text: "hi"})
	require.NoError(t, err)
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/provider/sms", got.URL.Path)
	require.Equal(t, "k1", got.Header.Get("Idempotency-Key"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.JSONEq(t, `{"user_id":"u1","order_id":"O1","kind":"ORDER_PAID","text":"hi"}`, body)
}

// Which failures are refusals (do not retry) and which are unknown
// outcomes (retry with the same key).
func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		refused bool
		code    string
	}{
		{500, `{"error":{"code":"INTERNAL","message":"boom"}}`, false, "INTERNAL"},
		{502, `bad gateway`, false, ""},
		{503, ``, false, ""},
		{408, ``, false, ""},
		{429, ``, false, ""},
		{400, `{"error":{"code":"BAD_REQUEST","message":"no"}}`, true, "BAD_REQUEST"},
		{404, `{"error":{"code":"NOT_FOUND","message":"unknown payment"}}`, true, "NOT_FOUND"},
		{409, `{"error":{"code":"REFUND_EXCEEDS_PAYMENT","message":"too much"}}`, true, "REFUND_EXCEEDS_PAYMENT"},
		{200, `{"refund_id":""}`, false, ""}, // a 200 without its id is not a result
		{200, `not json`, false, ""},
	} {
		t.Run(http.StatusText(tc.status)+"/"+tc.body, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := newClient(t, srv.URL, providerclient.Options{})
			_, err := c.Refund(context.Background(), "R1", providerclient.RefundRequest{PaymentID: "P1", Cents: 1})
			require.Error(t, err)
			require.Equal(t, tc.refused, providerclient.IsRefused(err), err)
			require.Equal(t, tc.refused, errors.Is(err, providerclient.ErrRefused))
			require.Equal(t, !tc.refused, errors.Is(err, providerclient.ErrUnavailable))
			require.Equal(t, !tc.refused, providerclient.Retryable(err))
			var pe *providerclient.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.status, pe.Status)
			require.Equal(t, tc.code, pe.Code)
			require.Equal(t, providerclient.CallRefund, pe.Call)
			require.Equal(t, "R1", pe.Key)
		})
	}
}

// The fake's own refusals come through as refusals with their codes.
func TestRefundRefusals(t *testing.T) {
	p := providertest.New(t)
	c := newClient(t, p.URL, providerclient.Options{Retries: 3, Backoff: time.Millisecond})
	ctx := context.Background()
	_, err := c.Refund(ctx, "R0", providerclient.RefundRequest{PaymentID: "nope", Cents: 1})
	require.True(t, providerclient.IsRefused(err))
	require.Equal(t, 1, p.Attempts(providerclient.PathRefunds), "a refusal is not retried")

	pay, err := c.OpenPayment(ctx, "pay", providerclient.PaymentRequest{OrderID: "O2", UserID: "u", Cents: 100, NotifyURL: "http://x"})
	require.NoError(t, err)
	_, err = c.Refund(ctx, "R1", providerclient.RefundRequest{PaymentID: pay.PaymentID, Cents: 100})
	require.NoError(t, err)
	_, err = c.Refund(ctx, "R2", providerclient.RefundRequest{PaymentID: pay.PaymentID, Cents: 1})
	var pe *providerclient.Error
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Refused())
	require.Equal(t, http.StatusConflict, pe.Status)
	require.Equal(t, providerclient.CodeRefundExceedsPayment, pe.Code)
}

// Unknown outcomes are retried with the same key: a 500, a connection
// dropped before the call applied, and one dropped after it applied all
// end in exactly one effect.
func TestRetriesKeepOneEffect(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode providertest.Mode
	}{{"500", providertest.Status500}, {"drop before", providertest.DropBefore}, {"drop after", providertest.DropAfter}} {
		t.Run(tc.name, func(t *testing.T) {
			p := providertest.New(t)
			reg := prometheus.NewRegistry()
			m := providerclient.NewMetrics(reg)
			c := newClient(t, p.URL, providerclient.Options{Retries: 3, Backoff: time.Millisecond, Metrics: m})
			p.Fail(providerclient.PathSMS, 3, tc.mode)
			sms, err := c.SendSMS(context.Background(), "O1:ORDER_PAID", providerclient.SMSRequest{UserID: "u1", OrderID: "O1", Kind: "ORDER_PAID", Text: "paid"})
			require.NoError(t, err)
			require.Len(t, p.SMS("O1"), 1)
			require.Equal(t, p.SMS("O1")[0].Key, "O1:ORDER_PAID")
			require.NotEmpty(t, sms.SMSID)
			require.Equal(t, 4, p.Attempts(providerclient.PathSMS))
			require.Equal(t, 1.0, counter(t, reg, providerclient.CallSendSMS, "ok"))
		})
	}
}

// counter reads qianlang_provider_calls_total{call, outcome} from reg.
func counter(t *testing.T, reg *prometheus.Registry, call, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "qianlang_provider_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["call"] == call && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Without retries the first failure is returned as an unknown outcome and
// counted.
func TestNoRetriesReturnsFirstFailure(t *testing.T) {
	p := providertest.New(t)
	reg := prometheus.NewRegistry()
	c := newClient(t, p.URL, providerclient.Options{Metrics: providerclient.NewMetrics(reg)})
	p.Fail(providerclient.PathShipments, 1, providertest.Status500)
	_, err := c.CreateShipment(context.Background(), "O1", providerclient.ShipmentRequest{OrderID: "O1", CallbackURL: "http://x"})
	require.ErrorIs(t, err, providerclient.ErrUnavailable)
	require.Empty(t, p.Shipments("O1"))
	require.Equal(t, 1.0, counter(t, reg, providerclient.CallCreateShipment, "unavailable"))

	p.Fail(providerclient.PathShipments, 1, providertest.Status409)
	_, err = c.CreateShipment(context.Background(), "O1", providerclient.ShipmentRequest{OrderID: "O1", CallbackURL: "http://x"})
	require.ErrorIs(t, err, providerclient.ErrRefused)
	require.Equal(t, 1.0, counter(t, reg, providerclient.CallCreateShipment, "refused"))

	_, err = c.CreateShipment(context.Background(), "O1", providerclient.ShipmentRequest{OrderID: "O1", CallbackURL: "http://x"})
	require.NoError(t, err)
	require.Len(t, p.Shipments("O1"), 1)
}

// A slow provider is cut off by the per-attempt timeout: an unknown
// outcome, retried; the parent context's end stops the retries.
func TestTimeout(t *testing.T) {
	p := providertest.New(t)
	p.SetLatency(300 * time.Millisecond)
	c := newClient(t, p.URL, providerclient.Options{Timeout: 50 * time.Millisecond})
	start := time.Now()
	_, err := c.SendSMS(context.Background(), "k", providerclient.SMSRequest{UserID: "u", OrderID: "O", Kind: "K", Text: "t"})
	require.ErrorIs(t, err, providerclient.ErrUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 250*time.Millisecond)

	c = newClient(t, p.URL, providerclient.Options{Timeout: 50 * time.Millisecond, Retries: 100, Backoff: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.SendSMS(ctx, "k", providerclient.SMSRequest{UserID: "u", OrderID: "O", Kind: "K", Text: "t"})
	require.True(t, providerclient.Retryable(err))
	require.Less(t, time.Since(start), time.Second)

	// Once the provider is fast again the same key gives one text, however
	// many of the slow attempts it applied.
	p.SetLatency(0)
	c = newClient(t, p.URL, providerclient.Options{})
	_, err = c.SendSMS(context.Background(), "k", providerclient.SMSRequest{UserID: "u", OrderID: "O", Kind: "K", Text: "t"})
	require.NoError(t, err)
	require.Len(t, p.SMS("O"), 1)
}
