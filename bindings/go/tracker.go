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
// the verification expires (its validity plus a 60 s grace), settles each callback exactly
// once per verification, counting only deliveries the platform confirms (Settle, and the
// receiver TrackedCallbackHandler), and lets Wait return as soon as the callback arrived.
//
// NewMemoryTracker keeps its codes in this process; NewRedisTracker shares them with every
// process using the same Redis server and namespace (app instances behind a load balancer).
// A Tracker is safe for concurrent use. Close it when done.
type Tracker struct {
	handle[*C.fotp_tracker]
	waits chan struct{} // a slot per Wait blocked in the library (maxTrackerWaits)
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
	// Duplicate is true when this verification was settled (Settle) or matched (Match)
	// before: a repeated delivery, in this process or, with Redis, in any process sharing the
	// store. Settle and Match keep separate records, so a forged callback matched with Match
	// never makes Settle report the genuine delivery as a duplicate.
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
	t := &Tracker{
		handle: handle[*C.fotp_tracker]{ptr: ptr, what: "tracker", free: freeTracker},
		waits:  make(chan struct{}, maxTrackerWaits),
	}
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
// Context semantics are those of Client.Verify. When the verify fails, its code is freed only
// if the request surely never reached the platform; otherwise it stays reserved until it
// expires, so that a late callback cannot match another verification.
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
	cl, end, abort, err := c.begin(ctx)
	if err != nil {
		t.release()
		return nil, err
	}
	v, err := run(ctx, abort, func() (*Verification, error) {
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

// Match finds the live verification a callback belongs to, by its code, WITHOUT asking the
// platform (the mobile number is not compared). It returns nil, nil when no live
// verification of this tracker holds the code. The first call for a code gives Duplicate
// false and wakes Wait for its token in every process sharing the store; later calls give
// true.
//
// Matching does not authenticate the callback: it suits callers who confirm each callback
// themselves (Client.Confirm) before acting on it. Everyone else uses Settle or
// TrackedCallbackHandler. A store failure is a KindNetwork error, never a wrong match.
func (t *Tracker) Match(cb *Callback) (*Match, error) {
	if cb == nil {
		return nil, newError(KindInvalidArgument, "the callback is nil")
	}
	ccb, err := callbackToC(cb)
	if err != nil {
		return nil, err
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
	return matchFromC(out), nil
}

// settleC settles a library callback object, which the caller keeps and frees: the outcome,
// and for settleFirst and settleDuplicate the match, which the caller frees with
// C.fotp_match_free. The C call is waited for even when ctx is cancelled meanwhile (the
// cancel token ends it within about 100 ms): its settlement must not go unreported.
func (t *Tracker) settleC(ctx context.Context, c *Client, ccb *C.fotp_callback) (C.fotp_settle_outcome, *C.fotp_match, error) {
	if c == nil {
		return 0, nil, newError(KindInvalidArgument, "the client is nil")
	}
	tp, err := t.acquire()
	if err != nil {
		return 0, nil, err
	}
	defer t.release()
	cl, end, _, err := c.begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer end()
	var outcome C.fotp_settle_outcome
	var out *C.fotp_match
	e := C.fotp_tracker_settle_outcome(tp, cl, ccb, &outcome, &out)
	runtime.KeepAlive(t)
	runtime.KeepAlive(c)
	if err := takeError(e); err != nil {
		return 0, nil, timeoutFromCtx(ctx, err)
	}
	return outcome, out, nil
}

// unsettleC undoes the first settlement m, so that the next delivery is the first again.
func (t *Tracker) unsettleC(m *C.fotp_match) error {
	tp, err := t.acquire()
	if err != nil {
		return err
	}
	defer t.release()
	e := C.fotp_tracker_unsettle(tp, m)
	runtime.KeepAlive(t)
	return takeError(e)
}

func matchFromC(m *C.fotp_match) *Match {
	return &Match{
		FtToken:   goString(C.fotp_match_ft_token(m)),
		Duplicate: bool(C.fotp_match_is_duplicate(m)),
	}
}

// Settle is the safe way to act on a callback: it finds the live verification holding the
// callback's code, has the platform confirm the callback with one query through c (status
// success, the same code, the same mobile) and settles it, atomically among all processes
// sharing the store. It returns nil, nil when no live verification holds the code or the
// platform does not confirm the callback: nothing is consumed then, so a forged callback
// never hides the genuine one. Otherwise Duplicate is true when the verification was settled
// before (in any process sharing the store): exactly one genuine delivery per verification
// is the first. Settling wakes Wait for the token in every process.
//
// A failed query or store is an error and consumes nothing (answer the platform with an
// error so that it delivers again). When ctx is cancelled during the call, Settle undoes a
// first settlement it made and returns the context's error, so nothing is lost.
// TrackedCallbackHandler does all this for an http.Handler, and undoes the settlement when
// your function fails.
func (t *Tracker) Settle(ctx context.Context, c *Client, cb *Callback) (*Match, error) {
	if cb == nil {
		return nil, newError(KindInvalidArgument, "the callback is nil")
	}
	if ctx == nil {
		return nil, newError(KindInvalidArgument, "the context is nil")
	}
	if _, err := t.acquire(); err != nil {
		return nil, err
	}
	t.release()
	ccb, err := callbackToC(cb)
	if err != nil {
		return nil, err
	}
	defer C.fotp_callback_free(ccb)
	outcome, cm, err := t.settleC(ctx, c, ccb)
	if err != nil {
		return nil, err
	}
	if cm == nil {
		return nil, nil
	}
	defer C.fotp_match_free(cm)
	if ctx.Err() != nil {
		if outcome == C.FOTP_SETTLE_FIRST {
			if err := t.unsettleC(cm); err != nil {
				return nil, err
			}
		}
		return nil, ctxError(ctx)
	}
	return matchFromC(cm), nil
}

// maxTrackerWaits bounds the Waits of one Tracker that block in the library at once (each
// holds an OS thread there); the others poll the platform from Go until a slot frees.
const maxTrackerWaits = 32

// Wait returns the platform's result for ftToken as soon as a callback for it was settled or
// matched (in any process sharing the store) and the platform's query confirms a final
// status, or when one of the queries the tracker makes every 2 s reports a final status. The
// result always comes from the platform, so a forged callback cannot make it report success.
//
// Context semantics are those of Client.Wait: without a deadline it waits until ctx is
// cancelled; a deadline gives a KindTimeout error that also wraps context.DeadlineExceeded;
// cancellation returns ctx.Err() at once and the library call ends within about 100 ms.
// Transient query failures do not end the wait, and neither does a store failure (the wait
// goes on by polling the platform).
//
// Up to 32 Waits of a Tracker block in the library at once, each on an OS thread, and return
// the moment their callback is settled; further concurrent Waits poll the platform from Go
// (like Client.Wait, holding no thread between polls) until one of those slots frees, so any
// number of Waits use a bounded number of threads.
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
	if _, err := t.acquire(); err != nil {
		return nil, err
	}
	t.release()
	return pollUntilFinal(ctx, func() (*QueryResult, error) {
		select {
		case t.waits <- struct{}{}:
			return t.waitC(ctx, c, ftToken)
		default:
		}
		select {
		case c.polls <- struct{}{}:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
		return c.query(ctx, ftToken, func() { <-c.polls })
	})
}

// waitC runs fotp_tracker_wait until a final status, an error, or ctx is done, and frees the
// slot it holds in t.waits when the library call has returned.
func (t *Tracker) waitC(ctx context.Context, c *Client, ftToken string) (*QueryResult, error) {
	free := func() { <-t.waits }
	tp, err := t.acquire()
	if err != nil {
		free()
		return nil, err
	}
	cl, end, abort, err := c.begin(ctx)
	if err != nil {
		t.release()
		free()
		return nil, err
	}
	r, err := run(ctx, abort, func() (*QueryResult, error) {
		defer free()
		defer t.release()
		defer end()
		tok := C.CString(ftToken)
		defer C.free(unsafe.Pointer(tok))
		for {
			// The derived client ends the call at ctx's deadline; without one, the longest
			// limit the C API takes, again and again.
			limit := maxLimit
			if dl, ok := ctx.Deadline(); ok {
				limit = max(time.Until(dl), time.Millisecond)
			}
			var out *C.fotp_query_result
			e := C.fotp_tracker_wait(tp, cl, tok, millis(limit), &out)
			runtime.KeepAlive(t)
			runtime.KeepAlive(c)
			err := takeError(e)
			if err == nil {
				return takeQueryResult(out), nil
			}
			if fe, ok := err.(*Error); ok && fe.Kind == KindTimeout && limit == maxLimit && ctx.Err() == nil {
				continue
			}
			return nil, err
		}
	})
	return r, timeoutFromCtx(ctx, err)
}
