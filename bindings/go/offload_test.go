package fotp

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// forceOffload runs the rest of the test with every call offloaded (or none).
func forceOffload(t *testing.T, mode int) {
	old := offloadMode
	offloadMode = mode
	t.Cleanup(func() { offloadMode = old })
}

// TestOffloadedCallsBehaveLikeBlockingOnes: verify, query, confirm and wait through the worker
// pool give the same results and the same error kinds as the blocking calls.
func TestOffloadedCallsBehaveLikeBlockingOnes(t *testing.T) {
	forceOffload(t, offloadAlways)
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 20*time.Second)
	v, err := c.Verify(ctx, VerifyRequest{FtID: "2", Code: "4321", ValidityMinutes: 3})
	if err != nil || v.Code != "4321" || v.FtToken == "" || v.URL == "" {
		t.Fatalf("Verify: %+v, %v", v, err)
	}
	if c.lazy.off == nil {
		t.Fatal("the call was not offloaded")
	}
	r, err := c.Query(ctx, v.FtToken)
	if err != nil || r.Status != StatusProcessing {
		t.Fatalf("Query: %+v, %v", r, err)
	}
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000401", "content": "4321"})
	r, err = c.Wait(ctx, v.FtToken)
	if err != nil || r.Status != StatusSuccess || r.Mobile != "8613800000401" {
		t.Fatalf("Wait: %+v, %v", r, err)
	}
	cb := &Callback{Mobile: r.Mobile, Sender: r.Sender, SendTime: r.SendTime, Code: r.Code}
	if ok, err := c.Confirm(ctx, cb, v.FtToken); err != nil || !ok {
		t.Fatalf("Confirm: %v, %v", ok, err)
	}
	cb.Code = "9999"
	if ok, err := c.Confirm(ctx, cb, v.FtToken); err != nil || ok {
		t.Fatalf("Confirm of another code: %v, %v", ok, err)
	}
	// Errors keep their kinds: input checked by the library, and the platform's answer.
	_, err = c.Verify(ctx, VerifyRequest{FtID: "2", Code: "12"})
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = c.Query(ctx, "not a token")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = c.Query(ctx, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindAPI, ErrAPI)
}

// TestOffloadedCallsKeepTheirLimits: a server that never answers; the per-attempt limit and
// the context's deadline still end offloaded calls, with the right kinds.
func TestOffloadedCallsKeepTheirLimits(t *testing.T) {
	forceOffload(t, offloadAlways)
	url, _, _ := silentServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: 300 * time.Millisecond, Retries: NoRetries})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Query(context.Background(), "0123456789abcdef0123456789abcdef")
	fe := wantKind(t, err, KindTimeout, ErrTimeout)
	if errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("per-attempt limit: %v after %v", fe, time.Since(start))
	}
	c2, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c2.Verify(ctx, VerifyRequest{FtID: "2"})
	wantKind(t, err, KindTimeout, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("context deadline: %v after %v", err, time.Since(start))
	}
}

// TestOffloadedCallsCancelAndLeakNothing: 200 offloaded calls blocked on a server that never
// answers return at once when their context is cancelled and leave the library within 1 s; after
// Close the pool's worker threads, its descriptor and its dispatcher goroutine are gone.
func TestOffloadedCallsCancelAndLeakNothing(t *testing.T) {
	if !isolated(t) {
		return
	}
	forceOffload(t, offloadAlways)
	goroutines := runtime.NumGoroutine()
	url, conns := stallingServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	const n = 200
	errs := mixedCalls(ctx, c, n)
	// The pool runs at most maxOffloadThreads calls; the others wait in its queue.
	if !eventually(10*time.Second, func() bool { return conns.Load() >= maxOffloadThreads }) {
		t.Fatalf("only %d calls reached the server", conns.Load())
	}
	if th := osThreads(t); th > maxOffloadThreads+40 {
		t.Fatalf("%d OS threads for %d calls (pool bound %d)", th, n, maxOffloadThreads)
	}
	cancel()
	cancelled := time.Now()
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled call: %v", err)
			}
		case <-time.After(time.Second):
			t.Fatalf("%d calls did not return 1 s after the cancel", n-i)
		}
	}
	if !eventually(2*time.Second, func() bool { return c.inflightCalls() == 0 }) {
		t.Fatalf("%d library calls still run 2 s after the cancel", c.inflightCalls())
	}
	t.Logf("%d cancelled calls left the library within %v", n, time.Since(cancelled))
	// Queued calls whose token was triggered are never sent. Each call's token is triggered
	// by its own goroutine (its caller's, or its AfterFunc's): a worker freed by the cancel may
	// start a queued call whose goroutines have not run yet (a blocking call has the same
	// window, between ctx's cancel and its trigger), so only most of the 136 must stay unsent.
	// (That nothing is sent after its caller saw "cancelled" is TestCancelledVerifyIsNeverSent's;
	// counting accepted connections here would count handshakes begun before the returns.)
	if sent := conns.Load() - maxOffloadThreads; sent > (n-maxOffloadThreads)/2 {
		t.Fatalf("%d of %d queued calls were sent after the cancel", sent, n-maxOffloadThreads)
	}
	// The pool's socket (the library's end and the dispatcher's dup of it) must be closed.
	var sock string
	if err := c.lazy.off.rc.Control(func(fd uintptr) { sock, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd))) }); err != nil || !strings.HasPrefix(sock, "socket:") {
		t.Fatalf("the pool's descriptor: %q, %v", sock, err)
	}
	if n := fdsOn(t, sock); n != 2 {
		t.Fatalf("%d descriptors on the pool's socket %s, want 2 (the library's and the dup)", n, sock)
	}
	threads := osThreads(t)
	c.Close()
	if n := fdsOn(t, sock); n != 0 {
		t.Fatalf("%d descriptors still on the pool's socket after Close", n)
	}
	// Closing joins the 64 workers (the Go runtime may start a thread or two meanwhile), and
	// the dispatcher goroutine returns.
	if th := osThreads(t); th > threads-maxOffloadThreads+8 {
		t.Fatalf("%d OS threads after Close, %d before: the workers were not joined", th, threads)
	}
	if !eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines+1 }) {
		t.Fatalf("after Close: %d goroutines (%d before)", runtime.NumGoroutine(), goroutines)
	}
}

// fdsOn counts this process's descriptors whose target is target (e.g. "socket:[123]").
func fdsOn(t *testing.T, target string) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("cannot list the open descriptors: %v", err)
	}
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == target {
			n++
		}
	}
	return n
}

// TestOffloadedCallsFromManyGoroutines: 64 goroutines share a client on the sandbox through
// the pool; every answer is right, and Close during nothing in flight frees everything.
func TestOffloadedCallsFromManyGoroutines(t *testing.T) {
	forceOffload(t, offloadAlways)
	c := newSandboxClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				v, err := c.Verify(context.Background(), VerifyRequest{FtID: "2", Code: "5678"})
				if err != nil || v.Code != "5678" {
					errs <- errors.Join(err, errors.New("verify: wrong answer"))
					return
				}
				r, err := c.Query(context.Background(), v.FtToken)
				if err != nil || r.Status != StatusProcessing {
					errs <- errors.Join(err, errors.New("query: wrong answer"))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c.inflightCalls() != 0 {
		t.Fatalf("%d calls in flight after all returned", c.inflightCalls())
	}
	freed := make(chan struct{})
	c.onFree = func() { close(freed) }
	c.Close()
	select {
	case <-freed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not free the client")
	}
	select {
	case <-c.lazy.off.exited:
	default:
		t.Fatal("the dispatcher still runs after Close")
	}
}
