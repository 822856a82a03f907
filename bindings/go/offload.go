package fotp

/*
#include "fotp.h"
*/
import "C"

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// With one P (GOMAXPROCS=1, e.g. a process pinned to one CPU), a call runs on the library's
// worker threads (fotp_offload, src/offload.rs) and the goroutine waits in Go, in the network
// poller, instead of blocking its thread in a C call. A goroutine blocked in a C call keeps
// its thread and its P: with one P no other goroutine runs meanwhile, and past ~20 µs the
// runtime's sysmon takes the P back and starts a thread to run it, which costs more than the
// hop to a worker thread and back (issue 17: ~15% of a verify on a pinned CPU). With more Ps,
// measured on 2 cores with 4 and 16 goroutines, the hop costs more CPU (two more thread
// switches per call, ~1.3x the client's CPU) than the runtime's hand-offs: there calls block
// in the library. See bench/NOTES.md.

// maxOffloadThreads bounds the library's worker threads per Client; more concurrent calls wait
// in its queue (in Go, holding no thread).
const maxOffloadThreads = 64

// offloadMode: offloadAuto (the rule above), or always / never (tests).
const (
	offloadAuto = iota
	offloadAlways
	offloadNever
)

var offloadMode = offloadAuto

// procs caches runtime.GOMAXPROCS(0) (which takes the scheduler's lock), refreshed every
// 1024 calls: the program may change it, and the runtime follows the CPU quota.
var (
	procs      atomic.Int32
	procsCalls atomic.Uint32
)

// useOffload reports whether a call should be offloaded.
func useOffload() bool {
	switch offloadMode {
	case offloadAlways:
		return true
	case offloadNever:
		return false
	}
	if procsCalls.Add(1)%1024 == 1 || procs.Load() == 0 {
		procs.Store(int32(runtime.GOMAXPROCS(0)))
	}
	return procs.Load() == 1
}

// offload is a Client's worker pool and the goroutine that waits on its descriptor and wakes
// the goroutines whose calls finished.
type offload struct {
	ptr *C.fotp_offload
	// A dup of the pool's descriptor (the pool keeps its own), registered with the poller.
	file *os.File
	rc   syscall.RawConn

	mu      sync.Mutex
	waiting map[uint64]chan struct{} // by tag: calls started and not finished
	next    uint64
	exited  chan struct{} // closed when the dispatcher returns
}

func newOffload() (*offload, error) {
	var p *C.fotp_offload
	if err := takeError(C.fotp_offload_new(C.uint32_t(maxOffloadThreads), &p)); err != nil {
		return nil, err
	}
	var fd C.int
	if err := takeError(C.fotp_offload_fd(p, &fd)); err != nil {
		C.fotp_offload_free(p)
		return nil, err
	}
	syscall.ForkLock.RLock()
	dup, err := syscall.Dup(int(fd))
	if err == nil {
		syscall.CloseOnExec(dup)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		C.fotp_offload_free(p)
		return nil, newError(KindInternal, "dup of the worker pool's descriptor: %v", err)
	}
	// Non-blocking (the pool made it so), hence registered with the network poller.
	f := os.NewFile(uintptr(dup), "fotp-offload")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		C.fotp_offload_free(p)
		return nil, newError(KindInternal, "worker pool descriptor: %v", err)
	}
	o := &offload{ptr: p, file: f, rc: rc, waiting: map[uint64]chan struct{}{}, exited: make(chan struct{})}
	go o.dispatch()
	return o, nil
}

// dispatch collects the tags of finished calls and wakes their goroutines, waiting in the
// poller while there are none; it returns when the descriptor is closed.
func (o *offload) dispatch() {
	defer close(o.exited)
	tags := make([]C.uint64_t, 64)
	for {
		n := 0
		// The function runs first, then after each readiness event: the descriptor is
		// edge-triggered, so it is drained before every wait.
		err := o.rc.Read(func(uintptr) bool {
			n = int(C.fotp_offload_drain(o.ptr, &tags[0], C.size_t(len(tags))))
			return n > 0
		})
		if err != nil {
			return // closed by close()
		}
		o.mu.Lock()
		for _, t := range tags[:n] {
			if ch, ok := o.waiting[uint64(t)]; ok {
				delete(o.waiting, uint64(t))
				ch <- struct{}{} // buffered: never blocks
			}
		}
		o.mu.Unlock()
	}
}

// register reserves a tag for a call about to start; its channel receives once it finished.
func (o *offload) register() (uint64, chan struct{}) {
	ch := make(chan struct{}, 1)
	o.mu.Lock()
	o.next++
	tag := o.next
	o.waiting[tag] = ch
	o.mu.Unlock()
	return tag, ch
}

// unregister forgets a tag whose call could not start.
func (o *offload) unregister(tag uint64) {
	o.mu.Lock()
	delete(o.waiting, tag)
	o.mu.Unlock()
}

// close stops the dispatcher and frees the pool; no call may be in flight.
func (o *offload) close() {
	o.file.Close()
	<-o.exited
	C.fotp_offload_free(o.ptr)
}
