package fotp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// redisServer is a private redis-server on an ephemeral loopback port, stopped when the test
// ends.
type redisServer struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	url  string
}

// startRedis starts a redis-server, or skips the test (loudly) when it is not installed and
// FOTP_REQUIRE_REDIS is unset; with FOTP_REQUIRE_REDIS set, a missing server fails the test.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("FOTP_REQUIRE_REDIS") != "" {
			t.Fatalf("FOTP_REQUIRE_REDIS is set but redis-server is not installed: %v", err)
		}
		t.Skip("*** SKIPPED: redis-server is not installed (apt-get install redis-server); " +
			"set FOTP_REQUIRE_REDIS=1 to make this a failure ***")
	}
	for attempt := 0; attempt < 5; attempt++ {
		// The port is free now; if another process takes it first, redis exits and we retry.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("cannot start redis-server: %v", err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					ready <- true
					_, _ = io.Copy(io.Discard, out) // keep draining its log
					return
				}
			}
			ready <- false // it exited before being ready
		}()
		r := &redisServer{cmd: cmd, done: make(chan struct{}), url: fmt.Sprintf("redis://127.0.0.1:%d/", port)}
		go func() { _ = cmd.Wait(); close(r.done) }()
		select {
		case ok := <-ready:
			if ok {
				t.Cleanup(r.stop)
				return r
			}
			r.stop()
		case <-time.After(15 * time.Second):
			r.stop()
			t.Fatal("redis-server did not get ready within 15 s")
		}
	}
	t.Fatal("redis-server did not start on any of 5 ports")
	return nil
}

// stop kills the server and waits until it has exited; idempotent.
func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// uplinkErr is uplink for goroutines other than the test's.
func uplinkErr(body map[string]any) error {
	b, _ := json.Marshal(body)
	resp, err := http.Post(sb.baseURL+"/sandbox/uplink", "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("uplink: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("uplink answered %d: %s", resp.StatusCode, answer)
	}
	return nil
}

