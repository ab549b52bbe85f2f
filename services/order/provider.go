package order

import (
	"context"

	"qianlang.io/services/providerclient"
)

// Provider is the part of the provider's API the order service calls:
// opening a payment and refunding one, each under an idempotency key (the
// same key never has a second effect). *providerclient.Client is one.
type Provider interface {
	OpenPayment(ctx context.Context, key string, req providerclient.PaymentRequest) (providerclient.Payment, error)
	Refund(ctx context.Context, key string, req providerclient.RefundRequest) (providerclient.Refund, error)
}

// splitProvider opens payments and refunds through different clients:
// a user waits for the payment, so its call is retried in place; a refund
// is retried through the queue's redelivery.
type splitProvider struct {
	pay, refund *providerclient.Client
}

func (p splitProvider) OpenPayment(ctx context.Context, key string, req providerclient.PaymentRequest) (providerclient.Payment, error) {
	return p.pay.OpenPayment(ctx, key, req)
}

func (p splitProvider) Refund(ctx context.Context, key string, req providerclient.RefundRequest) (providerclient.Refund, error) {
	return p.refund.Refund(ctx, key, req)
}

// newProvider returns the HTTP client of the provider at baseURL.
func newProvider(baseURL string, m *providerclient.Metrics) (Provider, error) {
	pay, err := providerclient.New(providerclient.Options{BaseURL: baseURL, Retries: 2, Metrics: m})
	if err != nil {
		return nil, err
	}
	refund, err := providerclient.New(providerclient.Options{BaseURL: baseURL, Metrics: m})
	if err != nil {
		return nil, err
	}
	return splitProvider{pay: pay, refund: refund}, nil
}
