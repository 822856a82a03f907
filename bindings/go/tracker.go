package fotp

/*
#include <stdlib.h>
#include "fotp.h"
*/
import "C"

import (
	"context"
	"math"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// Tracker matches push-mode callbacks to their verifications (CONTRACT section 8).
//
// A callback names no ftToken, only the mobile number and the code. A Tracker gives each
// verification it starts a code that no other live verification of the tracker holds (drawn
// from a CSPRNG, never starting with 0, reserved atomically), remembers token and code until
// the verification expires (its validity plus a 60 s grace), matches each callback to its
// token exactly once (later deliveries are reported as duplicates), and lets Wait return as
// soon as the callback arrived.
//
// NewMemoryTracker keeps its codes in this process; NewRedisTracker shares them with every
// process using the same Redis server and namespace (app instances behind a load balancer).
// A Tracker is safe for concurrent use. Close it when done.
type Tracker struct {
	handle[*C.fotp_tracker]
}

// TrackerVerifyRequest is what Tracker.Verify sends. The code is chosen by the tracker; the
// zero value of a field means "unset".
type TrackerVerifyRequest struct {
	FtID            string // template id, 1-64 characters, no control characters
	CodeLength      int    // 4-6 digits, or 0 for 4
	ValidityMinutes int    // 1-10, or 0 for the platform's default (5)
}

// Match is the verification a callback belongs to.
type Match struct {
	FtToken string // the token of the verification the callback's code was given to
	// Duplicate is true when a callback for this verification was matched before (a repeated
	// delivery), in this process or, with Redis, in any process sharing the store.
	Duplicate bool
}

// NewMemoryTracker returns a tracker that keeps its codes in this process's memory. Use it
// when a single process both starts the verifications and receives the callbacks.
func NewMemoryTracker() (*Tracker, error) {
	ptr := C.fotp_tracker_new_memory()
	if ptr == nil {
		return nil, newError(KindInternal, "fotp_tracker_new_memory returned NULL")
	}
	return newTracker(ptr), nil
}

// NewRedisTracker returns a tracker whose codes live in Redis, shared by every process using
// the same deployment and namespace ns ("" means "fotp"); Redis 6.2 or later. url names the
// deployment: redis://[user:password@]host[:port][/db] (one server),
// redis+cluster://[user:password@]host:port[,host:port]... (Redis Cluster seed nodes) or
// redis+sentinel://[user:password@]host:port[,host:port]...[/service] (the primary the
// Sentinels name service, default mymaster). On a cluster ns must not contain braces.
//
// It connects once to check the server: a URL that does not parse or credentials the server
// refuses are KindConfig errors, an unreachable server KindNetwork, a bad namespace (1-64
// visible ASCII characters) KindInvalidArgument. No message shows the URL.
func NewRedisTracker(url, ns string) (*Tracker, error) {
	if strings.IndexByte(url, 0) >= 0 {
		return nil, newError(KindConfig, "the Redis URL contains a NUL byte")
	}
	if strings.IndexByte(ns, 0) >= 0 {
		return nil, newError(KindInvalidArgument, "the namespace contains a NUL byte")
	}
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	var cns *C.char // NULL: the library's default namespace
	if ns != "" {
		cns = C.CString(ns)
		defer C.free(unsafe.Pointer(cns))
	}
	var ptr *C.fotp_tracker
	if err := takeError(C.fotp_tracker_new_redis(curl, cns, &ptr)); err != nil {
		return nil, err
	}
	return newTracker(ptr), nil
}

func newTracker(ptr *C.fotp_tracker) *Tracker {
	t := &Tracker{handle[*C.fotp_tracker]{ptr: ptr, what: "tracker", free: freeTracker}}
	// Only a safety net for a forgotten Close: in-flight calls keep t reachable.
	runtime.SetFinalizer(t, (*Tracker).Close)
	return t
}

// Close releases the tracker. It is idempotent. Calls still running finish first; calls
// made after Close fail with an error matching ErrClosed. Codes the tracker handed out stay
// reserved until they expire (with Redis, for the other processes too).
func (t *Tracker) Close() error {
	if t != nil && t.close() {
		runtime.SetFinalizer(t, nil)
	}
	return nil
}

func freeTracker(p *C.fotp_tracker) { C.fotp_tracker_free(p) }

func (t *Tracker) acquire() (*C.fotp_tracker, error) {
	if t == nil {
		return nil, newError(KindInvalidArgument, "the tracker is nil")
	}
	return t.handle.acquire()
}

// Verify starts a verification through c with a code that no other live verification of
// this tracker holds. The result's Code is that code; callbacks carrying it are matched by
// Match (in any process sharing the store).
//
// Errors: those of Client.Verify; KindExhausted (ErrExhausted) when half of the codes of
// the requested length are live (use longer codes); KindNetwork when the store fails.
// Context semantics are those of Client.Verify; a verify abandoned on cancellation may still
// reserve its code until the verification expires.
func (t *Tracker) Verify(ctx context.Context, c *Client, req TrackerVerifyRequest) (*Verification, error) {
	if strings.IndexByte(req.FtID, 0) >= 0 {
		return nil, newError(KindInvalidArgument, "ftId must not contain NUL bytes")
	}
	if req.CodeLength < 0 || uint64(req.CodeLength) > math.MaxUint32 {
		return nil, newError(KindInvalidArgument, "code length must be 4-6 digits, got %d", req.CodeLength)
	}
	if req.ValidityMinutes < 0 || uint64(req.ValidityMinutes) > math.MaxUint32 {
		return nil, newError(KindInvalidArgument, "validityPeriod must be 1-10 minutes, got %d", req.ValidityMinutes)
	}
	if c == nil {
		return nil, newError(KindInvalidArgument, "the client is nil")
	}
	tp, err := t.acquire()
	if err != nil {
		return nil, err
	}
	cl, end, err := c.begin(ctx)
	if err != nil {
		t.release()
		return nil, err
	}
	v, err := run(ctx, func() (*Verification, error) {
		defer t.release()
		defer end()
		ftID := C.CString(req.FtID)
		defer C.free(unsafe.Pointer(ftID))
		var out *C.fotp_verification
		e := C.fotp_tracker_verify(tp, cl, ftID, C.uint32_t(req.CodeLength), C.uint32_t(req.ValidityMinutes), &out)
		runtime.KeepAlive(t)
		runtime.KeepAlive(c)
		if err := takeError(e); err != nil {
			return nil, err
		}
		defer C.fotp_verification_free(out)
		var f [4]*C.char
		C.fotp_verification_fields(out, &f[0], C.size_t(len(f)))
		return &Verification{
			URL: goString(f[0]), FtToken: goString(f[1]), MessageID: goString(f[2]), Code: goString(f[3]),
		}, nil
	})
	return v, timeoutFromCtx(ctx, err)
}

// Match finds the live verification a callback belongs to, by its code (the mobile number is
// not compared). It returns nil, nil when no live verification of this tracker holds the
// code. The first delivery gives Duplicate false and wakes Wait for its token in every
// process sharing the store; later deliveries give Duplicate true.
//
// Matching does not authenticate the callback: Wait's result always comes from the
// platform's query, and Client.Confirm cross-checks a callback. A store failure is a
// KindNetwork error, never a wrong match (a Redis command gives up after 5 s).
func (t *Tracker) Match(cb *Callback) (*Match, error) {
	if cb == nil {
		return nil, newError(KindInvalidArgument, "the callback is nil")
	}
	// The C side matches its own callback object: rebuild one from cb's fields.
	body, err := jsonMarshal(cb)
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
	defer C.fotp_callback_free(ccb)
	return t.matchC(ccb)
}

// matchC matches a library callback object, which the caller keeps and frees.
func (t *Tracker) matchC(ccb *C.fotp_callback) (*Match, error) {
	tp, err := t.acquire()
	if err != nil {
		return nil, err
	}
	defer t.release()
	var out *C.fotp_match
	e := C.fotp_tracker_match(tp, ccb, &out)
	runtime.KeepAlive(t)
	if err := takeError(e); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, nil
	}
	defer C.fotp_match_free(out)
	return &Match{
		FtToken:   goString(C.fotp_match_ft_token(out)),
		Duplicate: bool(C.fotp_match_is_duplicate(out)),
	}, nil
}

