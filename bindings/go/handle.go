package fotp

import "sync"

// handle owns a library object that concurrent calls share: Close marks it closed, and the
// object is freed when it is closed and the last call still using it has returned.
type handle[P comparable] struct {
	mu       sync.Mutex
	ptr      P
	inflight int // C calls running; the last one frees ptr after Close
	closed   bool
	what     string  // "client" or "tracker", for error messages
	free     func(P) // the library's *_free
	onFree   func()  // test hook: called when the library object is freed
}

// close marks h closed and frees the object if no call uses it; false if already closed.
func (h *handle[P]) close() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.closed = true
	h.freeIfIdle()
	return true
}

// freeIfIdle frees the object once closed and no call uses it; h.mu must be held.
func (h *handle[P]) freeIfIdle() {
	var none P
	if h.closed && h.inflight == 0 && h.ptr != none {
		h.free(h.ptr)
		h.ptr = none
		if h.onFree != nil {
			h.onFree()
		}
	}
}

// acquire reserves the object for one call; release must follow.
func (h *handle[P]) acquire() (P, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		var none P
		return none, &Error{Kind: KindInvalidArgument, Message: "the " + h.what + " is closed", cause: ErrClosed}
	}
	h.inflight++
	return h.ptr, nil
}

func (h *handle[P]) release() {
	h.mu.Lock()
	h.inflight--
	h.freeIfIdle()
	h.mu.Unlock()
}