func newMemoryTracker(t testing.TB) *Tracker {
	t.Helper()
	tr, err := NewMemoryTracker()
	if err != nil {
		t.Fatalf("NewMemoryTracker: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func newRedisTracker(t testing.TB, url, ns string) *Tracker {
	t.Helper()
	tr, err := NewRedisTracker(url, ns)
	if err != nil {
		t.Fatalf("NewRedisTracker: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// delivery is one call of a TrackedCallbackHandler's function.
type delivery struct {
	cb *Callback
	m  *Match
}

// trackedReceiver makes tr's TrackedCallbackHandler the receiver of the trackedFtID
// template's callbacks and returns the channel of its calls.
func trackedReceiver(t *testing.T, tr *Tracker) <-chan delivery {
	got := make(chan delivery, 32)
	setCallbackHandler(t, TrackedCallbackHandler(tr, func(ctx context.Context, cb *Callback, m *Match) error {
		got <- delivery{cb, m}
		return nil
	}))
	return got
}

var codeRe = map[int]*regexp.Regexp{
	4: regexp.MustCompile(`^[1-9][0-9]{3}$`),
	5: regexp.MustCompile(`^[1-9][0-9]{4}$`),
	6: regexp.MustCompile(`^[1-9][0-9]{5}$`),
}

// pushEndToEnd runs one push-mode verification: verify through starter, the user's SMS
// delivered three times, each delivery matched by the handler of matcher, and waiter's Wait
// returning the platform's result. Exactly one delivery may be a first one.
func pushEndToEnd(t *testing.T, starter, matcher, waiter *Tracker, mobile string) {
	t.Helper()
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	got := trackedReceiver(t, matcher)

	v, err := starter.Verify(ctx, c, TrackerVerifyRequest{FtID: sb.trackedFtID, CodeLength: 6, ValidityMinutes: 2})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !codeRe[6].MatchString(v.Code) || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(v.FtToken) {
		t.Fatalf("verification %+v", v)
	}
	type result struct {
		r   *QueryResult
		err error
	}
	waited := make(chan result, 1)
	go func() { r, err := waiter.Wait(ctx, c, v.FtToken); waited <- result{r, err} }()

	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": mobile,
		"content": "code " + v.Code, "deliveries": 3})
	first := 0
	for i := 0; i < 3; i++ {
		select {
		case d := <-got:
			if d.m == nil || d.m.FtToken != v.FtToken {
				t.Fatalf("delivery %d matched %+v, want token %s", i, d.m, v.FtToken)
			}
			if d.cb.Code != v.Code || d.cb.Mobile != mobile {
				t.Fatalf("delivery %d: callback %+v", i, d.cb)
			}
			if !d.m.Duplicate {
				first++
			}
		case <-ctx.Done():
			t.Fatalf("got %d of 3 deliveries before the deadline", i)
		}
	}
	if first != 1 {
		t.Fatalf("%d of 3 deliveries were reported as first ones, want exactly 1", first)
	}
	res := <-waited
	if res.err != nil {
		t.Fatalf("Wait: %v", res.err)
	}
	if res.r.Status != StatusSuccess || res.r.Mobile != mobile || res.r.Code != v.Code {
		t.Fatalf("Wait: %+v", res.r)
	}
	// After the deliveries, matching the same callback again is still a duplicate.
	m, err := matcher.Match(&Callback{Mobile: mobile, Sender: "1", SendTime: "t", Code: v.Code})
	if err != nil || m == nil || !m.Duplicate || m.FtToken != v.FtToken {
		t.Fatalf("Match after the deliveries: %+v, %v", m, err)
	}
}

func TestTrackerMemoryPushMode(t *testing.T) {
	tr := newMemoryTracker(t)
	pushEndToEnd(t, tr, tr, tr, "8613800000101")
}

func TestTrackerRedisPushMode(t *testing.T) {
	r := startRedis(t)
	tr := newRedisTracker(t, r.url, "")
	pushEndToEnd(t, tr, tr, tr, "8613800000102")
}

func TestTrackerRedisSharedBetweenTrackers(t *testing.T) {
	// Two app instances: a starts the verification and waits, b receives the callbacks.
	r := startRedis(t)
	a := newRedisTracker(t, r.url, "shared")
	b := newRedisTracker(t, r.url, "shared")
	pushEndToEnd(t, a, b, a, "8613800000103")

	// Another namespace on the same server shares nothing.
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 10*time.Second)
	v, err := a.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	other := newRedisTracker(t, r.url, "other")
	cb := &Callback{Mobile: "8613800000104", Sender: "1", SendTime: "t", Code: v.Code}
	if m, err := other.Match(cb); err != nil || m != nil {
		t.Fatalf("another namespace matched: %+v, %v", m, err)
	}
	if m, err := b.Match(cb); err != nil || m == nil || m.Duplicate || m.FtToken != v.FtToken {
		t.Fatalf("b.Match: %+v, %v", m, err)
	}
	if m, err := a.Match(cb); err != nil || m == nil || !m.Duplicate {
		t.Fatalf("a.Match after b's: %+v, %v", m, err)
	}
}

func TestTrackerMatchUnknownAndInvalid(t *testing.T) {
	tr := newMemoryTracker(t)
	for _, code := range []string{"1234", "0123", "12", "abcd"} {
		m, err := tr.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: code})
		if err != nil || m != nil {
			t.Fatalf("code %q: %+v, %v", code, m, err)
		}
	}
	_, err := tr.Match(nil)
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = tr.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t"})
	fe := wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	if !strings.Contains(fe.Message, "code") {
		t.Fatalf("message does not name the field: %q", fe.Message)
	}
}

