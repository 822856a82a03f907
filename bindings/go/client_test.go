package fotp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func wantKind(t *testing.T, err error, kind ErrorKind, sentinel *Error) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got nil", kind)
	}
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("want *fotp.Error, got %T: %v", err, err)
	}
	if fe.Kind != kind {
		t.Fatalf("want kind %s, got %s: %v", kind, fe.Kind, err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, sentinel of %s) is false", err, kind)
	}
	return fe
}

func TestPullModeSuccess(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	v, err := c.Verify(ctx, VerifyRequest{FtID: "2", Code: "482913", ValidityMinutes: 3})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if v.Code != "482913" || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(v.FtToken) ||
		!strings.Contains(v.URL, v.FtToken) || v.MessageID == "" {
		t.Fatalf("unexpected verification %+v", v)
	}
	r, err := c.Query(ctx, v.FtToken)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if r.Status != StatusProcessing || r.RawStatus != "0" || r.Status.IsFinal() {
		t.Fatalf("fresh session: %+v", r)
	}
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000001",
		"content": "my code is " + v.Code})
	r, err = c.Wait(ctx, v.FtToken)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if r.Status != StatusSuccess || r.RawStatus != "2" || r.Mobile != "8613800000001" ||
		r.Code != v.Code || r.Sender == "" || r.SendTime == "" {
		t.Fatalf("after uplink: %+v", r)
	}
}

func TestPullModeFailedAndDefaults(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	// No code, no validity: the platform picks them (the sandbox: 4 digits).
	v, err := c.Verify(ctx, VerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !regexp.MustCompile(`^[0-9]{4}$`).MatchString(v.Code) {
		t.Fatalf("default code %q", v.Code)
	}
	wrong := "0000"
	if v.Code == wrong {
		wrong = "1111"
	}
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000002", "content": wrong})
	r, err := c.Wait(ctx, v.FtToken)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if r.Status != StatusFailed || r.RawStatus != "1" || !r.Status.IsFinal() {
		t.Fatalf("wrong code: %+v", r)
	}
}

func TestPushModeWithConfirm(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	got := make(chan *Callback, 8)
	setOnCallback(t, func(cb *Callback) error { got <- cb; return nil })

	v, err := c.Verify(ctx, VerifyRequest{FtID: sb.pushFtID})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// Two deliveries of the same result: the receiver must see both (duplicate handling).
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000003",
		"content": "code " + v.Code + " please", "deliveries": 2})
	var cbs []*Callback
	for len(cbs) < 2 {
		select {
		case cb := <-got:
			cbs = append(cbs, cb)
		case <-ctx.Done():
			t.Fatalf("got %d of 2 callbacks before the deadline", len(cbs))
		}
	}
	cb := cbs[0]
	if cb.Mobile != "8613800000003" || cb.Code != v.Code || cb.Sender == "" || cb.SendTime == "" ||
		!strings.Contains(cb.Content, v.Code) {
		t.Fatalf("callback %+v", cb)
	}
	if *cbs[1] != *cb {
		t.Fatalf("the two deliveries differ: %+v / %+v", cb, cbs[1])
	}
	ok, err := c.Confirm(ctx, cb, v.FtToken)
	if err != nil || !ok {
		t.Fatalf("Confirm(genuine) = %v, %v", ok, err)
	}
	forged := *cb
	forged.Code = "9999"
	if forged.Code == cb.Code {
		forged.Code = "8888"
	}
	if ok, err := c.Confirm(ctx, &forged, v.FtToken); err != nil || ok {
		t.Fatalf("Confirm(forged code) = %v, %v", ok, err)
	}
	forged = *cb
	forged.Mobile = "8613899999999"
	if ok, err := c.Confirm(ctx, &forged, v.FtToken); err != nil || ok {
		t.Fatalf("Confirm(forged mobile) = %v, %v", ok, err)
	}
	// A callback that cannot be a real one is refused before anything is sent.
	_, err = c.Confirm(ctx, &Callback{Mobile: "1"}, v.FtToken)
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	_, err = c.Confirm(ctx, nil, v.FtToken)
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	// An error of the query is an error, not "false".
	_, err = c.Confirm(ctx, cb, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindAPI, ErrAPI)
}

