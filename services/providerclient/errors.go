package providerclient

import (
	"errors"
	"fmt"
	"net/http"
)

var (
	// ErrUnavailable matches a call whose outcome is unknown or that
	// failed on the provider's side: no answer in time, a dropped
	// connection, a 5xx, 408, 429 or a malformed 200. Retry it with the
	// same idempotency key.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRefused matches a definite no from the provider (a 4xx other
	// than 408 and 429: 400, 404, 409, …): nothing was applied and the
	// same request will be refused again, so do not retry it.
	ErrRefused = errors.New("provider refused")
)

// Error is a provider call that did not succeed. errors.Is(err,
// ErrUnavailable) or errors.Is(err, ErrRefused) tells which kind it is.
type Error struct {
	Call    string // CallSendSMS, …
	Key     string // the idempotency key
	Status  int    // the HTTP status; 0 when no answer came
	Code    string // the provider's error code, when it sent one
	Message string // the provider's error message, when it sent one
	Err     error  // the transport's or decoder's error, if any
	refused bool
}

func (e *Error) Error() string {
	kind := "unavailable"
	if e.refused {
		kind = "refused"
	}
	msg := fmt.Sprintf("provider %s (key %s): %s", e.Call, e.Key, kind)
	if e.Status != 0 {
		msg += fmt.Sprintf(": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Refused reports whether the provider definitely refused the call.
func (e *Error) Refused() bool { return e.refused }

// Is matches ErrRefused or ErrUnavailable.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRefused:
		return e.refused
	case ErrUnavailable:
		return !e.refused
	}
	return false
}

// Unwrap returns the underlying transport or decoding error.
func (e *Error) Unwrap() error { return e.Err }

// IsRefused reports whether err is (or wraps) a refusal by the provider.
func IsRefused(err error) bool { return errors.Is(err, ErrRefused) }

// Retryable reports whether a call that returned err may be retried with
// the same key: any error but a refusal (an unknown outcome, a canceled
// context or an error from outside this package all qualify).
func Retryable(err error) bool { return err != nil && !IsRefused(err) }

// outcome is the metrics label of err.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case IsRefused(err):
		return "refused"
	default:
		return "unavailable"
	}
}