func TestTrackerInvalidArguments(t *testing.T) {
	tr := newMemoryTracker(t)
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 10*time.Second)
	for _, tc := range []struct {
		req  TrackerVerifyRequest
		want string
	}{
		{TrackerVerifyRequest{FtID: "2", CodeLength: 3}, "4"},
		{TrackerVerifyRequest{FtID: "2", CodeLength: 7}, "6"},
		{TrackerVerifyRequest{FtID: "2", CodeLength: -1}, "code length"},
		{TrackerVerifyRequest{FtID: "2", ValidityMinutes: 11}, "validity"},
		{TrackerVerifyRequest{FtID: "2", ValidityMinutes: -1}, "validity"},
		{TrackerVerifyRequest{FtID: ""}, "ftId"},
		{TrackerVerifyRequest{FtID: "a\x00b"}, "ftId"},
	} {
		_, err := tr.Verify(ctx, c, tc.req)
		fe := wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
		if !strings.Contains(strings.ToLower(fe.Message), strings.ToLower(tc.want)) {
			t.Errorf("%+v: message %q does not mention %q", tc.req, fe.Message, tc.want)
		}
	}
	_, err := tr.Verify(ctx, nil, TrackerVerifyRequest{FtID: "2"})
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	var nilTracker *Tracker
	_, err = nilTracker.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"})
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = nilTracker.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: "1234"})
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = tr.Wait(ctx, c, "not a token\x00")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = tr.Wait(ctx, c, "")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = tr.Wait(ctx, nil, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	// A nil context is a caller bug: an error, not a crash.
	_, err = tr.Wait(nil, c, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	// An unknown token is the platform's API error, not a wait until the deadline.
	_, err = tr.Wait(ctx, c, "0123456789abcdef0123456789abcdef")
	if fe := wantKind(t, err, KindAPI, ErrAPI); fe.APICode != "300001" {
		t.Fatalf("unknown token: %+v", fe)
	}
}

func TestNewRedisTrackerErrors(t *testing.T) {
	// Nothing listens on this port: the server is unreachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("redis://:hunter2secret@%s/", l.Addr())
	l.Close()
	_, err = NewRedisTracker(closed, "")
	fe := wantKind(t, err, KindNetwork, ErrNetwork)
	if strings.Contains(fe.Message, "hunter2secret") {
		t.Fatalf("the URL's password is in the message: %q", fe.Message)
	}
	_, err = NewRedisTracker("not a url", "")
	wantKind(t, err, KindConfig, ErrConfig)
	_, err = NewRedisTracker("redis://127.0.0.1:1/\x00", "")
	wantKind(t, err, KindConfig, ErrConfig)
	for _, ns := range []string{"bad ns", strings.Repeat("n", 65), "a\x00"} {
		_, err = NewRedisTracker("redis://127.0.0.1:1/", ns)
		wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	}
}

func TestTrackerRedisDownIsANetworkError(t *testing.T) {
	r := startRedis(t)
	tr := newRedisTracker(t, r.url, "down")
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	r.stop()
	_, err = tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"})
	wantKind(t, err, KindNetwork, ErrNetwork)
	_, err = tr.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: v.Code})
	wantKind(t, err, KindNetwork, ErrNetwork)
	_, err = tr.Wait(ctx, c, v.FtToken)
	wantKind(t, err, KindNetwork, ErrNetwork)

	// The tracked handler answers 500 so that the platform delivers the callback again.
	called := false
	h := TrackedCallbackHandler(tr, func(context.Context, *Callback, *Match) error { called = true; return nil })
	rec := httptest.NewRecorder()
	body := `{"mobile":"1","sender":"2","sendTime":"t","code":"` + v.Code + `"}`
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(body)))
	if rec.Code != 500 || called {
		t.Fatalf("store down: %d, handler called %v", rec.Code, called)
	}
}

