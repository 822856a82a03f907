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
	"sync/atomic"
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

// trackedReceiver makes the TrackedCallbackHandler of tr and c the receiver of the
// trackedFtID template's callbacks and returns the channel of its function's calls.
func trackedReceiver(t *testing.T, tr *Tracker, c *Client) <-chan delivery {
	got := make(chan delivery, 32)
	setCallbackHandler(t, TrackedCallbackHandler(tr, c, func(ctx context.Context, cb *Callback, m *Match) error {
		got <- delivery{cb, m}
		return nil
	}))
	return got
}

// acceptedDeliveries is the number of the sandbox's deliveries of ftToken's callback that
// the receiver acknowledged.
func acceptedDeliveries(t testing.TB, ftToken string) int {
	t.Helper()
	resp, err := http.Get(sb.baseURL + "/sandbox/sessions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Sessions []struct {
			FtToken   string `json:"ftToken"`
			Callbacks []struct {
				Accepted bool `json:"accepted"`
			} `json:"callbacks"`
		} `json:"sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range list.Sessions {
		if s.FtToken == ftToken {
			for _, a := range s.Callbacks {
				if a.Accepted {
					n++
				}
			}
		}
	}
	return n
}

// awaitAccepted waits until n deliveries of ftToken's callback were acknowledged.
func awaitAccepted(ctx context.Context, t testing.TB, ftToken string, n int) {
	t.Helper()
	for acceptedDeliveries(t, ftToken) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d deliveries acknowledged before the deadline", acceptedDeliveries(t, ftToken), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var codeRe = map[int]*regexp.Regexp{
	4: regexp.MustCompile(`^[1-9][0-9]{3}$`),
	5: regexp.MustCompile(`^[1-9][0-9]{4}$`),
	6: regexp.MustCompile(`^[1-9][0-9]{5}$`),
}

// pushEndToEnd runs one push-mode verification: verify through starter, the user's SMS
// delivered three times to the receiver of settler, and waiter's Wait returning the
// platform's result. The receiver's function runs once, for the first delivery; the other
// two are acknowledged without it.
func pushEndToEnd(t *testing.T, starter, settler, waiter *Tracker, mobile string) {
	t.Helper()
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	got := trackedReceiver(t, settler, c)

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
	select {
	case d := <-got:
		if d.m == nil || d.m.FtToken != v.FtToken || d.m.Duplicate {
			t.Fatalf("first delivery settled as %+v, want token %s", d.m, v.FtToken)
		}
		if d.cb.Code != v.Code || d.cb.Mobile != mobile {
			t.Fatalf("first delivery: callback %+v", d.cb)
		}
	case <-ctx.Done():
		t.Fatal("the receiver's function was not called before the deadline")
	}
	awaitAccepted(ctx, t, v.FtToken, 3)
	select {
	case d := <-got:
		t.Fatalf("the function ran again for a repeated delivery: %+v", d.m)
	default:
	}
	res := <-waited
	if res.err != nil {
		t.Fatalf("Wait: %v", res.err)
	}
	if res.r.Status != StatusSuccess || res.r.Mobile != mobile || res.r.Code != v.Code {
		t.Fatalf("Wait: %+v", res.r)
	}
	// Settling the same callback again is a duplicate, in any tracker sharing the store.
	cb := &Callback{Mobile: mobile, Sender: "1", SendTime: "t", Code: v.Code}
	for _, tr := range []*Tracker{settler, starter} {
		m, err := tr.Settle(ctx, c, cb)
		if err != nil || m == nil || !m.Duplicate || m.FtToken != v.FtToken {
			t.Fatalf("Settle after the deliveries: %+v, %v", m, err)
		}
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

	// Another namespace on the same server shares nothing (Match has records of its own).
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

func TestTrackerRedisDown(t *testing.T) {
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
	_, err = tr.Settle(ctx, c, &Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: v.Code})
	wantKind(t, err, KindNetwork, ErrNetwork)

	// The receiver answers 503 (nothing consumed) so that the platform delivers again.
	called := false
	h := TrackedCallbackHandler(tr, c, func(context.Context, *Callback, *Match) error { called = true; return nil })
	rec := httptest.NewRecorder()
	body := `{"mobile":"8613800000109","sender":"2","sendTime":"t","code":"` + v.Code + `"}`
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(body)))
	if rec.Code != 503 || called {
		t.Fatalf("store down: %d, handler called %v", rec.Code, called)
	}

	// Wait goes on by polling the platform.
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000109", "content": v.Code})
	res, err := tr.Wait(ctx, c, v.FtToken)
	if err != nil || res.Status != StatusSuccess {
		t.Fatalf("Wait with the store down: %+v, %v", res, err)
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

// receiverPost posts body to h and returns the status and answer.
func receiverPost(h http.Handler, body string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cb", strings.NewReader(body)))
	return rec.Code, rec.Body.String()
}

func callbackBody(mobile, code string) string {
	return `{"mobile":"` + mobile + `","sender":"1008611","sendTime":"2025-05-15 11:23:34","code":"` + code + `"}`
}

// TestTrackedCallbackHandler checks each answer of CONTRACT section 8's receiver list.
func TestTrackedCallbackHandler(t *testing.T) {
	tr := newMemoryTracker(t)
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 20*time.Second)
	v, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	var got []delivery
	var fail error
	h := TrackedCallbackHandler(tr, c, func(ctx context.Context, cb *Callback, m *Match) error {
		if ctx == nil {
			return errors.New("no context")
		}
		got = append(got, delivery{cb, m})
		return fail
	})
	const mobile = "8613800000105"
	// The code as the platform may send it: an integer.
	genuine := `{"mobile":8613800000105,"sender":"1008611","sendTime":"2025-05-15 11:23:34","code":` + v.Code + `}`

	// Before the user's SMS the platform confirms nothing: 503, nothing consumed.
	if status, _ := receiverPost(h, genuine); status != 503 || len(got) != 0 {
		t.Fatalf("unconfirmed: %d, %d calls", status, len(got))
	}
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": mobile, "content": v.Code})
	// A forged callback (another mobile) is not confirmed either: 503.
	if status, _ := receiverPost(h, callbackBody("8613900000000", v.Code)); status != 503 || len(got) != 0 {
		t.Fatalf("forged: %d, %d calls", status, len(got))
	}

	// A failing function: the settlement is undone and the answer is 500 (no details) ...
	fail = errors.New("secret database password in this error")
	if status, answer := receiverPost(h, genuine); status != 500 || strings.Contains(answer, "password") {
		t.Fatalf("function error: %d %q", status, answer)
	}
	// ... and a panicking one too (net/http recovers the panic; the settlement is undone).
	panicking := TrackedCallbackHandler(tr, c, func(context.Context, *Callback, *Match) error { panic("boom") })
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach net/http")
			}
		}()
		receiverPost(panicking, genuine)
	}()
	// So the next delivery is the first again.
	fail = nil
	if status, answer := receiverPost(h, genuine); status != 200 || answer != CallbackAck {
		t.Fatalf("next delivery: %d %q", status, answer)
	}
	if len(got) != 2 || got[1].m == nil || got[1].m.Duplicate || got[1].m.FtToken != v.FtToken ||
		got[1].cb.Code != v.Code || got[1].cb.Mobile != mobile {
		t.Fatalf("deliveries %+v", got)
	}
	// A repeated delivery: the ack, without the function.
	if status, answer := receiverPost(h, genuine); status != 200 || answer != CallbackAck || len(got) != 2 {
		t.Fatalf("duplicate: %d %q, %d calls", status, answer, len(got))
	}

	// A code no live verification holds: the function with a nil match, then the ack; an
	// error from it answers 500.
	other := "10000"
	if v.Code == other {
		other = "10001"
	}
	if status, answer := receiverPost(h, callbackBody("1", other)); status != 200 || answer != CallbackAck ||
		len(got) != 3 || got[2].m != nil {
		t.Fatalf("unknown code: %d %+v", status, got)
	}
	fail = errors.New("down")
	if status, _ := receiverPost(h, callbackBody("1", other)); status != 500 {
		t.Fatalf("unknown code, failing function: %d", status)
	}
	fail = nil

	// Refused requests never reach the function.
	n := len(got)
	if status, answer := receiverPost(h, `{"mobile":"1","sender":"2","sendTime":"t"}`); status != 400 || !strings.Contains(answer, "code") {
		t.Fatalf("missing field: %d %q", status, answer)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/cb", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" || len(got) != n {
		t.Fatalf("GET: %d, %d calls", rec.Code, len(got))
	}

	// A nil function: settle and acknowledge; settling wakes Wait.
	v2, err := tr.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	uplink(t, map[string]any{"ftToken": v2.FtToken, "mobile": mobile, "content": v2.Code})
	if status, answer := receiverPost(TrackedCallbackHandler(tr, c, nil), callbackBody(mobile, v2.Code)); status != 200 || answer != CallbackAck {
		t.Fatalf("nil function: %d %q", status, answer)
	}
	if m, err := tr.Settle(ctx, c, &Callback{Mobile: mobile, Sender: "2", SendTime: "t", Code: v2.Code}); err != nil || m == nil || !m.Duplicate {
		t.Fatalf("after the nil function's settlement: %+v, %v", m, err)
	}

	// Settling fails (closed tracker, closed client): 503, nothing consumed.
	closed := newMemoryTracker(t)
	_ = closed.Close()
	if status, _ := receiverPost(TrackedCallbackHandler(closed, c, nil), genuine); status != 503 {
		t.Fatalf("closed tracker: %d", status)
	}
	closedClient, err := NewClient(sandboxConfig())
	if err != nil {
		t.Fatal(err)
	}
	_ = closedClient.Close()
	if status, _ := receiverPost(TrackedCallbackHandler(tr, closedClient, nil), genuine); status != 503 {
		t.Fatalf("closed client: %d", status)
	}
	// Configuration mistakes panic at registration (TestNilHandlersPanicAtRegistration).
}

// TestTrackedCallbackHandlerOneRunAtATime: concurrent deliveries of one callback never run the
// function at the same time; it fails twice, and the third run succeeds, exactly once.
func TestTrackedCallbackHandlerOneRunAtATime(t *testing.T) {
	t.Run("memory", func(t *testing.T) { tr := newMemoryTracker(t); oneRunAtATime(t, tr, tr) })
	t.Run("redis", func(t *testing.T) {
		url := startRedis(t).url
		oneRunAtATime(t, newRedisTracker(t, url, "one"), newRedisTracker(t, url, "one"))
	})
}

// oneRunAtATime: a and b are two receivers' trackers (with Redis: two app instances).
func oneRunAtATime(t *testing.T, a, b *Tracker) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 60*time.Second)
	v, err := a.Verify(ctx, c, TrackerVerifyRequest{FtID: "2", CodeLength: 6})
	if err != nil {
		t.Fatal(err)
	}
	const mobile = "8613800000110"
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": mobile, "content": v.Code})
	var running, most, runs, successes atomic.Int64
	fn := func(ctx context.Context, cb *Callback, m *Match) error {
		now := running.Add(1)
		defer running.Add(-1)
		for {
			old := most.Load()
			if now <= old || most.CompareAndSwap(old, now) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		if runs.Add(1) <= 2 {
			return errors.New("not yet")
		}
		successes.Add(1)
		return nil
	}
	handlers := []http.Handler{TrackedCallbackHandler(a, c, fn), TrackedCallbackHandler(b, c, fn)}
	body := callbackBody(mobile, v.Code)
	for round := 0; successes.Load() == 0; round++ {
		if ctx.Err() != nil {
			t.Fatalf("no successful run after %d rounds", round)
		}
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				status, _ := receiverPost(handlers[i%2], body)
				if status != 200 && status != 500 {
					t.Errorf("delivery answered %d", status)
				}
			}(i)
		}
		wg.Wait()
	}
	// Later deliveries are acknowledged without the function.
	for i := 0; i < 4; i++ {
		if status, _ := receiverPost(handlers[i%2], body); status != 200 {
			t.Fatalf("delivery after the success: %d", status)
		}
	}
	if most.Load() != 1 || successes.Load() != 1 || runs.Load() != 3 {
		t.Fatalf("at most %d runs at once, %d runs, %d successes; want 1, 3, 1", most.Load(), runs.Load(), successes.Load())
	}
}

// TestForgedCallbacksNeverHideTheGenuineOne posts a forged callback for every 4-digit code
// while verifications are live, then the sandbox delivers the genuine ones 3 times each:
// each is settled exactly once (the function runs once per verification, with the genuine
// callback). With Redis the forgeries and the genuine deliveries reach two trackers sharing
// the store.
func TestForgedCallbacksNeverHideTheGenuineOne(t *testing.T) {
	t.Run("memory", func(t *testing.T) { tr := newMemoryTracker(t); forgedThenGenuine(t, tr, tr) })
	t.Run("redis", func(t *testing.T) {
		url := startRedis(t).url
		forgedThenGenuine(t, newRedisTracker(t, url, "forged"), newRedisTracker(t, url, "forged"))
	})
}

func forgedThenGenuine(t *testing.T, a, b *Tracker) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 120*time.Second)
	const live = 5
	tokens := map[string]string{} // code -> token
	for i := 0; i < live; i++ {
		v, err := a.Verify(ctx, c, TrackerVerifyRequest{FtID: sb.trackedFtID, CodeLength: 4, ValidityMinutes: 2})
		if err != nil {
			t.Fatal(err)
		}
		tokens[v.Code] = v.FtToken
	}
	var mu sync.Mutex
	firsts := map[string]int{} // token -> runs with a match
	fn := func(ctx context.Context, cb *Callback, m *Match) error {
		if m != nil {
			mu.Lock()
			firsts[m.FtToken]++
			mu.Unlock()
		}
		return nil
	}
	// The forgeries, split between both receivers: every code, a mobile of the attacker's.
	forger := []http.Handler{TrackedCallbackHandler(a, c, fn), TrackedCallbackHandler(b, c, fn)}
	unconfirmed := 0
	for code := 1000; code <= 9999; code++ {
		status, _ := receiverPost(forger[code%2], callbackBody("8613900000000", fmt.Sprint(code)))
		switch {
		case status == 503:
			unconfirmed++
		case status != 200:
			t.Fatalf("forged code %d: %d", code, status)
		}
	}
	if unconfirmed != live || len(firsts) != 0 {
		t.Fatalf("forgeries: %d unconfirmed (want %d), function ran with a match %v", unconfirmed, live, firsts)
	}
	// The genuine deliveries, 3 per verification, through b's receiver.
	setCallbackHandler(t, TrackedCallbackHandler(b, c, fn))
	i := 0
	for code, tok := range tokens {
		uplink(t, map[string]any{"ftToken": tok, "mobile": fmt.Sprintf("86138000003%02d", i), "content": code, "deliveries": 3})
		i++
	}
	for _, tok := range tokens {
		awaitAccepted(ctx, t, tok, 3)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tok := range tokens {
		if firsts[tok] != 1 {
			t.Errorf("verification %s settled %d times, want exactly once", tok, firsts[tok])
		}
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
		if tr.calls() > 0 {
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
	collectUntilClosed(t, freed, "tracker")
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
