package fotp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// isolated reports whether the test body should run here: the first call re-runs the test
// alone in a fresh test process and returns false. Thread counts need that: the Go runtime
// keeps the OS threads that earlier tests' cgo calls made, idle, for the whole process.
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv("FOTP_GO_ISOLATED") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "FOTP_GO_ISOLATED="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("isolated run: %v\n%s", err, out)
	}
	t.Logf("isolated run:\n%s", out)
	return false
}

// osThreads is the number of OS threads of this process.
func osThreads(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("cannot read the thread count: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("Threads: %q", v)
			}
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// inflight is the number of C calls using c.
func (c *Client) inflightCalls() int { return c.calls() }

// eventually polls cond every 10 ms until it holds or within passes.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processingServer answers every query with "processing" and counts the requests.
func processingServer(t *testing.T) (*Client, *atomic.Int64) {
	var n atomic.Int64
	_, c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte(`{"code":"000000","success":true,"message":"ok","data":{"status":"0"}}`))
	})
	return c, &n
}

// stallingServer accepts connections and never answers; it counts the connections.
func stallingServer(t *testing.T) (url string, conns *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + l.Addr().String(), conns
}

// waitMany starts n Waits on c under ctx and returns a channel of their errors.
func waitMany(ctx context.Context, c *Client, n int) <-chan error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Wait(ctx, "0123456789abcdef0123456789abcdef")
			errs <- err
		}()
	}
	return errs
}

// allCancelled checks that n errors arrive within d, each context.Canceled.
func allCancelled(t *testing.T, errs <-chan error, n int, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait %d: want context.Canceled, got %v", i, err)
			}
		case <-timeout:
			t.Fatalf("only %d of %d Waits returned within %v of the cancel", i, n, d)
		}
	}
}

func TestManyConcurrentWaitsHoldFewThreads(t *testing.T) {
	if !isolated(t) {
		return
	}
	c, requests := processingServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 10000
	errs := waitMany(ctx, c, n)
	// Until every Wait has polled at least once (n queries), then one more second.
	most := 0
	var allPolled time.Time
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		most = max(most, osThreads(t))
		if most >= 100 {
			t.Fatalf("%d concurrent Waits: %d OS threads, want fewer than 100", n, most)
		}
		now := time.Now()
		if allPolled.IsZero() && requests.Load() >= n {
			allPolled = now
		}
		if !allPolled.IsZero() && now.Sub(allPolled) > time.Second {
			break
		}
		if now.After(end) {
			t.Fatalf("only %d queries for %d Waits in 30 s", requests.Load(), n)
		}
	}
	cancel()
	allCancelled(t, errs, n, time.Second)
	t.Logf("%d Waits: at most %d OS threads, %d queries", n, most, requests.Load())
}

// mixedCalls starts n goroutines making queries, verifies and confirmations in turn with ctx;
// each sends its call's error.
func mixedCalls(ctx context.Context, c *Client, n int) <-chan error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			var err error
			switch i % 3 {
			case 0:
				_, err = c.Query(ctx, "0123456789abcdef0123456789abcdef")
			case 1:
				_, err = c.Verify(ctx, VerifyRequest{FtID: "2"})
			case 2:
				_, err = c.Confirm(ctx, &Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: "1234"},
					"0123456789abcdef0123456789abcdef")
			}
			errs <- err
		}(i)
	}
	return errs
}

func TestCancelledWaitsFreeTheirThreads(t *testing.T) {
	if !isolated(t) {
		return
	}
	// The server never answers: every poll in flight is blocked in the library.
	url, conns := stallingServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 1000
	errs := waitMany(ctx, c, n)
	if !eventually(5*time.Second, func() bool { return conns.Load() >= maxWaitPolls }) {
		t.Fatalf("only %d polls reached the server", conns.Load())
	}
	before := osThreads(t)
	cancel()
	cancelled := time.Now()
	allCancelled(t, errs, n, time.Second)
	if !eventually(time.Second-time.Since(cancelled), func() bool { return c.inflightCalls() == 0 }) {
		t.Fatalf("%d library calls still run 1 s after the cancel", c.inflightCalls())
	}
	if th := osThreads(t); th >= 100 {
		t.Fatalf("%d OS threads after the cancel (%d before)", th, before)
	}
	t.Logf("threads: %d with %d Waits in flight, %d after the cancel", before, n, osThreads(t))
}