// exhaust starts verifications of 4-digit codes until half of the 9000 codes are live,
// alternating between the trackers, and checks that the codes are distinct.
func exhaust(t *testing.T, c *Client, trackers ...*Tracker) {
	t.Helper()
	const live = 4500 // half of the codes 1000-9999
	ctx := ctxTimeout(t, 5*time.Minute)
	codes := make(chan string, live)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < live; i += 4 {
				v, err := trackers[i%len(trackers)].Verify(ctx, c, TrackerVerifyRequest{FtID: "2", ValidityMinutes: 1})
				if err != nil {
					errs <- fmt.Errorf("verify %d: %w", i, err)
					return
				}
				codes <- v.Code
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(codes)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for code := range codes {
		if !codeRe[4].MatchString(code) || seen[code] {
			t.Fatalf("code %q is not a fresh 4-digit code", code)
		}
		seen[code] = true
	}
	for i, tr := range trackers {
		_, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"})
		fe := wantKind(t, err, KindExhausted, ErrExhausted)
		if !strings.Contains(fe.Message, "longer codes") {
			t.Fatalf("tracker %d: %q does not say what to do", i, fe.Message)
		}
		// Other lengths are unaffected.
		v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 5})
		if err != nil || !codeRe[5].MatchString(v.Code) {
			t.Fatalf("tracker %d, 5 digits: %+v, %v", i, v, err)
		}
	}
}

func TestTrackerMemoryExhausted(t *testing.T) {
	if testing.Short() {
		t.Skip("4500 verifications")
	}
	exhaust(t, newSandboxClient(t), newMemoryTracker(t))
}

func TestTrackerRedisExhaustedAcrossTrackers(t *testing.T) {
	if testing.Short() {
		t.Skip("4500 verifications")
	}
	r := startRedis(t)
	exhaust(t, newSandboxClient(t), newRedisTracker(t, r.url, "ex"), newRedisTracker(t, r.url, "ex"))
}

