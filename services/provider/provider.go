// Package provider is the third party the order platform pays, refunds,
// texts and ships through: a simulator of a payment provider, an SMS
// gateway and a carrier, with its own database (the platform-contract's
// §3). Its ledger is the truth the invariants are checked against: money
// and messages that really left the platform.
//
// Layers: domain.go (requests, answers, rules), faults.go (the injectable
// misbehaviour), service.go (use cases), store.go (MariaDB through gorm),
// outbox.go (the durable callback worker), http.go (the HTTP port).
//
// What it promises the platform:
//   - An Idempotency-Key makes a call's effect happen once per key and
//     endpoint, even for identical calls racing: the key's row is inserted
//     first in the effect's transaction, so the second call waits on the
//     unique key and then gets the first call's stored answer (with header
//     Idempotent-Replayed: true), whatever its own body. Only successful
//     answers are stored; a refused call (4xx) may be repeated.
//   - A refund is recorded only when made, and refunds of a payment never
//     exceed it.
//   - Callbacks (payment notifications, delivery callbacks) are written in
//     the transaction of what they report and POSTed, signed, until the
//     platform answers 2xx, across restarts.
//   - Faults (PUT /provider/faults) persist across restarts. A call failed
//     by a fault has no effect; its latency is added to calls that succeed.
package provider

import (
	"context"

	"qianlang.io/services/daemon"
)

// Setup builds the provider on s: routes, and the callback worker, which
// stops at shutdown.
func Setup(ctx context.Context, s *daemon.Service) error {
	m := newMetrics(s.Registry)
	svc, err := NewService(ctx, s.DB, s.Log, s.Secrets.ProviderSecret, m)
	if err != nil {
		return err
	}
	svc.Start(ctx)
	s.OnClose(svc.Close)
	a := &api{svc: svc, m: m, stopping: ctx.Done()}
	a.routes(s.Handle)
	return nil
}
