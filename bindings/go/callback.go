package fotp

/*
#include "fotp.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unsafe"
)

// CallbackAck is the exact answer to a callback that was accepted: {"code":"0"}.
const CallbackAck = `{"code":"0"}`

// MaxCallbackBytes is the largest callback body accepted.
const MaxCallbackBytes = 64 * 1024

// emptyBody gives an empty slice a valid address: the library refuses a NULL body pointer.
var emptyBody [1]byte

// parseC parses body into a library callback object that the caller must free.
func parseC(body []byte) (*C.fotp_callback, error) {
	// The library only reads the bytes during the call and keeps a copy of what it needs,
	// so the Go memory (which holds no Go pointers) is passed without copying.
	p := unsafe.Pointer(&emptyBody[0])
	if len(body) > 0 {
		p = unsafe.Pointer(unsafe.SliceData(body))
	}
	var cb *C.fotp_callback
	err := takeError(C.fotp_callback_parse((*C.uint8_t)(p), C.size_t(len(body)), &cb))
	if err != nil {
		return nil, err
	}
	return cb, nil
}

// ParseCallback parses a callback body pushed by the platform. Mobile, sender, sendTime and
// code are required and non-empty; a field may be a JSON string or integer. A body that does
// not follow the protocol (bad JSON, missing field, over 64 KiB, invalid UTF-8) is an error
// of kind KindDecode that names the problem.
func ParseCallback(body []byte) (*Callback, error) {
	cb, err := parseC(body)
	if err != nil {
		return nil, err
	}
	defer C.fotp_callback_free(cb)
	return callbackFromC(cb), nil
}

// callbackFromC copies the fields of a library callback object.
func callbackFromC(cb *C.fotp_callback) *Callback {
	var f [7]*C.char
	C.fotp_callback_fields(cb, &f[0], C.size_t(len(f)))
	return &Callback{
		Mobile:      goString(f[0]),
		Sender:      goString(f[1]),
		SendTime:    goString(f[2]),
		Code:        goString(f[3]),
		Content:     goString(f[4]),
		DeliverTime: goString(f[5]),
		Err:         goString(f[6]),
	}
}

// callbackToC rebuilds a library callback object from cb's fields (the C side compares its
// own objects); the caller frees it. An invalid cb is KindInvalidArgument.
func callbackToC(cb *Callback) (*C.fotp_callback, error) {
	body, err := json.Marshal(cb)
	if err != nil {
		return nil, newError(KindInvalidArgument, "the callback cannot be encoded: %v", err)
	}
	ccb, err := parseC(body)
	if err != nil {
		msg := err.Error()
		if fe, ok := err.(*Error); ok {
			msg = fe.Message
		}
		return nil, newError(KindInvalidArgument, "the callback is not valid: %s", msg)
	}
	return ccb, nil
}

// CallbackHandler returns an http.Handler for the template's callback address (push mode).
//
// It accepts POST only (405 otherwise) and reads at most 64 KiB of body (413 beyond, with
// http.MaxBytesReader; a body that cannot be read answers 500, so the platform delivers it
// again). When the body parses, it calls handle with the request's context: a nil return
// answers 200 with {"code":"0"} (application/json); an error answers 500, so that the platform
// delivers the callback again. A body that does not parse answers 400 with the reason as text.
// A nil handle panics at once, as http.Handle does for a nil handler.
//
// handle sees every delivery, repeated and forged ones included: a callback carries no
// signature and the callback address is public. Apps that start their verifications with a
// Tracker use TrackedCallbackHandler, which settles each callback with the platform first;
// others confirm each callback with Client.Confirm before acting on it.
func CallbackHandler(handle func(ctx context.Context, cb *Callback) error) http.Handler {
	if handle == nil {
		// As http.Handle does: a mistake in the wiring fails at start, not on every callback
		// (which the platform would retry forever).
		panic("fotp: CallbackHandler: nil handle")
	}
	return callbackHandler(func(r *http.Request, _ *C.fotp_callback, cb *Callback) (int, error) {
		if err := handle(r.Context(), cb); err != nil {
			return http.StatusInternalServerError, err
		}
		return http.StatusOK, nil
	})
}

// TrackedCallbackHandler is the receiver for apps that start their verifications with
// t.Verify (CONTRACT section 8). It settles each callback with t.Settle through c (the
// platform confirms it with one query) and answers:
//
//   - the first genuine delivery for a verification: handle(ctx, cb, m) runs with the match;
//     nil answers {"code":"0"};
//   - a repeated delivery of a settled callback: {"code":"0"}, without calling handle;
//   - a code that no live verification holds (not one of ours, or expired): handle runs with
//     m nil, then {"code":"0"};
//   - a callback the platform does not confirm (yet), or a settle that failed (platform or
//     store unreachable, closed tracker or client): 503, nothing consumed and handle not
//     called; the platform delivers again, so a forged callback never hides the genuine one;
//   - handle returns an error (or panics): the settlement is undone and the answer is 500, so
//     the platform's next delivery is offered to handle again as the first. A result is never
//     lost.
//
// handle never runs twice at the same time for one verification, in any process sharing t's
// store: a delivery is first only while no other is. handle may be nil when Tracker.Wait does
// all the work (settling wakes it). Requests that are not POST answer 405, bodies over 64 KiB
// 413, bodies that do not parse 400 (handle not called). A nil t or c panics at once, as
// http.Handle does for a nil handler.
func TrackedCallbackHandler(t *Tracker, c *Client, handle func(ctx context.Context, cb *Callback, m *Match) error) http.Handler {
	if t == nil {
		panic("fotp: TrackedCallbackHandler: nil tracker")
	}
	if c == nil {
		panic("fotp: TrackedCallbackHandler: nil client (settling asks the platform)")
	}
	return callbackHandler(func(r *http.Request, ccb *C.fotp_callback, cb *Callback) (status int, err error) {
		// Settling is not abandoned when the platform hangs up: a first settlement must reach
		// handle (or be undone). The client's per-attempt limits bound it.
		outcome, cm, err := t.settleC(context.WithoutCancel(r.Context()), c, ccb)
		if err != nil {
			return http.StatusServiceUnavailable, err
		}
		if cm != nil {
			defer C.fotp_match_free(cm)
		}
		switch outcome {
		case C.FOTP_SETTLE_UNCONFIRMED:
			return http.StatusServiceUnavailable, errUnconfirmed
		case C.FOTP_SETTLE_DUPLICATE:
			return http.StatusOK, nil
		case C.FOTP_SETTLE_NO_MATCH:
			if handle != nil {
				if err := handle(r.Context(), cb, nil); err != nil {
					return http.StatusInternalServerError, err
				}
			}
			return http.StatusOK, nil
		case C.FOTP_SETTLE_FIRST:
			if handle == nil {
				return http.StatusOK, nil
			}
			done := false
			defer func() {
				if !done {
					// handle failed or panicked: offer the next delivery to it again.
					_ = t.unsettleC(cm)
				}
			}()
			if err := handle(r.Context(), cb, matchFromC(cm)); err != nil {
				return http.StatusInternalServerError, err
			}
			done = true
			return http.StatusOK, nil
		}
		return http.StatusInternalServerError, fmt.Errorf("unknown settle outcome %d", int(outcome))
	})
}

// errUnconfirmed answers a callback that the platform does not confirm (yet).
var errUnconfirmed = errors.New("the platform does not confirm this callback (yet)")

// callbackHandler serves callbacks: it checks the method, reads and parses the body, and
// answers CallbackAck when process returns 200, else process's status with a short text.
func callbackHandler(process func(r *http.Request, ccb *C.fotp_callback, cb *Callback) (int, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			logRefusal("method " + r.Method + ": callbacks are POSTed")
			http.Error(w, "method not allowed: callbacks are POSTed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			logRefusal("the body is over the limit")
			http.Error(w, fmt.Sprintf("the callback body is over the limit of %d bytes", MaxCallbackBytes),
				http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			// The connection failed, not the callback: 5xx, so the platform delivers it again.
			logRefusal("the body could not be read: " + err.Error())
			http.Error(w, "the callback body could not be read", http.StatusInternalServerError)
			return
		}
		ccb, err := parseC(body)
		if err != nil {
			msg := err.Error()
			if fe, ok := err.(*Error); ok {
				msg = fe.Message
			}
			http.Error(w, "invalid callback: "+msg, http.StatusBadRequest)
			return
		}
		defer C.fotp_callback_free(ccb)
		status, err := process(r, ccb, callbackFromC(ccb))
		switch {
		case err == errUnconfirmed:
			http.Error(w, err.Error(), status)
			return
		case status == http.StatusServiceUnavailable:
			// The error may hold details of the app's network: not sent to the platform.
			http.Error(w, "the callback cannot be settled now: deliver it again", status)
			return
		case err != nil || status != http.StatusOK:
			// The error may hold application details: it is not sent back to the platform.
			http.Error(w, "the callback was not processed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, CallbackAck)
	})
}