func TestCancelledCallsLeaveTheLibrarySoon(t *testing.T) {
	if !isolated(t) {
		return
	}
	url, conns := stallingServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	const n = 200
	errs := mixedCalls(ctx, c, n)
	// On the library's worker pool (offload.go) at most maxOffloadThreads run, the others queue.
	running := int64(n)
	if offloadMode == offloadAlways {
		running = maxOffloadThreads
	}
	if !eventually(10*time.Second, func() bool { return conns.Load() >= running }) {
		t.Fatalf("only %d of %d calls reached the server", conns.Load(), n)
	}
	cancel()
	cancelled := time.Now()
	allCancelled(t, errs, n, time.Second)
	if !eventually(time.Second-time.Since(cancelled), func() bool { return c.inflightCalls() == 0 }) {
		t.Fatalf("%d library calls still run 1 s after the cancel", c.inflightCalls())
	}
	fmt.Fprintf(os.Stderr, "%d calls left the library within %v\n", n, time.Since(cancelled))
}

func TestWaitRidesOutTransientFailures(t *testing.T) {
	var n atomic.Int64
	_, c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1, 2, 3, 4:
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case 5:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			_, _ = w.Write([]byte(`{"code":"000000","success":true,"message":"ok","data":{"status":"2","mobile":"1"}}`))
		}
	})
	r, err := c.Wait(ctxTimeout(t, 20*time.Second), "0123456789abcdef0123456789abcdef")
	if err != nil || r.Status != StatusSuccess || n.Load() != 6 {
		t.Fatalf("Wait: %+v, %v after %d queries", r, err, n.Load())
	}
	// A lasting failure ends it at once.
	n.Store(100)
	_, c = fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusNotFound)
	})
	_, err = c.Wait(ctxTimeout(t, 20*time.Second), "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindHTTPStatus, ErrHTTPStatus)
}

func TestWaitMakesALastQueryBeforeTheDeadline(t *testing.T) {
	// Success from 0.9 s on; with a 1.5 s deadline the polls at 0, 0.25 and 0.75 s see
	// processing and the next pause (1 s) would pass the deadline: a last query must come.
	start := time.Now()
	_, c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		status := "0"
		if time.Since(start) > 900*time.Millisecond {
			status = "2"
		}
		_, _ = w.Write([]byte(`{"code":"000000","success":true,"message":"ok","data":{"status":"` + status + `"}}`))
	})
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(1500*time.Millisecond))
	defer cancel()
	r, err := c.Wait(ctx, "0123456789abcdef0123456789abcdef")
	if err != nil || r.Status != StatusSuccess {
		t.Fatalf("Wait: %+v, %v after %v", r, err, time.Since(start))
	}
}

func TestHugeDurationsNeverPanic(t *testing.T) {
	cfg := sandboxConfig()
	cfg.Timeout = 1 << 62
	cfg.ConnectTimeout = 1 << 62
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient with huge time-outs: %v", err)
	}
	defer c.Close()
	for _, d := range []time.Duration{1 << 62, maxLimit + time.Millisecond, maxLimit, maxLimit - time.Millisecond, 100 * 24 * time.Hour} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		v, err := c.Verify(ctx, VerifyRequest{FtID: "2"})
		if err != nil {
			t.Fatalf("Verify under a %v deadline: %v", d, err)
		}
		if _, err := c.Query(ctx, v.FtToken); err != nil {
			t.Fatalf("Query under a %v deadline: %v", d, err)
		}
		uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000301", "content": v.Code})
		if r, err := c.Wait(ctx, v.FtToken); err != nil || r.Status != StatusSuccess {
			t.Fatalf("Wait under a %v deadline: %+v, %v", d, r, err)
		}
		cancel()
	}
	// A deadline already past, by far.
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	_, err = c.Query(ctx, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindTimeout, ErrTimeout)
}

func (t *Tracker) inflightCalls() int { return t.calls() }