func TestPushHandlerErrorMakesSandboxRetry(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 60*time.Second)
	var calls atomic.Int32
	done := make(chan *Callback, 1)
	setOnCallback(t, func(cb *Callback) error {
		if calls.Add(1) == 1 {
			return errors.New("database down")
		}
		done <- cb
		return nil
	})
	v, err := c.Verify(ctx, VerifyRequest{FtID: sb.pushFtID})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000004", "content": v.Code})
	select {
	case cb := <-done:
		if cb.Code != v.Code {
			t.Fatalf("retried callback %+v", cb)
		}
	case <-ctx.Done():
		t.Fatalf("the sandbox did not retry after a 500 (calls: %d)", calls.Load())
	}
}

func TestNewClientFromEnv(t *testing.T) {
	t.Setenv("FOTP_BASE_URL", sb.baseURL)
	t.Setenv("FOTP_AUTH", "")
	t.Setenv("FOTP_APP_ID", sb.appID)
	t.Setenv("FOTP_APP_SECRET", sb.appSecret)
	t.Setenv("FOTP_TIMEOUT_MS", "4000")
	c, err := NewClientFromEnv()
	if err != nil {
		t.Fatalf("NewClientFromEnv: %v", err)
	}
	defer c.Close()
	if _, err := c.Verify(ctxTimeout(t, 10*time.Second), VerifyRequest{FtID: "2"}); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	t.Setenv("FOTP_BASE_URL", "")
	_, err = NewClientFromEnv()
	wantKind(t, err, KindConfig, ErrConfig)
	t.Setenv("FOTP_BASE_URL", sb.baseURL)
	t.Setenv("FOTP_TIMEOUT_MS", "soon")
	_, err = NewClientFromEnv()
	if fe := wantKind(t, err, KindConfig, ErrConfig); !strings.Contains(fe.Message, "FOTP_TIMEOUT_MS") {
		t.Fatalf("message does not name the variable: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no base URL", Config{AppID: "a", AppSecret: "s"}, "base URL"},
		{"no credentials", Config{BaseURL: "http://127.0.0.1:1"}, "credentials"},
		{"insecure", Config{BaseURL: "http://example.com", AppID: "a", AppSecret: "s"}, ""},
		{"unparsable", Config{BaseURL: "::not a url", AppID: "a", AppSecret: "s"}, ""},
		{"empty secret", Config{BaseURL: "http://127.0.0.1:1", AppID: "a"}, "secret"},
		{"both schemes", Config{BaseURL: "http://127.0.0.1:1", AppID: "a", AppSecret: "s", AppKey: "k", Token: "t"}, "not both"},
		{"negative timeout", Config{BaseURL: "http://127.0.0.1:1", AppID: "a", AppSecret: "s", Timeout: -time.Second}, "Timeout"},
		{"NUL", Config{BaseURL: "http://127.0.0.1:1\x00x", AppID: "a", AppSecret: "s"}, "NUL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(tc.cfg)
			if c != nil {
				t.Fatalf("got a client")
			}
			fe := wantKind(t, err, KindConfig, ErrConfig)
			if !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("message %q does not mention %q", fe.Message, tc.want)
			}
		})
	}
	// Explicitly allowed, plain HTTP to any host builds (nothing is sent yet).
	c, err := NewClient(Config{BaseURL: "http://example.com", AppID: "a", AppSecret: "s", AllowInsecureHTTP: true})
	if err != nil {
		t.Fatalf("AllowInsecureHTTP: %v", err)
	}
	c.Close()
	// The token scheme builds too.
	c, err = NewClient(Config{BaseURL: "https://otp.example.com", AppKey: "k", Token: "t"})
	if err != nil {
		t.Fatalf("token scheme: %v", err)
	}
	c.Close()
}

