package fotp

/*
#include <stdlib.h>
#include "fotp.h"
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Defaults applied by the library when a Config field is left at its zero value.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultConnectTimeout = 3 * time.Second
	DefaultRetries        = 2
)

// NoRetries as Config.Retries disables retries: Retries' zero value means the default.
const NoRetries = -1

// Config describes a client. The zero value of a field means "unset" (the library default).
//
// Set either AppID and AppSecret (the hmac-sha256 scheme) or AppKey and Token (the token
// scheme). Printing a Config with fmt never shows AppSecret or Token.
type Config struct {
	BaseURL   string // e.g. https://otp.example.com/otp-api; http:// only to loopback
	AppID     string
	AppSecret string
	AppKey    string
	Token     string

	// Timeout bounds each attempt, connecting included; 0 = 10 s. A query attempt that runs
	// out of it is retried. The whole call is bounded by the context's deadline, and never
	// runs longer than (Retries + 1) x Timeout plus the pauses between attempts. Durations
	// beyond the C API's limit (about 49.7 days) count as that limit.
	Timeout        time.Duration
	ConnectTimeout time.Duration // 0 = 3 s
	// Retries is how many times a failed attempt is retried. Its zero value means unset (the
	// default, 2), as for every Config field (CONTRACT section 1); to disable retries, set
	// NoRetries (any negative value).
	Retries int
	// AllowInsecureHTTP allows http:// to hosts that are not loopback.
	AllowInsecureHTTP bool

	// CABundle is the path of a PEM file of root certificates that this client trusts in
	// addition to the built-in (Mozilla) roots; "" = FOTP_CA_BUNDLE, if set. NewClient reads
	// it: a file that cannot be read, is not PEM or holds no certificate is a KindConfig
	// error naming the problem.
	CABundle string
	// Proxy is this client's proxy for every request (a loopback base URL included): an
	// http:// or https:// URL, credentials allowed; NoProxy for none at all. "" = the
	// environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; never for a loopback base URL).
	Proxy string
	// Logger receives this client's events (each HTTP attempt, retries and pauses, tracker
	// settlements) as records with attributes; nil = silent. See log.go.
	Logger *slog.Logger
}

// NoProxy as Config.Proxy sends every request directly, whatever the environment says.
const NoProxy = "direct"

// String shows the configuration with the secrets redacted.
func (c Config) String() string {
	return fmt.Sprintf("fotp.Config{BaseURL:%q AppID:%q AppSecret:%s AppKey:%q Token:%s "+
		"Timeout:%v ConnectTimeout:%v Retries:%d AllowInsecureHTTP:%t CABundle:%q Proxy:%q}",
		c.BaseURL, c.AppID, quotedHidden(c.AppSecret), c.AppKey, quotedHidden(c.Token),
		c.Timeout, c.ConnectTimeout, c.Retries, c.AllowInsecureHTTP, c.CABundle, c.redactedProxy())
}

// redactedProxy is Proxy without its password.
func (c Config) redactedProxy() string {
	if u, err := url.Parse(c.Proxy); err == nil {
		return u.Redacted()
	} else if c.Proxy != "" && c.Proxy != NoProxy {
		return "<unparsable>" // it may hold a password
	}
	return c.Proxy
}

// GoString makes %#v redact the secrets too.
func (c Config) GoString() string { return c.String() }

// Format makes every fmt verb print String (without it, %d would print the fields).
func (c Config) Format(f fmt.State, verb rune) { formatAs(f, verb, c.String()) }

// LogValue is what slog records show: the secrets redacted (slog's JSON handler would
// otherwise marshal every field).
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("baseURL", c.BaseURL), slog.String("appId", c.AppID),
		slog.String("appSecret", hidden(c.AppSecret)), slog.String("appKey", c.AppKey),
		slog.String("token", hidden(c.Token)), slog.Duration("timeout", c.Timeout),
		slog.Duration("connectTimeout", c.ConnectTimeout), slog.Int("retries", c.Retries),
		slog.Bool("allowInsecureHTTP", c.AllowInsecureHTTP), slog.String("caBundle", c.CABundle),
		slog.String("proxy", c.redactedProxy()))
}

// Client talks to the platform. It is safe for concurrent use by many goroutines, which
// share one connection pool. Close it when done.
type Client struct {
	polls chan struct{} // a slot per Wait poll running in the library (maxWaitPolls)

	handle[*C.fotp_client]

	// The library's worker pool, made by the first offloaded call (offload.go). Apart from c:
	// the handle's free function holds it, and a cycle through c would keep the finalizer
	// from ever running.
	lazy *lazyOffload
}

type lazyOffload struct {
	once sync.Once
	off  *offload
}

// NewClient builds a client from cfg. Nothing is sent on the network; a missing base URL
// or credentials, or an insecure URL, is an error of kind KindConfig.
func NewClient(cfg Config) (*Client, error) {
	cc := C.fotp_config_new()
	if cc == nil {
		return nil, newError(KindInternal, "fotp_config_new returned NULL")
	}
	defer C.fotp_config_free(cc)
	if err := applyConfig(cc, cfg); err != nil {
		return nil, err
	}
	c, err := newClient(cc)
	if err == nil {
		registerLogger(uint64(C.fotp_client_log_id(c.ptr)), cfg.Logger)
	}
	return c, err
}

// NewClientFromEnv builds a client from the FOTP_* environment variables (FOTP_BASE_URL,
// FOTP_AUTH, FOTP_APP_ID, FOTP_APP_SECRET, FOTP_APP_KEY, FOTP_TOKEN, FOTP_TIMEOUT_MS,
// FOTP_CONNECT_TIMEOUT_MS, FOTP_RETRIES, FOTP_ALLOW_INSECURE_HTTP, FOTP_CA_BUNDLE; the proxy
// from HTTPS_PROXY, HTTP_PROXY and NO_PROXY).
func NewClientFromEnv() (*Client, error) {
	var cc *C.fotp_config
	if err := takeError(C.fotp_config_from_env(&cc)); err != nil {
		return nil, err
	}
	defer C.fotp_config_free(cc)
	if err := setUserAgent(cc); err != nil {
		return nil, err
	}
	return newClient(cc)
}

func newClient(cc *C.fotp_config) (*Client, error) {
	var ptr *C.fotp_client
	if err := takeError(C.fotp_client_new(cc, &ptr)); err != nil {
		return nil, err
	}
	lazy := &lazyOffload{}
	c := &Client{polls: make(chan struct{}, maxWaitPolls), lazy: lazy}
	c.handle = handle[*C.fotp_client]{ptr: ptr, what: "client", free: func(p *C.fotp_client) {
		freeClient(p)
		if lazy.off != nil {
			lazy.off.close()
		}
	}}
	// Only a safety net for a forgotten Close: in-flight calls keep c reachable.
	runtime.SetFinalizer(c, (*Client).Close)
	return c, nil
}

func applyConfig(cc *C.fotp_config, cfg Config) error {
	for _, f := range []struct{ name, value string }{
		{"BaseURL", cfg.BaseURL}, {"AppID", cfg.AppID}, {"AppSecret", cfg.AppSecret},
		{"AppKey", cfg.AppKey}, {"Token", cfg.Token}, {"CABundle", cfg.CABundle}, {"Proxy", cfg.Proxy},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return newError(KindConfig, "Config.%s contains a NUL byte", f.name)
		}
	}
	if cfg.BaseURL != "" {
		if err := withCString(cfg.BaseURL, func(u *C.char) error {
			return takeError(C.fotp_config_set_base_url(cc, u))
		}); err != nil {
			return err
		}
	}
	hmac := cfg.AppID != "" || cfg.AppSecret != ""
	token := cfg.AppKey != "" || cfg.Token != ""
	switch {
	case hmac && token:
		return newError(KindConfig, "set either AppID/AppSecret or AppKey/Token, not both")
	case hmac:
		id, secret := C.CString(cfg.AppID), C.CString(cfg.AppSecret)
		err := takeError(C.fotp_config_set_hmac_auth(cc, id, secret))
		C.free(unsafe.Pointer(id))
		C.free(unsafe.Pointer(secret))
		if err != nil {
			return err
		}
	case token:
		key, tok := C.CString(cfg.AppKey), C.CString(cfg.Token)
		err := takeError(C.fotp_config_set_token_auth(cc, key, tok))
		C.free(unsafe.Pointer(key))
		C.free(unsafe.Pointer(tok))
		if err != nil {
			return err
		}
	}
	if cfg.Timeout != 0 {
		ms, err := durationMillis("Timeout", cfg.Timeout)
		if err != nil {
			return err
		}
		C.fotp_config_set_timeout_ms(cc, ms)
	}
	if cfg.ConnectTimeout != 0 {
		ms, err := durationMillis("ConnectTimeout", cfg.ConnectTimeout)
		if err != nil {
			return err
		}
		C.fotp_config_set_connect_timeout_ms(cc, ms)
	}
	switch {
	case cfg.Retries < 0:
		C.fotp_config_set_retries(cc, 0)
	case uint64(cfg.Retries) > math.MaxUint32:
		return newError(KindConfig, "Config.Retries is too large: %d", cfg.Retries)
	case cfg.Retries > 0:
		C.fotp_config_set_retries(cc, C.uint32_t(cfg.Retries))
	}
	C.fotp_config_set_allow_insecure_http(cc, C.bool(cfg.AllowInsecureHTTP))
	if cfg.CABundle != "" {
		if err := withCString(cfg.CABundle, func(p *C.char) error {
			return takeError(C.fotp_config_set_ca_bundle(cc, p))
		}); err != nil {
			return err
		}
	}
	switch cfg.Proxy {
	case "":
	case NoProxy:
		if err := takeError(C.fotp_config_set_proxy(cc, nil)); err != nil {
			return err
		}
	default:
		if err := withCString(cfg.Proxy, func(p *C.char) error {
			return takeError(C.fotp_config_set_proxy(cc, p))
		}); err != nil {
			return err
		}
	}
	return setUserAgent(cc)
}

// setUserAgent appends go/<version> to the User-Agent, e.g. "fotp/0.1.0 go/1.22.5".
func setUserAgent(cc *C.fotp_config) error {
	suffix := "go/" + strings.TrimPrefix(runtime.Version(), "go")
	return withCString(suffix, func(s *C.char) error {
		return takeError(C.fotp_config_set_user_agent_suffix(cc, s))
	})
}

// durationMillis converts a configured duration to whole milliseconds, rounding up; a
// duration beyond the C API's limit (about 49.7 days) counts as that limit.
func durationMillis(field string, d time.Duration) (C.uint32_t, error) {
	if d < 0 {
		return 0, newError(KindConfig, "Config.%s must not be negative, got %v", field, d)
	}
	return millis(d), nil
}

func withCString(s string, f func(*C.char) error) error {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return f(cs)
}

// Close releases the client. It is idempotent. Calls still running finish first (each
// within its own time limits, or about 100 ms after its context is cancelled); calls made
// after Close fail with ErrClosed.
func (c *Client) Close() error {
	if c != nil && c.close() {
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

func freeClient(p *C.fotp_client) {
	unregisterLogger(uint64(C.fotp_client_log_id(p)))
	C.fotp_client_free(p)
}

func (c *Client) acquire() (*C.fotp_client, error) {
	if c == nil {
		return nil, newError(KindInvalidArgument, "the client is nil")
	}
	return c.handle.acquire()
}

// offload returns c's worker pool, made on first use; nil if it cannot be made (the call
// then blocks in the library instead).
func (c *Client) offload() *offload {
	c.lazy.once.Do(func() { c.lazy.off, _ = newOffload() })
	return c.lazy.off
}

// begin checks ctx and reserves the C client for one call. The call gets a derived client
// (sharing the pool) whose whole-call bound ends at ctx's deadline, so the C call itself
// stops there (Config.Timeout still bounds each attempt), and which watches a cancel token
// that ctx's cancellation triggers: the C call then returns within about 100 ms, and a verify
// not sent yet is never sent. end must be called after the C call. abort triggers the token
// at once: a caller that returns ctx's error calls it first, since the AfterFunc's goroutine
// may run later, and a verify sent after its caller saw "cancelled" would be sent twice by a
// caller that retries.
func (c *Client) begin(ctx context.Context) (cl *C.fotp_client, end, abort func(), err error) {
	if ctx == nil {
		return nil, nil, nil, newError(KindInvalidArgument, "the context is nil")
	}
	if ctx.Err() != nil {
		return nil, nil, nil, ctxError(ctx)
	}
	base, err := c.acquire()
	if err != nil {
		return nil, nil, nil, err
	}
	cl = base
	var bounded *C.fotp_client
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			c.release()
			return nil, nil, nil, deadlineError()
		}
		// A deadline further away than the C API can say (49 days) leaves the call to the
		// per-attempt limits.
		if left <= maxLimit {
			e := C.fotp_client_with_timeout(cl, millis(left), &bounded)
			if err := takeError(e); err != nil {
				c.release()
				return nil, nil, nil, err
			}
			cl = bounded
		}
	}
	if ctx.Done() == nil {
		// Never cancelled (context.Background): no token needed.
		return cl, func() { C.fotp_client_free(bounded); c.release() }, func() {}, nil
	}
	tok := C.fotp_cancel_new()
	var watching *C.fotp_client
	e := C.fotp_client_with_cancel(cl, tok, &watching)
	if err := takeError(e); err != nil {
		C.fotp_cancel_free(tok)
		C.fotp_client_free(bounded)
		c.release()
		return nil, nil, nil, err
	}
	// live guards the token: a trigger (the AfterFunc's or abort's) never meets a freed one.
	var mu sync.Mutex
	live := true
	trigger := func() {
		mu.Lock()
		defer mu.Unlock()
		if live {
			C.fotp_cancel_trigger(tok)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		if hook := testHookBeforeTrigger.Load(); hook != nil {
			(*hook)()
		}
		trigger()
	})
	return watching, func() {
		stop()
		mu.Lock()
		live = false
		mu.Unlock()
		C.fotp_client_free(watching)
		C.fotp_cancel_free(tok)
		C.fotp_client_free(bounded)
		c.release()
	}, trigger, nil
}

// testHookBeforeTrigger, when set by a test, runs in the AfterFunc before it triggers the
// token: a late goroutine made on purpose.
var testHookBeforeTrigger atomic.Pointer[func()]

// millis converts a positive duration to whole milliseconds, rounding up and saturating at
// the C API's limit.
func millis(d time.Duration) C.uint32_t {
	if d >= maxLimit {
		return C.uint32_t(math.MaxUint32)
	}
	return C.uint32_t((d + time.Millisecond - 1) / time.Millisecond)
}

type outcome[T any] struct {
	v   T
	err error
}

// run runs the blocking call f in its own goroutine and returns its result, or ctxError
// as soon as ctx is done (after abort, which triggers the call's cancel token). An abandoned f still runs to its end (ctx's cancel token ends the
// C call within about 100 ms) and converts and frees its own C objects; its result is then
// dropped.
func run[T any](ctx context.Context, abort func(), f func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		// A context that can never be cancelled (context.Background): no goroutine needed.
		return f()
	}
	ch := make(chan outcome[T], 1)
	go func() {
		v, err := f()
		ch <- outcome[T]{v, err}
	}()
	select {
	case o := <-ch:
		return o.v, o.err
	case <-ctx.Done():
		abort()
		var zero T
		return zero, ctxError(ctx)
	}
}

// timeoutFromCtx marks a library timeout as caused by ctx's deadline when that deadline
// was the binding limit.
func timeoutFromCtx(ctx context.Context, err error) error {
	if e, ok := err.(*Error); ok && e.Kind == KindTimeout && e.cause == nil {
		if dl, has := ctx.Deadline(); has && !time.Now().Before(dl) {
			e.cause = context.DeadlineExceeded
		}
	}
	return err
}

// libcall is one library call made in one of two ways: blocking runs it on this goroutine's
// thread; start starts it on the library's worker pool (the pool reports tag once it has
// finished) and result takes the finished call's result.
type libcall[T any] struct {
	blocking func(cl *C.fotp_client) (T, error)
	start    func(cl *C.fotp_client, o *C.fotp_offload, tag C.uint64_t, out **C.fotp_call) *C.fotp_error
	result   func(fc *C.fotp_call) (T, error)
}

// call makes f for ctx (see begin), blocking or offloaded (see offload.go); done (if not nil)
// is called once the library has finished with the call.
func call[T any](c *Client, ctx context.Context, f libcall[T], done func()) (T, error) {
	var zero T
	cl, end, abort, err := c.begin(ctx)
	if err != nil {
		if done != nil {
			done()
		}
		return zero, err
	}
	finish := end
	if done != nil {
		finish = func() { end(); done() }
	}
	if useOffload() {
		if o := c.offload(); o != nil {
			v, err := offloaded(ctx, o, cl, f, finish, abort)
			return v, timeoutFromCtx(ctx, err)
		}
	}
	v, err := run(ctx, abort, func() (T, error) {
		defer finish()
		v, err := f.blocking(cl)
		runtime.KeepAlive(c)
		return v, err
	})
	return v, timeoutFromCtx(ctx, err)
}

// offloaded starts f on o's workers and waits in Go until it has finished or ctx is done.
func offloaded[T any](ctx context.Context, o *offload, cl *C.fotp_client, f libcall[T], finish, abort func()) (T, error) {
	var zero T
	tag, finished := o.register()
	var fc *C.fotp_call
	if err := takeError(f.start(cl, o.ptr, C.uint64_t(tag), &fc)); err != nil {
		o.unregister(tag)
		finish()
		return zero, err
	}
	select {
	case <-finished:
		v, err := f.result(fc)
		C.fotp_call_free(fc)
		finish()
		return v, err
	case <-ctx.Done():
		// ctx's cancel token ends the call within about 100 ms (a verify not sent yet is never
		// sent); then its objects are freed and its result dropped.
		abort()
		go func() {
			<-finished
			C.fotp_call_free(fc)
			finish()
		}()
		return zero, ctxError(ctx)
	}
}

// cString is s as a NUL-terminated string in Go memory, for one C call's argument (the
// library copies what it keeps): cheaper than C.CString's malloc and free. s holds no NUL
// (checked by the callers).
func cString(s string) *C.char {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// cOptString is cString, or NULL for "".
func cOptString(s string) *C.char {
	if s == "" {
		return nil
	}
	return cString(s)
}

// Verify asks the platform for a redirect link and code. The input is checked first
// (KindInvalidArgument naming the field). verify is not idempotent, so it is retried only
// when the request surely never reached the server. A verify whose ctx is done before its
// request was sent is never sent.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*Verification, error) {
	if strings.IndexByte(req.FtID, 0) >= 0 || strings.IndexByte(req.Code, 0) >= 0 {
		return nil, newError(KindInvalidArgument, "ftId and code must not contain NUL bytes")
	}
	if req.ValidityMinutes < 0 || uint64(req.ValidityMinutes) > math.MaxUint32 {
		return nil, newError(KindInvalidArgument, "validityPeriod must be 1-10 minutes, got %d", req.ValidityMinutes)
	}
	ftID, code, minutes := req.FtID, req.Code, C.uint32_t(req.ValidityMinutes)
	return call(c, ctx, libcall[*Verification]{
		blocking: func(cl *C.fotp_client) (*Verification, error) {
			var out *C.fotp_verification
			if err := takeError(C.fotp_verify(cl, cString(ftID), cOptString(code), minutes, &out)); err != nil {
				return nil, err
			}
			return takeVerification(out), nil
		},
		start: func(cl *C.fotp_client, o *C.fotp_offload, tag C.uint64_t, out **C.fotp_call) *C.fotp_error {
			return C.fotp_verify_start(cl, cString(ftID), cOptString(code), minutes, o, tag, out)
		},
		result: func(fc *C.fotp_call) (*Verification, error) {
			var out *C.fotp_verification
			if err := takeError(C.fotp_call_verification(fc, &out)); err != nil {
				return nil, err
			}
			return takeVerification(out), nil
		},
	}, nil)
}

func takeVerification(v *C.fotp_verification) *Verification {
	defer C.fotp_verification_free(v)
	var f [4]*C.char
	C.fotp_verification_fields(v, &f[0], C.size_t(len(f)))
	return &Verification{URL: goString(f[0]), FtToken: goString(f[1]), MessageID: goString(f[2]), Code: goString(f[3])}
}

// Query pulls the result of a verification once. Each attempt is bounded by Config.Timeout
// and ctx's deadline bounds the whole call; attempts that fail with a network error, a
// time-out, HTTP 429 or 5xx are retried (Config.Retries) within it.
func (c *Client) Query(ctx context.Context, ftToken string) (*QueryResult, error) {
	if err := checkToken(ftToken); err != nil {
		return nil, err
	}
	return c.query(ctx, ftToken, nil)
}

// query runs one fotp_query; done (if not nil) is called once the library has finished it.
func (c *Client) query(ctx context.Context, ftToken string, done func()) (*QueryResult, error) {
	return call(c, ctx, libcall[*QueryResult]{
		blocking: func(cl *C.fotp_client) (*QueryResult, error) {
			var out *C.fotp_query_result
			if err := takeError(C.fotp_query(cl, cString(ftToken), &out)); err != nil {
				return nil, err
			}
			return takeQueryResult(out), nil
		},
		start: func(cl *C.fotp_client, o *C.fotp_offload, tag C.uint64_t, out **C.fotp_call) *C.fotp_error {
			return C.fotp_query_start(cl, cString(ftToken), o, tag, out)
		},
		result: func(fc *C.fotp_call) (*QueryResult, error) {
			var out *C.fotp_query_result
			if err := takeError(C.fotp_call_query_result(fc, &out)); err != nil {
				return nil, err
			}
			return takeQueryResult(out), nil
		},
	}, done)
}

// maxLimit is the longest time limit the C API takes (uint32 milliseconds).
const maxLimit = time.Duration(math.MaxUint32) * time.Millisecond

// Wait's polling: like the library's own wait, the pause grows from firstPoll to maxPoll,
// and a last query is made lastQueryReserve before the deadline.
const (
	firstPoll        = 250 * time.Millisecond
	maxPoll          = time.Second
	lastQueryReserve = 250 * time.Millisecond
)

// maxWaitPolls bounds the queries of one Client's Waits that run in the library at once, and
// so the OS threads that many concurrent Waits hold (a cgo call holds one).
const maxWaitPolls = 32

// Wait polls query until the status is final (failed or success, or an unknown value) or
// ctx is done. Transient failures of single queries (network errors, time-outs, HTTP 429 and
// 5xx) do not end the wait; a last query is made shortly before ctx's deadline. Without a
// deadline it waits until ctx is cancelled.
//
// Between polls it sleeps in Go, holding no OS thread; at most 32 polls of a Client's Waits
// run at once (the others queue for a moment), so any number of concurrent Waits use a
// bounded number of threads.
func (c *Client) Wait(ctx context.Context, ftToken string) (*QueryResult, error) {
	if err := checkToken(ftToken); err != nil {
		return nil, err
	}
	if ctx == nil {
		return nil, newError(KindInvalidArgument, "the context is nil")
	}
	return pollUntilFinal(ctx, func() (*QueryResult, error) {
		select {
		case c.polls <- struct{}{}:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
		return c.query(ctx, ftToken, func() { <-c.polls })
	})
}

// pollUntilFinal calls query until it gives a final status or a lasting error, or ctx is done,
// sleeping between the calls.
func pollUntilFinal(ctx context.Context, query func() (*QueryResult, error)) (*QueryResult, error) {
	pause := firstPoll
	lastQuery := false
	for {
		r, err := query()
		switch {
		case ctx.Err() != nil:
			return nil, ctxError(ctx)
		case err == nil && r.Status != StatusProcessing:
			return r, nil
		case err != nil && !transient(err):
			return nil, err
		}
		this := pause
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= pause {
				if lastQuery {
					// Nothing more to ask: the wait ends at the deadline the caller set.
					this = left
				} else {
					lastQuery = true
					this = max(left-lastQueryReserve, 0)
				}
			}
		}
		if this > 0 {
			timer := time.NewTimer(this)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, ctxError(ctx)
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		pause = min(pause*2, maxPoll)
	}
}

// transient reports whether a failed query may succeed when asked again: network errors,
// time-outs (not those of the caller's context), HTTP 429 and 5xx.
func transient(err error) bool {
	fe, ok := err.(*Error)
	if !ok {
		return false
	}
	return fe.Kind == KindNetwork || (fe.Kind == KindTimeout && fe.cause == nil) ||
		fe.HTTPStatus == 429 || (fe.HTTPStatus >= 500 && fe.HTTPStatus < 600)
}

// Confirm cross-checks a callback with the platform: it queries ftToken and compares the
// status (success), the code and the mobile number. It returns false when they differ;
// errors are only for queries that failed (or a cb that is not a valid callback).
func (c *Client) Confirm(ctx context.Context, cb *Callback, ftToken string) (bool, error) {
	if cb == nil {
		return false, newError(KindInvalidArgument, "the callback is nil")
	}
	if err := checkToken(ftToken); err != nil {
		return false, err
	}
	ccb, err := callbackToC(cb)
	if err != nil {
		return false, err
	}
	return call(c, ctx, libcall[bool]{
		blocking: func(cl *C.fotp_client) (bool, error) {
			var confirmed C.bool
			if err := takeError(C.fotp_confirm_callback(cl, ccb, cString(ftToken), &confirmed)); err != nil {
				return false, err
			}
			return bool(confirmed), nil
		},
		start: func(cl *C.fotp_client, o *C.fotp_offload, tag C.uint64_t, out **C.fotp_call) *C.fotp_error {
			return C.fotp_confirm_callback_start(cl, ccb, cString(ftToken), o, tag, out)
		},
		result: func(fc *C.fotp_call) (bool, error) {
			var confirmed C.bool
			if err := takeError(C.fotp_call_confirmed(fc, &confirmed)); err != nil {
				return false, err
			}
			return bool(confirmed), nil
		},
	}, func() { C.fotp_callback_free(ccb) })
}

// checkToken refuses what C strings cannot carry; the library checks the rest.
func checkToken(tok string) error {
	if strings.IndexByte(tok, 0) >= 0 {
		return newError(KindInvalidArgument, "ftToken must contain only visible ASCII characters")
	}
	return nil
}

func takeQueryResult(r *C.fotp_query_result) *QueryResult {
	defer C.fotp_query_result_free(r)
	var f [6]*C.char
	C.fotp_query_result_fields(r, &f[0], C.size_t(len(f)))
	return &QueryResult{
		Status:      Status(C.fotp_query_result_status(r)),
		RawStatus:   goString(f[0]),
		Mobile:      goString(f[1]),
		Sender:      goString(f[2]),
		SendTime:    goString(f[3]),
		Code:        goString(f[4]),
		DeliverTime: goString(f[5]),
	}
}

// goString copies a library string; NULL (absent) becomes "".
func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// Version returns the version of the linked fotp library, e.g. "0.1.0".
func Version() string { return C.GoString(C.fotp_version()) }

// libraryAck is the library's own callback answer (tests compare it with CallbackAck).
func libraryAck() string { return C.GoString(C.fotp_callback_ack()) }
