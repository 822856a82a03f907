package fotp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The sandbox shared by the tests, started by TestMain.
var sb struct {
	baseURL, appID, appSecret string
	// pushFtID is a template whose callbacks go to the receiver below.
	pushFtID string
	receiver *httptest.Server
	// onCallback receives every callback the receiver accepts.
	mu         sync.Mutex
	onCallback func(*Callback) error
	// trackedFtID is a template whose callbacks go to rawReceiver, which passes each request
	// to the handler set with setCallbackHandler (e.g. a TrackedCallbackHandler).
	trackedFtID string
	rawReceiver *httptest.Server
	rawHandler  http.Handler
}

const (
	pushFtID    = "77"
	trackedFtID = "78"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// FOTP_GO_TEST_OFFLOAD=always|never runs the whole suite on one path of offload.go
	// (scripts/test-go.sh runs it both ways).
	switch os.Getenv("FOTP_GO_TEST_OFFLOAD") {
	case "always":
		offloadMode = offloadAlways
	case "never":
		offloadMode = offloadNever
	}
	// FOTP_SANDBOX_BIN runs the tests against another build of the command line.
	bin := os.Getenv("FOTP_SANDBOX_BIN")
	if bin == "" {
		var err error
		if bin, err = filepath.Abs("../../target/release/fotp"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "the sandbox binary %s is missing: run `cargo build --release` "+
			"at the repository root first (%v)\n", bin, err)
		return 1
	}
	sb.receiver = httptest.NewServer(CallbackHandler(func(ctx context.Context, cb *Callback) error {
		sb.mu.Lock()
		f := sb.onCallback
		sb.mu.Unlock()
		if f == nil {
			return nil
		}
		return f(cb)
	}))
	defer sb.receiver.Close()
	sb.rawReceiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb.mu.Lock()
		h := sb.rawHandler
		sb.mu.Unlock()
		if h == nil {
			http.Error(w, "no handler set", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer sb.rawReceiver.Close()

	// The tracker's exhaustion tests start 9000 verifications per run (-count may repeat them).
	cmd := exec.Command(bin, "sandbox", "--addr", "127.0.0.1:0", "--max-sessions", "1000000",
		"--template", pushFtID+"="+sb.receiver.URL+"/callback",
		"--template", trackedFtID+"="+sb.rawReceiver.URL+"/callback")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot start the sandbox: %v\n", err)
		return 1
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	// The first stdout lines carry the address and credentials; the rest is log output,
	// drained so that the sandbox never blocks on a full pipe.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		vars := map[string]string{}
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "FOTP_") {
				vars[k] = v
			}
			if vars["FOTP_BASE_URL"] != "" && vars["FOTP_APP_ID"] != "" && vars["FOTP_APP_SECRET"] != "" {
				sb.baseURL, sb.appID, sb.appSecret = vars["FOTP_BASE_URL"], vars["FOTP_APP_ID"], vars["FOTP_APP_SECRET"]
				ready <- nil
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		ready <- fmt.Errorf("the sandbox ended its output before printing FOTP_BASE_URL, "+
			"FOTP_APP_ID and FOTP_APP_SECRET (%v)", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "the sandbox did not print its address within 30 s")
		return 1
	}
	sb.pushFtID = pushFtID
	sb.trackedFtID = trackedFtID
	return m.Run()
}

// setOnCallback routes the receiver's callbacks to f until the test ends.
func setOnCallback(t testing.TB, f func(*Callback) error) {
	sb.mu.Lock()
	sb.onCallback = f
	sb.mu.Unlock()
	t.Cleanup(func() {
		sb.mu.Lock()
		sb.onCallback = nil
		sb.mu.Unlock()
	})
}

// setCallbackHandler routes the requests of the trackedFtID template's callbacks to h until
// the test ends.
func setCallbackHandler(t testing.TB, h http.Handler) {
	sb.mu.Lock()
	sb.rawHandler = h
	sb.mu.Unlock()
	t.Cleanup(func() {
		sb.mu.Lock()
		sb.rawHandler = nil
		sb.mu.Unlock()
	})
}

func sandboxConfig() Config {
	return Config{BaseURL: sb.baseURL, AppID: sb.appID, AppSecret: sb.appSecret}
}

func newSandboxClient(t testing.TB) *Client {
	t.Helper()
	c, err := NewClient(sandboxConfig())
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uplink simulates the user's SMS through the sandbox.
func uplink(t testing.TB, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(sb.baseURL+"/sandbox/uplink", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("uplink: %v", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("uplink answered %d: %s", resp.StatusCode, answer)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