func TestSecretsNeverShown(t *testing.T) {
	cfg := Config{BaseURL: sb.baseURL, AppID: sb.appID, AppSecret: "very-secret-value", Token: "tok-secret"}
	cfg.Proxy = "http://user:proxy-password@proxy.example:3128"
	var text, jsonOut bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "cfg", cfg)
	slog.New(slog.NewJSONHandler(&jsonOut, nil)).Info("config", "cfg", &cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		fmt.Sprintf("%s", cfg), fmt.Sprintf("%d", cfg), fmt.Sprintf("%+v", struct{ C Config }{cfg}),
		text.String(), jsonOut.String()} {
		if strings.Contains(s, "very-secret-value") || strings.Contains(s, "tok-secret") ||
			strings.Contains(s, "proxy-password") || !strings.Contains(s, sb.appID) {
			t.Fatalf("secret printed (or the app id not): %s", s)
		}
	}
	// A wrong secret is an API error that does not echo the secret.
	c, err := NewClient(Config{BaseURL: sb.baseURL, AppID: sb.appID, AppSecret: "very-secret-value"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Verify(ctxTimeout(t, 10*time.Second), VerifyRequest{FtID: "2"})
	fe := wantKind(t, err, KindAPI, ErrAPI)
	if fe.APICode != "100001" || strings.Contains(err.Error(), "very-secret-value") {
		t.Fatalf("bad secret: %#v", fe)
	}
}

func TestInvalidArguments(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 10*time.Second)
	verifyCases := []struct {
		req  VerifyRequest
		want string
	}{
		{VerifyRequest{FtID: ""}, "ftId"},
		{VerifyRequest{FtID: strings.Repeat("x", 65)}, "ftId"},
		{VerifyRequest{FtID: "a\nb"}, "ftId"},
		{VerifyRequest{FtID: "2", Code: "12"}, "code"},
		{VerifyRequest{FtID: "2", Code: "12a4"}, "code"},
		{VerifyRequest{FtID: "2", ValidityMinutes: 11}, "validityPeriod"},
		{VerifyRequest{FtID: "2", ValidityMinutes: -1}, "validityPeriod"},
		{VerifyRequest{FtID: "2\x00"}, "ftId"},
		{VerifyRequest{FtID: "\xff\xfe"}, ""},
	}
	for _, tc := range verifyCases {
		_, err := c.Verify(ctx, tc.req)
		fe := wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
		if !strings.Contains(fe.Message, tc.want) {
			t.Fatalf("%+v: message %q does not name %q", tc.req, fe.Message, tc.want)
		}
	}
	for _, tok := range []string{"", "has space", strings.Repeat("a", 129), "a\x00b"} {
		_, err := c.Query(ctx, tok)
		wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
		_, err = c.Wait(ctx, tok)
		wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	}
	// A nil context is a caller bug: an error, not a crash.
	_, err := c.Query(nil, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
}

func TestAPIErrorUnknownToken(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 10*time.Second)
	_, err := c.Query(ctx, "0123456789abcdef0123456789abcdef")
	fe := wantKind(t, err, KindAPI, ErrAPI)
	if fe.APICode != "300001" || fe.HTTPStatus != 200 || fe.Message == "" {
		t.Fatalf("unknown token: %#v", fe)
	}
	_, err = c.Wait(ctx, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindAPI, ErrAPI)
	_, err = c.Verify(ctx, VerifyRequest{FtID: "no-such-template"})
	if fe := wantKind(t, err, KindAPI, ErrAPI); fe.APICode != "200002" {
		t.Fatalf("unknown ftId: %#v", fe)
	}
}

// fakeServer answers every request with handler and records the User-Agent.
func fakeServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{BaseURL: srv.URL, AppID: "a", AppSecret: "s", Retries: -1,
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestHTTPStatusDecodeAndUserAgent(t *testing.T) {
	var ua atomic.Value
	_, c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		switch r.URL.Path {
		case "/flash/opt/verify":
			http.Error(w, "no such page", http.StatusNotFound)
		case "/flash/opt/query":
			_, _ = w.Write([]byte("this is not JSON"))
		}
	})
	ctx := ctxTimeout(t, 10*time.Second)
	_, err := c.Verify(ctx, VerifyRequest{FtID: "2"})
	if fe := wantKind(t, err, KindHTTPStatus, ErrHTTPStatus); fe.HTTPStatus != 404 {
		t.Fatalf("HTTPStatus = %d", fe.HTTPStatus)
	}
	if got, _ := ua.Load().(string); !regexp.MustCompile(`^fotp/\S+ go/\S+`).MatchString(got) {
		t.Fatalf("User-Agent %q", got)
	}
	_, err = c.Query(ctx, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindDecode, ErrDecode)
}

func TestNetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more: connection refused
	c, err := NewClient(Config{BaseURL: "http://" + addr, AppID: "a", AppSecret: "s", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Verify(ctxTimeout(t, 10*time.Second), VerifyRequest{FtID: "2"})
	if fe := wantKind(t, err, KindNetwork, ErrNetwork); fe.HTTPStatus != 0 {
		t.Fatalf("HTTPStatus = %d", fe.HTTPStatus)
	}
}

// silentServer accepts requests and never answers; requests reports each request's end
// (the client gave up and closed the connection).
func silentServer(t *testing.T) (url string, started chan struct{}, ended chan time.Time) {
	started = make(chan struct{}, 16)
	ended = make(chan time.Time, 16)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ended <- time.Now()
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv.URL, started, ended
}

func TestTimeoutFromConfig(t *testing.T) {
	url, _, _ := silentServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Query(context.Background(), "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindTimeout, ErrTimeout)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a configured timeout is not a context deadline: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("took %v for a 300 ms limit", d)
	}
	// A context deadline later than the configured timeout does not lengthen the call.
	start = time.Now()
	_, err = c.Verify(ctxTimeout(t, 20*time.Second), VerifyRequest{FtID: "2"})
	wantKind(t, err, KindTimeout, ErrTimeout)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the context deadline had not passed: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v for a 300 ms limit under a 20 s deadline", d)
	}
}

