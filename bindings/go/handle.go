package fotp

import "sync/atomic"

// handle owns a library object that concurrent calls share: Close marks it closed, and the
// object is freed when it is closed and the last call still using it has returned.
//
// The state is one atomic word (no mutex on the call path): the number of calls in flight,
// plus closedBit once closed and freedBit once freed.
type handle[P comparable] struct {
	state  atomic.Int64
	ptr    P       // set once before the handle is shared; never changed
	what   string  // "client" or "tracker", for error messages
	free   func(P) // the library's *_free
	onFree func()  // test hook: called when the library object is freed
}

const (
	closedBit = int64(1) << 62
	freedBit  = int64(1) << 61
	countMask = freedBit - 1
)

// close marks h closed and frees the object if no call uses it; false if already closed.
func (h *handle[P]) close() bool {
	for {
		v := h.state.Load()
		if v&closedBit != 0 {
			return false
		}
		if h.state.CompareAndSwap(v, v|closedBit) {
			h.freeIfIdle()
			return true
		}
	}
}

// freeIfIdle frees the object if it is closed, unused and not freed yet (exactly once: the
// compare-and-swap picks one caller).
func (h *handle[P]) freeIfIdle() {
	if h.state.CompareAndSwap(closedBit, closedBit|freedBit) {
		h.free(h.ptr)
		if h.onFree != nil {
			h.onFree()
		}
	}
}

// acquire reserves the object for one call; release must follow.
func (h *handle[P]) acquire() (P, error) {
	if h.state.Add(1)&closedBit != 0 {
		h.release()
		var none P
		return none, &Error{Kind: KindInvalidArgument, Message: "the " + h.what + " is closed", cause: ErrClosed}
	}
	return h.ptr, nil
}

func (h *handle[P]) release() {
	if h.state.Add(-1) == closedBit {
		h.freeIfIdle()
	}
}

// calls is the number of calls in flight.
func (h *handle[P]) calls() int { return int(h.state.Load() & countMask) }