// TestTrackerWaitsHoldFewThreadsAndCancel: 1,000 Tracker.Waits (32 blocked in the library,
// the others polling from Go) hold fewer than 100 OS threads; cancelled, they all return
// within 1 s and leave the library.
func TestTrackerWaitsHoldFewThreadsAndCancel(t *testing.T) {
	if !isolated(t) {
		return
	}
	c, requests := processingServer(t)
	tr := newMemoryTracker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 1000
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := tr.Wait(ctx, c, "0123456789abcdef0123456789abcdef")
			errs <- err
		}()
	}
	most := 0
	for end := time.Now().Add(30 * time.Second); requests.Load() < 2*n; time.Sleep(10 * time.Millisecond) {
		most = max(most, osThreads(t))
		if time.Now().After(end) {
			t.Fatalf("only %d queries for %d Waits in 30 s", requests.Load(), n)
		}
	}
	if most >= 100 {
		t.Fatalf("%d Tracker.Waits: %d OS threads, want fewer than 100", n, most)
	}
	if busy := tr.inflightCalls(); busy != maxTrackerWaits {
		t.Fatalf("%d Waits blocked in the library, want %d", busy, maxTrackerWaits)
	}
	cancel()
	cancelled := time.Now()
	allCancelled(t, errs, n, time.Second)
	if !eventually(time.Second-time.Since(cancelled), func() bool { return tr.inflightCalls() == 0 && c.inflightCalls() == 0 }) {
		t.Fatalf("library calls still running 1 s after the cancel: tracker %d, client %d", tr.inflightCalls(), c.inflightCalls())
	}
	t.Logf("at most %d OS threads", most)
}

// TestCancelledVerifyIsNeverSent: the verify's connection stalls before the request is sent
// (a proxy that never answers CONNECT), which is retried as a connect time-out. Cancelled,
// the verify sends nothing: no retry, no other connection. Blocking and on the worker pool,
// and with ctx's AfterFunc running late (as a busy scheduler may run it): a verify that
// returned "cancelled" must not be sent afterwards by a retry the late token let through.
func TestCancelledVerifyIsNeverSent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offload int
		late    bool
	}{
		{"blocking", offloadNever, false},
		{"blocking, late AfterFunc", offloadNever, true},
		{"offloaded", offloadAlways, false},
		{"offloaded, late AfterFunc", offloadAlways, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forceOffload(t, tc.offload)
			if tc.late {
				late := func() { time.Sleep(2 * time.Second) }
				testHookBeforeTrigger.Store(&late)
				t.Cleanup(func() { testHookBeforeTrigger.Store(nil) })
			}
			cancelledVerifyIsNeverSent(t)
		})
	}
}

func cancelledVerifyIsNeverSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var connects atomic.Int64
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			connects.Add(1)
			mu.Lock()
			open = append(open, conn)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	}()
	newClient := func(retries int) *Client {
		c, err := NewClient(Config{BaseURL: "https://otp.example.com", AppID: "a", AppSecret: "s",
			Proxy: "http://" + l.Addr().String(), ConnectTimeout: 300 * time.Millisecond, Retries: retries})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Not cancelled, the stalled attempt is retried.
	_, err = newClient(1).Verify(ctxTimeout(t, 10*time.Second), VerifyRequest{FtID: "2"})
	wantKind(t, err, KindTimeout, ErrTimeout)
	if n := connects.Load(); n != 2 {
		t.Fatalf("an uncancelled verify made %d connections, want 2", n)
	}
	connects.Store(0)

	c := newClient(5)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Verify(ctx, VerifyRequest{FtID: "2"}); errc <- err }()
	if !eventually(5*time.Second, func() bool { return connects.Load() == 1 }) {
		t.Fatal("the verify did not reach the proxy")
	}
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	// Its retries would have come within 300 ms plus a pause (and before the late AfterFunc).
	time.Sleep(time.Second)
	if n := connects.Load(); n != 1 {
		t.Fatalf("the cancelled verify went on after it returned: %d connections", n)
	}
	if !eventually(time.Second, func() bool { return c.inflightCalls() == 0 }) {
		t.Fatal("the cancelled verify still runs 1 s after it returned")
	}
}