// trackerWaitSlice bounds one fotp_tracker_wait call inside Tracker.Wait. It must exceed the
// tracker's 2 s query interval, or a slice would end before its first query.
func (c *Client) trackerWaitSlice() time.Duration {
	return min(max(c.timeout, 5*time.Second), maxLimit)
}

// Wait returns the platform's result for ftToken as soon as a callback for it was matched
// (in any process sharing the store) and the platform's query confirms a final status, or
// when one of the queries the tracker makes every 2 s reports a final status. The result
// always comes from the platform, so a forged callback cannot make it report success.
//
// Context semantics are those of Client.Wait: without a deadline it waits until ctx is
// cancelled; a deadline gives a KindTimeout error that also wraps context.DeadlineExceeded;
// cancellation returns ctx.Err() at once. It waits in slices of max(Config.Timeout, 5 s),
// which bound the work left behind by a cancelled Wait. Transient query failures do not end
// the wait; a store failure is a KindNetwork error.
func (t *Tracker) Wait(ctx context.Context, c *Client, ftToken string) (*QueryResult, error) {
	if err := checkToken(ftToken); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, newError(KindInvalidArgument, "the context is nil")
	}
	if c == nil {
		return nil, newError(KindInvalidArgument, "the client is nil")
	}
	return waitInSlices(ctx, c.trackerWaitSlice(), func(ms C.uint32_t) (*QueryResult, error) {
		tp, err := t.acquire()
		if err != nil {
			return nil, err
		}
		cl, err := c.acquire()
		if err != nil {
			t.release()
			return nil, err
		}
		return run(ctx, func() (*QueryResult, error) {
			defer t.release()
			defer c.release()
			tok := C.CString(ftToken)
			defer C.free(unsafe.Pointer(tok))
			var out *C.fotp_query_result
			e := C.fotp_tracker_wait(tp, cl, tok, ms, &out)
			runtime.KeepAlive(t)
			runtime.KeepAlive(c)
			if err := takeError(e); err != nil {
				return nil, err
			}
			return takeQueryResult(out), nil
		})
	})
}