func TestTrackedCallbackHandler(t *testing.T) {
	tr := newMemoryTracker(t)
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 10*time.Second)
	v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	var got []delivery
	var fail error
	h := TrackedCallbackHandler(tr, func(ctx context.Context, cb *Callback, m *Match) error {
		if ctx == nil {
			return errors.New("no context")
		}
		got = append(got, delivery{cb, m})
		return fail
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	// The code as the platform may send it: an integer.
	body := `{"mobile":8613800000105,"sender":"1008611","sendTime":"2025-05-15 11:23:34","code":` + v.Code + `}`

	// A failing function: 500, and the platform's next delivery is a duplicate.
	fail = errors.New("secret database password in this error")
	if status, answer := post(body); status != 500 || strings.Contains(answer, "password") {
		t.Fatalf("handler error: %d %q", status, answer)
	}
	fail = nil
	if status, answer := post(body); status != 200 || answer != CallbackAck {
		t.Fatalf("second delivery: %d %q", status, answer)
	}
	if len(got) != 2 || got[0].m == nil || got[0].m.Duplicate || got[0].m.FtToken != v.FtToken ||
		got[1].m == nil || !got[1].m.Duplicate || got[1].m.FtToken != v.FtToken ||
		got[1].cb.Code != v.Code || got[1].cb.Mobile != "8613800000105" {
		t.Fatalf("deliveries %+v", got)
	}

	// A code no live verification holds: m is nil.
	other := "10000"
	if v.Code == other {
		other = "10001"
	}
	if status, _ := post(`{"mobile":"1","sender":"2","sendTime":"t","code":"` + other + `"}`); status != 200 ||
		len(got) != 3 || got[2].m != nil {
		t.Fatalf("unknown code: %d %+v", status, got)
	}

	// Refused requests never reach the function.
	if status, answer := post(`{"mobile":"1","sender":"2","sendTime":"t"}`); status != 400 || !strings.Contains(answer, "code") {
		t.Fatalf("missing field: %d %q", status, answer)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || len(got) != 3 {
		t.Fatalf("GET: %d, %d calls", resp.StatusCode, len(got))
	}

	// A nil function: match and acknowledge; the match wakes Wait.
	v2, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	TrackedCallbackHandler(tr, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/",
		strings.NewReader(`{"mobile":"1","sender":"2","sendTime":"t","code":"`+v2.Code+`"}`)))
	if rec.Code != 200 || rec.Body.String() != CallbackAck {
		t.Fatalf("nil function: %d %q", rec.Code, rec.Body.String())
	}
	if m, err := tr.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: v2.Code}); err != nil || m == nil || !m.Duplicate {
		t.Fatalf("after the nil function's match: %+v, %v", m, err)
	}

	// A closed tracker cannot match: 500, so that the platform tries again later.
	closed := newMemoryTracker(t)
	_ = closed.Close()
	rec = httptest.NewRecorder()
	TrackedCallbackHandler(closed, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	if rec.Code != 500 {
		t.Fatalf("closed tracker: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	TrackedCallbackHandler(nil, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "no tracker") {
		t.Fatalf("nil tracker: %d %q", rec.Code, rec.Body.String())
	}
}

func TestTrackerWaitContext(t *testing.T) {
	tr := newMemoryTracker(t)
	c := newSandboxClient(t)
	v, err := tr.Verify(ctxTimeout(t, 10*time.Second), c, TrackerVerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	// Deadline: nothing happens, so the wait ends at the deadline.
	start := time.Now()
	_, err = tr.Wait(ctxTimeout(t, 700*time.Millisecond), c, v.FtToken)
	wantKind(t, err, KindTimeout, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not a deadline error: %v", err)
	}
	if d := time.Since(start); d < 650*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Wait returned after %v for a 700 ms deadline", d)
	}
	// No deadline: it waits until cancelled, and returns at once then.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := tr.Wait(ctx, c, v.FtToken); errc <- err }()
	select {
	case err := <-errc:
		t.Fatalf("Wait returned before cancel: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	cancelled := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if d := time.Since(cancelled); d > 500*time.Millisecond {
			t.Fatalf("returned %v after cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after cancel")
	}
	// An already cancelled context does nothing, a verify included.
	if _, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"}); err != context.Canceled {
		t.Fatalf("Verify with a cancelled ctx: %v", err)
	}
	if _, err := tr.Wait(ctx, c, v.FtToken); err != context.Canceled {
		t.Fatalf("Wait with a cancelled ctx: %v", err)
	}
}

func TestTrackerWaitPollsWithoutCallback(t *testing.T) {
	// No callback reaches the tracker (template 2 has no callback address): Wait learns the
	// result from the tracker's 2 s queries, also with a 1 s client (its slices stay 5 s).
	cfg := sandboxConfig()
	cfg.Timeout = time.Second
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := newMemoryTracker(t)
	ctx := ctxTimeout(t, 30*time.Second)
	v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 4})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var r *QueryResult
	go func() {
		var err error
		r, err = tr.Wait(ctx, c, v.FtToken)
		done <- err
	}()
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000106", "content": v.Code})
	if err := <-done; err != nil || r.Status != StatusSuccess || r.Mobile != "8613800000106" {
		t.Fatalf("Wait: %+v, %v", r, err)
	}
}

func TestTrackerConcurrentUse(t *testing.T) {
	t.Run("memory", func(t *testing.T) { concurrentUse(t, newMemoryTracker(t)) })
	t.Run("redis", func(t *testing.T) { concurrentUse(t, newRedisTracker(t, startRedis(t).url, "")) })
}

