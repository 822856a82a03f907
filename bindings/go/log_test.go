package fotp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	logSecret = "go-logging-secret-4c2"
	logMobile = "6285273203675"
	logCode   = "5777"
	logToken  = "44cadc6071214b968b3b3bb1cb5a6c24"
	logQuery  = `{"code":"000000","success":true,"message":"ok","data":{"status":"2","mobile":"` +
		logMobile + `","code":"` + logCode + `","sender":"1008611"}}`
)

// captureHandler keeps every record, and renders them as text too (for the secret search).
type captureHandler struct {
	mu      sync.Mutex
	level   slog.Level
	records []slog.Record
	text    bytes.Buffer
}

func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return slog.NewTextHandler(&h.text, &slog.HandlerOptions{Level: slog.LevelDebug - 4}).Handle(ctx, r)
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func attrsOf(r slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
	return m
}

func TestLoggerGetsEachAttemptOfARetriedQuery(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var headers []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(logQuery))
	}))
	defer srv.Close()
	h := &captureHandler{level: slog.LevelInfo}
	c, err := NewClient(Config{BaseURL: srv.URL, AppID: "go-app", AppSecret: logSecret, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A client without a logger: its events reach no one.
	quiet, err := NewClient(Config{BaseURL: srv.URL, AppID: "go-app", AppSecret: logSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()

	if _, err := c.Query(context.Background(), logToken); err != nil {
		t.Fatal(err)
	}
	if _, err := quiet.Query(context.Background(), logToken); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var http []slog.Record
	for _, r := range h.records {
		if r.Message == "http attempt" {
			http = append(http, r)
		}
	}
	if len(http) != 2 {
		t.Fatalf("want 2 attempt records, got %d:\n%s", len(http), h.text.String())
	}
	first, second := attrsOf(http[0]), attrsOf(http[1])
	for i, a := range []map[string]slog.Value{first, second} {
		if http[i].Level != slog.LevelInfo || a["op"].String() != "query" || a["method"].String() != "POST" ||
			a["path"].String() != "/flash/opt/query" || a["attempt"].Kind() != slog.KindInt64 ||
			a["attempt"].Int64() != int64(i+1) || a["elapsed_ms"].Kind() != slog.KindInt64 {
			t.Fatalf("record %d: %v", i, a)
		}
	}
	if first["status"].Int64() != 503 || first["retry_in_ms"].Int64() != 1000 {
		t.Fatalf("first attempt: %v", first)
	}
	if _, ok := second["retry_in_ms"]; ok || second["status"].Int64() != 200 {
		t.Fatalf("second attempt: %v", second)
	}
	text := h.text.String()
	forbidden := []string{logSecret, logMobile, logCode}
	mu.Lock()
	for _, hd := range headers {
		for k, vs := range hd {
			switch strings.ToLower(k) {
			case "content-type", "accept", "user-agent", "content-length", "accept-encoding":
				continue
			}
			forbidden = append(forbidden, vs...)
		}
	}
	mu.Unlock()
	if len(forbidden) < 6 {
		t.Fatalf("the signing headers were not seen: %v", forbidden)
	}
	for _, f := range forbidden {
		if strings.Contains(text, f) {
			t.Fatalf("%q in the records:\n%s", f, text)
		}
	}
}

func TestLoggerOfAClosedClientGetsNothing(t *testing.T) {
	h := &captureHandler{level: slog.LevelInfo}
	c, err := NewClient(Config{BaseURL: "http://127.0.0.1:9", AppID: "a", AppSecret: "s", Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	// A refused callback is an event of no client: registered loggers get it, this one no more.
	if _, err := ParseCallback([]byte("{")); err == nil {
		t.Fatal("expected a decode error")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.records) != 0 {
		t.Fatalf("records after Close:\n%s", h.text.String())
	}
}

func TestLoggerGetsRefusedCallbacksWithoutTheirBody(t *testing.T) {
	h := &captureHandler{level: slog.LevelInfo}
	c, err := NewClient(Config{BaseURL: "http://127.0.0.1:9", AppID: "a", AppSecret: "s", Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := ParseCallback([]byte(`{"mobile":"8615711666132","code":["5776"]}`)); err == nil {
		t.Fatal("expected a decode error")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.records) != 1 || h.records[0].Message != "callback refused" {
		t.Fatalf("records:\n%s", h.text.String())
	}
	if strings.Contains(h.text.String(), "8615711666132") || strings.Contains(h.text.String(), "5776") {
		t.Fatalf("the body in the records:\n%s", h.text.String())
	}
}

func TestLoggerGetsWhatTheReceiverRefuses(t *testing.T) {
	h := &captureHandler{level: slog.LevelInfo}
	c, err := NewClient(Config{BaseURL: "http://127.0.0.1:9", AppID: "a", AppSecret: "s", Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := httptest.NewRecorder()
	CallbackHandler(func(context.Context, *Callback) error { return nil }).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("status %d", rec.Code)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.records) != 1 || h.records[0].Message != "callback refused" ||
		!strings.Contains(attrsOf(h.records[0])["reason"].String(), "method GET") {
		t.Fatalf("records:\n%s", h.text.String())
	}
}

// Clients with and without loggers made and closed on several goroutines while calls run: each
// call's records reach its own client's logger only (run with -race).
func TestLoggersOfConcurrentClientsStayApart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(logQuery))
	}))
	defer srv.Close()
	const goroutines, calls = 8, 20
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				h := &captureHandler{level: slog.LevelInfo}
				cfg := Config{BaseURL: srv.URL, AppID: "a", AppSecret: "s"}
				if g%2 == 0 {
					cfg.Logger = slog.New(h)
				}
				c, err := NewClient(cfg)
				if err != nil {
					errs <- err.Error()
					return
				}
				for i := 0; i < calls; i++ {
					if _, err := c.Query(context.Background(), logToken); err != nil {
						errs <- err.Error()
					}
				}
				_ = c.Close()
				h.mu.Lock()
				n := 0
				for _, r := range h.records {
					if r.Message == "http attempt" {
						n++
					}
				}
				h.mu.Unlock()
				if want := map[bool]int{true: calls, false: 0}[g%2 == 0]; n != want {
					errs <- fmt.Sprintf("goroutine %d: %d attempt records, want %d", g, n, want)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
