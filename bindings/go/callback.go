package fotp

/*
#include "fotp.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
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

func jsonMarshal(cb *Callback) ([]byte, error) { return json.Marshal(cb) }

// CallbackHandler returns an http.Handler for the template's callback address (push mode).
//
// It accepts POST only (405 otherwise) and reads at most 64 KiB of body. When the body
// parses, it calls handle with the request's context: a nil return answers 200 with
// {"code":"0"} (application/json); an error answers 500, so that the platform delivers the
// callback again. A body that does not parse answers 400 with the reason as text.
//
// The platform may deliver a callback more than once: handle must tolerate duplicates.
func CallbackHandler(handle func(ctx context.Context, cb *Callback) error) http.Handler {
	if handle == nil {
		return callbackHandler(func(*http.Request, *C.fotp_callback, *Callback) error {
			return errNoHandler
		})
	}
	return callbackHandler(func(r *http.Request, _ *C.fotp_callback, cb *Callback) error {
		return handle(r.Context(), cb)
	})
}

// TrackedCallbackHandler is CallbackHandler for apps that start their verifications with
// t.Verify: it matches each callback with t before calling handle, so that handle learns
// the verification's token and whether this delivery is a duplicate, and Tracker.Wait for
// that token returns at once (in every process sharing t's store).
//
// m is nil when no live verification of t holds the callback's code (not one of ours, or
// expired); m.Duplicate is true when a callback for m.FtToken was matched before. handle
// may be nil when Tracker.Wait does all the work: each callback is then matched and
// acknowledged. A store failure answers 500 without calling handle (nothing was matched,
// so the platform's next delivery is matched as a first one). As with CallbackHandler, an
// error from handle answers 500 and the platform delivers the callback again, but that
// delivery is then a duplicate: make handle's work idempotent per token rather than
// skipping duplicates if it can fail. Matching does not authenticate a callback: act on
// Tracker.Wait's result (the platform's query) or Client.Confirm, not on the callback alone.
func TrackedCallbackHandler(t *Tracker, handle func(ctx context.Context, cb *Callback, m *Match) error) http.Handler {
	if t == nil {
		return callbackHandler(func(*http.Request, *C.fotp_callback, *Callback) error {
			return errNoTracker
		})
	}
	return callbackHandler(func(r *http.Request, ccb *C.fotp_callback, cb *Callback) error {
		m, err := t.matchC(ccb)
		if err != nil {
			return err
		}
		if handle == nil {
			return nil
		}
		return handle(r.Context(), cb, m)
	})
}

// Configuration mistakes, answered with their own text (they hold no application details).
var (
	errNoHandler = errors.New("no callback handler")
	errNoTracker = errors.New("no tracker for the callback handler")
)

// callbackHandler serves callbacks: it checks the method, reads and parses the body, and
// answers CallbackAck when process returns nil, 500 otherwise.
func callbackHandler(process func(r *http.Request, ccb *C.fotp_callback, cb *Callback) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed: callbacks are POSTed", http.StatusMethodNotAllowed)
			return
		}
		// One byte over the limit lets the library report the body as too large.
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxCallbackBytes+1))
		if err != nil {
			http.Error(w, "cannot read the callback body: "+err.Error(), http.StatusBadRequest)
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
		err = process(r, ccb, callbackFromC(ccb))
		if err == errNoHandler || err == errNoTracker {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// The error may hold application details: it is not sent back to the platform.
		if err != nil {
			http.Error(w, "the callback was not processed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, CallbackAck)
	})
}
