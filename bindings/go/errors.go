package fotp

/*
#include "fotp.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
)

// ErrorKind says what went wrong; the values are those of the C ABI (FOTP_ERROR_*).
type ErrorKind int

// The error kinds, shared by every language binding.
const (
	KindInvalidArgument ErrorKind = 1  // the caller's input broke a rule (checked before sending)
	KindConfig          ErrorKind = 2  // the client cannot be built
	KindNetwork         ErrorKind = 3  // DNS, connect, TLS or I/O failure
	KindTimeout         ErrorKind = 4  // a time limit ran out
	KindHTTPStatus      ErrorKind = 5  // a non-2xx answer that is not an API envelope
	KindAPI             ErrorKind = 6  // an envelope whose code is not "000000"
	KindDecode          ErrorKind = 7  // a body that is not what the protocol says
	KindExhausted       ErrorKind = 8  // a tracker has no free code left
	KindInternal        ErrorKind = 99 // a bug in the library; never expected
)

// String returns the stable name of the kind, e.g. "invalid_argument".
func (k ErrorKind) String() string {
	switch k {
	case KindInvalidArgument:
		return "invalid_argument"
	case KindConfig:
		return "config"
	case KindNetwork:
		return "network"
	case KindTimeout:
		return "timeout"
	case KindHTTPStatus:
		return "http_status"
	case KindAPI:
		return "api"
	case KindDecode:
		return "decode"
	case KindExhausted:
		return "exhausted"
	case KindInternal:
		return "internal"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is the error type of every fotp operation. Messages never contain the app secret
// or the token.
//
// Compare the kind with errors.Is(err, fotp.ErrTimeout) (and the other Err* sentinels), or
// read the fields with errors.As(err, &fe) where fe is a *fotp.Error.
type Error struct {
	Kind       ErrorKind
	Message    string
	APICode    string // the platform's code; only for KindAPI
	HTTPStatus int    // the HTTP status of the answer; 0 when there was none

	cause error // e.g. context.DeadlineExceeded, reported by Unwrap
}

// Sentinels for errors.Is; each matches every *Error of its kind.
var (
	ErrInvalidArgument = &Error{Kind: KindInvalidArgument, Message: "invalid argument"}
	ErrConfig          = &Error{Kind: KindConfig, Message: "config"}
	ErrNetwork         = &Error{Kind: KindNetwork, Message: "network"}
	ErrTimeout         = &Error{Kind: KindTimeout, Message: "timeout"}
	ErrHTTPStatus      = &Error{Kind: KindHTTPStatus, Message: "http status"}
	ErrAPI             = &Error{Kind: KindAPI, Message: "api"}
	ErrDecode          = &Error{Kind: KindDecode, Message: "decode"}
	ErrExhausted       = &Error{Kind: KindExhausted, Message: "exhausted"}
	ErrInternal        = &Error{Kind: KindInternal, Message: "internal"}
)

// ErrClosed is reported (inside an invalid-argument *Error) by methods of a closed Client
// or Tracker.
var ErrClosed = errors.New("fotp: use of a closed Client or Tracker")

func (e *Error) Error() string {
	if e.APICode != "" {
		return fmt.Sprintf("fotp: %s error %s: %s", e.Kind, e.APICode, e.Message)
	}
	return fmt.Sprintf("fotp: %s error: %s", e.Kind, e.Message)
}

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t == sentinel(e.Kind)
}

// Unwrap returns the underlying cause, if any (context.DeadlineExceeded when a context
// deadline ended the call, ErrClosed for a closed client or tracker).
func (e *Error) Unwrap() error { return e.cause }

func sentinel(k ErrorKind) *Error {
	switch k {
	case KindInvalidArgument:
		return ErrInvalidArgument
	case KindConfig:
		return ErrConfig
	case KindNetwork:
		return ErrNetwork
	case KindTimeout:
		return ErrTimeout
	case KindHTTPStatus:
		return ErrHTTPStatus
	case KindAPI:
		return ErrAPI
	case KindDecode:
		return ErrDecode
	case KindExhausted:
		return ErrExhausted
	case KindInternal:
		return ErrInternal
	}
	return nil
}

func newError(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// takeError converts a library error into *Error and frees it; nil stays nil.
func takeError(e *C.fotp_error) error {
	if e == nil {
		return nil
	}
	defer C.fotp_error_free(e)
	out := &Error{
		Kind:       ErrorKind(C.fotp_error_kind(e)),
		Message:    C.GoString(C.fotp_error_message(e)),
		HTTPStatus: int(C.fotp_error_http_status(e)),
	}
	if code := C.fotp_error_api_code(e); code != nil {
		out.APICode = C.GoString(code)
	}
	return out
}

// ctxError is what a call returns when ctx ended it: ctx.Err() itself when it was cancelled,
// and a timeout *Error wrapping context.DeadlineExceeded when its deadline passed, so that
// both errors.Is(err, ErrTimeout) and errors.Is(err, context.DeadlineExceeded) hold.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return deadlineError()
	}
	return err
}

func deadlineError() error {
	return &Error{
		Kind:    KindTimeout,
		Message: "the context deadline passed before the call completed",
		cause:   context.DeadlineExceeded,
	}
}