// concurrentUse: goroutines share one tracker and one client; each verifies, its callback
// is matched (twice, by two goroutines racing), and it waits for the result.
func concurrentUse(t *testing.T, tr *Tracker) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 60*time.Second)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	codes := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 4 + i%3})
			if err != nil {
				errs <- fmt.Errorf("verify %d: %w", i, err)
				return
			}
			codes <- v.Code
			mobile := fmt.Sprintf("86138000002%02d", i)
			if err := uplinkErr(map[string]any{"ftToken": v.FtToken, "mobile": mobile, "content": v.Code}); err != nil {
				errs <- err
				return
			}
			cb := &Callback{Mobile: mobile, Sender: "1008611", SendTime: "t", Code: v.Code}
			firsts := make(chan bool, 2)
			var mg sync.WaitGroup
			for j := 0; j < 2; j++ {
				mg.Add(1)
				go func() {
					defer mg.Done()
					m, err := tr.Match(cb)
					if err != nil || m == nil || m.FtToken != v.FtToken {
						errs <- fmt.Errorf("match %d: %+v, %v", i, m, err)
						return
					}
					firsts <- !m.Duplicate
				}()
			}
			mg.Wait()
			close(firsts)
			count := 0
			for f := range firsts {
				if f {
					count++
				}
			}
			if count != 1 {
				errs <- fmt.Errorf("verification %d: %d first matches, want 1", i, count)
			}
			r, err := tr.Wait(ctx, c, v.FtToken)
			if err != nil || r.Status != StatusSuccess || r.Mobile != mobile {
				errs <- fmt.Errorf("wait %d: %+v, %v", i, r, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	close(codes)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for code := range codes {
		if seen[code] {
			t.Errorf("code %s handed out twice", code)
		}
		seen[code] = true
	}
}

func TestTrackerCloseIsIdempotentAndSafeDuringCalls(t *testing.T) {
	tr, err := NewMemoryTracker()
	if err != nil {
		t.Fatal(err)
	}
	freed := make(chan struct{})
	tr.onFree = func() { close(freed) }
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   *QueryResult
		err error
	}
	waited := make(chan result, 1)
	go func() { r, err := tr.Wait(ctx, c, v.FtToken); waited <- result{r, err} }()
	// Wait until the Wait is inside the library (it holds the tracker).
	for {
		tr.mu.Lock()
		busy := tr.inflight > 0
		tr.mu.Unlock()
		if busy {
			break
		}
		runtime.Gosched()
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-freed:
		t.Fatal("the tracker was freed under a running Wait")
	default:
	}
	for _, call := range []func() error{
		func() error { _, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2"}); return err },
		func() error {
			_, err := tr.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: v.Code})
			return err
		},
		func() error { _, err := tr.Wait(ctx, c, v.FtToken); return err },
	} {
		err := call()
		wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("closed tracker: %v", err)
		}
	}
	// The running Wait still gets its result; its end frees the tracker.
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000107", "content": v.Code})
	res := <-waited
	if res.err != nil || res.r.Status != StatusSuccess {
		t.Fatalf("Wait across Close: %+v, %v", res.r, res.err)
	}
	select {
	case <-freed:
	case <-time.After(5 * time.Second):
		t.Fatal("the tracker was not freed after its last call")
	}
}

func TestFinalizerFreesAForgottenTracker(t *testing.T) {
	freed := make(chan struct{})
	func() {
		tr, err := NewMemoryTracker()
		if err != nil {
			t.Fatal(err)
		}
		tr.onFree = func() { close(freed) }
		if _, err := tr.Match(&Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: "1234"}); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-deadline:
			t.Fatal("the finalizer did not free an unreachable tracker")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func BenchmarkTrackerMatch(b *testing.B) {
	tr := newMemoryTracker(b)
	c := newSandboxClient(b)
	v, err := tr.Verify(context.Background(), c, TrackerVerifyRequest{FtID: "2"})
	if err != nil {
		b.Fatal(err)
	}
	cb := &Callback{Mobile: "8613800000108", Sender: "1008611", SendTime: "t", Code: v.Code}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m, err := tr.Match(cb); err != nil || m == nil {
			b.Fatalf("%+v, %v", m, err)
		}
	}
}
