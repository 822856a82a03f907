package fotp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// failing503 is a platform that always answers 503 (transient), counting the requests.
func failing503(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// TestNoRetriesDisablesRetries: Retries' zero value is the default (2 retries); NoRetries
// disables them.
func TestNoRetriesDisablesRetries(t *testing.T) {
	for _, tc := range []struct {
		retries int
		want    int32
	}{{0, 3}, {NoRetries, 1}, {1, 2}} {
		s, n := failing503(t)
		c, err := NewClient(Config{BaseURL: s.URL, AppID: "a", AppSecret: "b", Retries: tc.retries})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Query(ctxTimeout(t, 30*time.Second), "tok")
		_ = c.Close()
		if !errors.Is(err, ErrHTTPStatus) || n.Load() != tc.want {
			t.Fatalf("Retries %d: %d requests (want %d), err %v", tc.retries, n.Load(), tc.want, err)
		}
	}
}

func mustPanic(t *testing.T, what, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Fatalf("%s: panic %v, want one naming %q", what, r, want)
		}
	}()
	f()
}

// TestNilHandlersPanicAtRegistration: like http.Handle, a nil function, tracker or client
// fails when the handler is built, not on every callback.
func TestNilHandlersPanicAtRegistration(t *testing.T) {
	mustPanic(t, "CallbackHandler(nil)", "nil handle", func() { CallbackHandler(nil) })
	tr := newMemoryTracker(t)
	c := newSandboxClient(t)
	mustPanic(t, "nil tracker", "nil tracker", func() { TrackedCallbackHandler(nil, c, nil) })
	mustPanic(t, "nil client", "nil client", func() { TrackedCallbackHandler(tr, nil, nil) })
	// A nil function is allowed for the tracked receiver (Tracker.Wait does the work).
	_ = TrackedCallbackHandler(tr, c, nil)
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestCallbackBodyReadErrorIs5xx: a body that cannot be read is the connection's failure, not
// the callback's: 5xx so that the platform delivers it again (400 would be permanent). A body
// over 64 KiB is 413 (TestCallbackHandler).
func TestCallbackBodyReadErrorIs5xx(t *testing.T) {
	called := false
	h := CallbackHandler(func(context.Context, *Callback) error { called = true; return nil })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cb", io.NopCloser(brokenBody{})))
	if rec.Code/100 != 5 || called {
		t.Fatalf("read error: %d (handler called: %v)", rec.Code, called)
	}
}

// TestNewClientFromEnvUsesTheCoreParsing: the environment is read by the C library alone, so
// Go agrees with it (FOTP_TIMEOUT_MS="+50" is 50 ms there; Go's ParseUint would refuse it).
func TestNewClientFromEnvUsesTheCoreParsing(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(400 * time.Millisecond)
		_, _ = io.WriteString(w, `{"code":"000000","success":true,"message":"ok","data":{"status":"2"}}`)
	}))
	t.Cleanup(slow.Close)
	t.Setenv("FOTP_BASE_URL", slow.URL)
	t.Setenv("FOTP_AUTH", "")
	t.Setenv("FOTP_APP_ID", "a")
	t.Setenv("FOTP_APP_SECRET", "b")
	t.Setenv("FOTP_RETRIES", "0")
	t.Setenv("FOTP_TIMEOUT_MS", "+50")
	c, err := NewClientFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Query(ctxTimeout(t, 30*time.Second), "tok"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("FOTP_TIMEOUT_MS=+50 against a 400 ms server: %v, want a timeout", err)
	}
	t.Setenv("FOTP_TIMEOUT_MS", "50ms")
	if _, err := NewClientFromEnv(); !errors.Is(err, ErrConfig) {
		t.Fatalf("FOTP_TIMEOUT_MS=50ms: %v, want a config error", err)
	}
}
