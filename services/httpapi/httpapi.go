// Package httpapi writes and reads the platform's JSON over HTTP: bodies
// decoded with limits, answers encoded, and every failure as the contract's
// error object {"error": {"code": "UPPER_SNAKE", "message": "…"}} with its
// status. A handler returns an error; Handler turns it into that answer.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// MaxBody is the largest request body a handler decodes.
const MaxBody = 1 << 20

// Error is an answer the client caused or may act on: a status, a code in
// UPPER_SNAKE and a message for people.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 BAD_REQUEST.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "BAD_REQUEST", format, args...)
}

// NotFound is a 404 NOT_FOUND.
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, "NOT_FOUND", format, args...)
}

// Conflict is a 409 with the given code.
func Conflict(code, format string, args ...any) *Error {
	return Errorf(http.StatusConflict, code, format, args...)
}

// Unavailable is a 503 UNAVAILABLE: a dependency did not answer in time and
// nothing was changed, so the client may retry.
func Unavailable(format string, args ...any) *Error {
	return Errorf(http.StatusServiceUnavailable, "UNAVAILABLE", format, args...)
}

// Unauthorized is a 401 UNAUTHORIZED.
func Unauthorized(format string, args ...any) *Error {
	return Errorf(http.StatusUnauthorized, "UNAUTHORIZED", format, args...)
}

// Forbidden is a 403 FORBIDDEN.
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, "FORBIDDEN", format, args...)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteJSON answers status with v encoded as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, nil, fmt.Errorf("encode answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError answers err: an *Error (anywhere in its chain) as itself,
// anything else as 500 INTERNAL with a message that reveals nothing; the
// latter is logged when log is not nil.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if log != nil {
			log.Error("request failed", "err", err)
		}
		e = &Error{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: "internal error"}
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(b, '\n'))
}

// HandlerFunc is an HTTP handler that returns its failure.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler adapts h, writing its error as the contract's error answer.
func Handler(log *slog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, log, err)
		}
	})
}

// Decode reads r's JSON body into v: at most MaxBody bytes, one value, no
// trailing data. Any failure is a 400 BAD_REQUEST naming what was wrong.
func Decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return BadRequest("Content-Type %q is not application/json", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody+1))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return BadRequest("empty body")
		}
		return BadRequest("malformed JSON: %v", err)
	}
	if dec.More() {
		return BadRequest("malformed JSON: data after the value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BadRequest("malformed JSON: data after the value")
	}
	return nil
}

// NotFoundHandler answers every request with 404 NOT_FOUND, for paths no
// route matches.
func NotFoundHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, nil, NotFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}