func TestContextDeadlineShortensTheCall(t *testing.T) {
	url, started, ended := silentServer(t)
	// The configured limit is long: only the context's deadline can end the call soon.
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, call := range []struct {
		name string
		f    func(ctx context.Context) error
	}{
		{"Verify", func(ctx context.Context) error { _, err := c.Verify(ctx, VerifyRequest{FtID: "2"}); return err }},
		{"Query", func(ctx context.Context) error {
			_, err := c.Query(ctx, "0123456789abcdef0123456789abcdef")
			return err
		}},
		{"Confirm", func(ctx context.Context) error {
			_, err := c.Confirm(ctx, &Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: "1234"}, "0123456789abcdef0123456789abcdef")
			return err
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := call.f(ctx)
			elapsed := time.Since(start)
			wantKind(t, err, KindTimeout, ErrTimeout)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("errors.Is(err, context.DeadlineExceeded) is false: %v", err)
			}
			if elapsed < 350*time.Millisecond || elapsed > 2*time.Second {
				t.Fatalf("returned after %v for a 400 ms deadline", elapsed)
			}
			<-started
			// The C call itself was limited by the deadline: it hangs up soon after.
			select {
			case at := <-ended:
				if d := at.Sub(start); d > 3*time.Second {
					t.Fatalf("the request was dropped only after %v", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the abandoned request still runs 5 s after the deadline")
			}
		})
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	url, started, ended := silentServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: 2 * time.Second, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Query(ctx, "0123456789abcdef0123456789abcdef")
		errc <- err
	}()
	<-started // the request is in flight
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
		t.Fatal("Query did not return after cancel")
	}
	// The abandoned C call ends within its own time limit (2 s).
	select {
	case <-ended:
	case <-time.After(6 * time.Second):
		t.Fatal("the abandoned request outlived its time limit")
	}
	// An already cancelled context sends nothing.
	_, err = c.Verify(ctx, VerifyRequest{FtID: "2"})
	if err != context.Canceled {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestWaitDeadlineAndCancel(t *testing.T) {
	c := newSandboxClient(t)
	v, err := c.Verify(ctxTimeout(t, 10*time.Second), VerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	// Deadline: the session stays processing, so the wait ends at the deadline.
	start := time.Now()
	_, err = c.Wait(ctxTimeout(t, 700*time.Millisecond), v.FtToken)
	wantKind(t, err, KindTimeout, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not a deadline error: %v", err)
	}
	if d := time.Since(start); d < 650*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Wait returned after %v for a 700 ms deadline", d)
	}
	// No deadline: the wait lasts until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Wait(ctx, v.FtToken); errc <- err }()
	select {
	case err := <-errc:
		t.Fatalf("Wait returned before cancel: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("want context.Canceled, got %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Wait did not return promptly after cancel")
	}
}

func TestWaitOutlivesItsAttemptTimeout(t *testing.T) {
	// A 1 s per-attempt limit does not end a Wait: the result comes several polls later.
	cfg := sandboxConfig()
	cfg.Timeout = time.Second
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxTimeout(t, 20*time.Second)
	v, err := c.Verify(ctx, VerifyRequest{FtID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   *QueryResult
		err error
	}
	done := make(chan result, 1)
	go func() { r, err := c.Wait(ctx, v.FtToken); done <- result{r, err} }()
	select {
	case res := <-done:
		t.Fatalf("Wait returned while processing: %+v, %v", res.r, res.err)
	case <-time.After(2500 * time.Millisecond): // more than two attempt limits pass without a result
	}
	uplink(t, map[string]any{"ftToken": v.FtToken, "mobile": "8613800000005", "content": v.Code})
	res := <-done
	if res.err != nil || res.r.Status != StatusSuccess {
		t.Fatalf("Wait: %+v, %v", res.r, res.err)
	}
}

func TestConcurrentCallsShareOneClient(t *testing.T) {
	c := newSandboxClient(t)
	ctx := ctxTimeout(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	tokens := make(chan string, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := ctx
			if i%2 == 1 {
				// Half the calls carry a deadline before the 10 s timeout: derived clients.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 8*time.Second)
				defer cancel()
			}
			code := fmt.Sprintf("%04d", 1000+i)
			v, err := c.Verify(ctx, VerifyRequest{FtID: "2", Code: code})
			if err != nil {
				errs <- fmt.Errorf("verify %d: %w", i, err)
				return
			}
			if v.Code != code {
				errs <- fmt.Errorf("verify %d: code %q", i, v.Code)
				return
			}
			r, err := c.Query(ctx, v.FtToken)
			if err != nil || r.Status != StatusProcessing {
				errs <- fmt.Errorf("query %d: %+v %v", i, r, err)
				return
			}
			if _, err := ParseCallback([]byte(`{"mobile":1,"sender":2,"sendTime":"t","code":"` + code + `"}`)); err != nil {
				errs <- err
				return
			}
			tokens <- v.FtToken
		}(i)
	}
	wg.Wait()
	close(errs)
	close(tokens)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for tok := range tokens {
		if seen[tok] {
			t.Errorf("token %s handed out twice", tok)
		}
		seen[tok] = true
	}
}

func TestCloseIsIdempotentAndSafeDuringCalls(t *testing.T) {
	url, started, _ := silentServer(t)
	c, err := NewClient(Config{BaseURL: url, AppID: "a", AppSecret: "s", Timeout: time.Second, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	freed := make(chan struct{})
	c.onFree = func() { close(freed) }
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Query(context.Background(), "0123456789abcdef0123456789abcdef")
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		<-started // all n calls are inside the library
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Calls in flight keep the library client alive until they end.
	select {
	case <-freed:
		t.Fatalf("the client was freed under %d running calls", n)
	default:
	}
	_, err = c.Query(context.Background(), "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("closed client: %v", err)
	}
	for _, call := range []func() error{
		func() error { _, err := c.Verify(context.Background(), VerifyRequest{FtID: "2"}); return err },
		func() error { _, err := c.Wait(context.Background(), "0123456789abcdef0123456789abcdef"); return err },
		func() error {
			_, err := c.Confirm(context.Background(), &Callback{Mobile: "1", Sender: "2", SendTime: "t", Code: "1234"}, "0123456789abcdef0123456789abcdef")
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Fatalf("closed client: %v", err)
		}
	}
	for i := 0; i < n; i++ {
		wantKind(t, <-errs, KindTimeout, ErrTimeout)
	}
	select {
	case <-freed: // the last call to end freed it
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not freed after its last call")
	}
	var nilClient *Client
	_, err = nilClient.Query(context.Background(), "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindInvalidArgument, ErrInvalidArgument)
}

func TestFinalizerFreesAForgottenClient(t *testing.T) {
	freed := make(chan struct{})
	func() {
		c, err := NewClient(sandboxConfig())
		if err != nil {
			t.Fatal(err)
		}
		c.onFree = func() { close(freed) }
		if _, err := c.Verify(context.Background(), VerifyRequest{FtID: "2"}); err != nil {
			t.Fatal(err)
		}
	}()
	collectUntilClosed(t, freed, "client")
}

// collectUntilClosed runs collections until freed is closed, failing after 10 s: finalizers
// run after a collection, on their own goroutine.
func collectUntilClosed(t *testing.T, freed <-chan struct{}, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-deadline:
			t.Fatalf("the finalizer did not free an unreachable %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestVersion(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(Version()) {
		t.Fatalf("Version() = %q", Version())
	}
}

func BenchmarkVerify(b *testing.B) {
	c := newSandboxClient(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Verify(ctx, VerifyRequest{FtID: "2"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestQueryUnknownStatusAndIntegerFields(t *testing.T) {
	_, c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"code":"000000","success":true,"message":"ok","data":` +
			`{"status":7,"mobile":8613800000000,"code":null,"extra":{"x":1}}}`))
	})
	r, err := c.Query(ctxTimeout(t, 10*time.Second), "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	want := QueryResult{Status: StatusUnknown, RawStatus: "7", Mobile: "8613800000000"}
	if *r != want || r.Status.String() != "unknown" {
		t.Fatalf("got %+v", r)
	}
	// An unknown status is not "processing": Wait returns it instead of polling forever.
	r, err = c.Wait(ctxTimeout(t, 10*time.Second), "0123456789abcdef0123456789abcdef")
	if err != nil || r.Status != StatusUnknown {
		t.Fatalf("Wait: %+v %v", r, err)
	}
}
