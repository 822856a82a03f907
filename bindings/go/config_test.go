package fotp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it; it returns the
// path of the CA's PEM file and the server's TLS certificate.
func testCA(t *testing.T) (caPEM string, leaf tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fotp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caPEM, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

const processingAnswer = `{"code":"000000","success":true,"message":"ok","data":{"status":"0"}}`

func TestPerClientCABundle(t *testing.T) {
	caPEM, leaf := testCA(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, processingAnswer)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %s", srv.URL)
	}
	t.Setenv("FOTP_CA_BUNDLE", "")
	ctx := ctxTimeout(t, 10*time.Second)
	// Two clients in one process: only the one given the bundle trusts the server.
	trusting, err := NewClient(Config{BaseURL: srv.URL, AppID: "a", AppSecret: "s", CABundle: caPEM, Retries: -1})
	if err != nil {
		t.Fatalf("NewClient with CABundle: %v", err)
	}
	defer trusting.Close()
	plain, err := NewClient(Config{BaseURL: srv.URL, AppID: "a", AppSecret: "s", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if r, err := trusting.Query(ctx, "0123456789abcdef0123456789abcdef"); err != nil || r.Status != StatusProcessing {
		t.Fatalf("with the bundle: %+v, %v", r, err)
	}
	_, err = plain.Query(ctx, "0123456789abcdef0123456789abcdef")
	wantKind(t, err, KindNetwork, ErrNetwork)

	// A bundle that cannot be used is a config error naming the problem.
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.pem"), notPEM, "bad\x00path"} {
		c, err := NewClient(Config{BaseURL: srv.URL, AppID: "a", AppSecret: "s", CABundle: path})
		if c != nil {
			t.Fatalf("%q: got a client", path)
		}
		fe := wantKind(t, err, KindConfig, ErrConfig)
		if !strings.Contains(fe.Message, "CA") && !strings.Contains(fe.Message, "certificate") && !strings.Contains(fe.Message, "NUL") {
			t.Fatalf("%q: message %q does not name the problem", path, fe.Message)
		}
	}
}

// countingProxy is an HTTP proxy (CONNECT and absolute-form requests) that counts requests.
func countingProxy(t *testing.T) (url string, n *atomic.Int64) {
	n = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method == http.MethodConnect {
			upstream, err := net.Dial("tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				upstream.Close()
				return
			}
			_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
			go func() { _, _ = io.Copy(upstream, buf); upstream.Close() }()
			_, _ = io.Copy(conn, upstream)
			conn.Close()
			return
		}
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n
}

func TestPerClientProxy(t *testing.T) {
	proxyURL, proxied := countingProxy(t)
	ctx := ctxTimeout(t, 10*time.Second)
	cfg := sandboxConfig()
	// Two clients in one process: one through the proxy, one direct.
	cfg.Proxy = proxyURL
	viaProxy, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient with Proxy: %v", err)
	}
	defer viaProxy.Close()
	cfg.Proxy = NoProxy
	noProxy, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient with NoProxy: %v", err)
	}
	defer noProxy.Close()
	if _, err := viaProxy.Verify(ctx, VerifyRequest{FtID: "2"}); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if proxied.Load() == 0 {
		t.Fatal("the request did not go through the proxy")
	}
	before := proxied.Load()
	if _, err := noProxy.Verify(ctx, VerifyRequest{FtID: "2"}); err != nil {
		t.Fatalf("NoProxy: %v", err)
	}
	// The environment is the default, and never used for a loopback base URL.
	t.Setenv("HTTP_PROXY", proxyURL)
	t.Setenv("HTTPS_PROXY", proxyURL)
	envClient, err := NewClient(sandboxConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer envClient.Close()
	if _, err := envClient.Verify(ctx, VerifyRequest{FtID: "2"}); err != nil {
		t.Fatalf("environment proxy: %v", err)
	}
	if proxied.Load() != before {
		t.Fatalf("a client without Proxy went through the proxy")
	}

	// A proxy URL that cannot be used is a config error; the password never shows.
	for _, bad := range []string{"ftp://proxy:21", "not a url", "http://proxy\x00:1"} {
		cfg.Proxy = bad
		_, err := NewClient(cfg)
		wantKind(t, err, KindConfig, ErrConfig)
	}
	cfg.Proxy = "http://user:hunter2@proxy.example:3128"
	for _, s := range []string{cfg.String(), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("proxy password printed: %s", s)
		}
	}
}

// TestTimeoutIsPerAttempt: Config.Timeout bounds each attempt (a stalled first attempt is
// retried) and the context's deadline bounds the whole call.
func TestTimeoutIsPerAttempt(t *testing.T) {
	var attempts atomic.Int64
	var stallAll atomic.Bool
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		if attempts.Add(1) == 1 || stallAll.Load() {
			select { // stalls until the client gives up
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		_, _ = io.WriteString(w, processingAnswer)
	}))
	defer srv.Close()
	defer close(stop)
	c, err := NewClient(Config{BaseURL: srv.URL, AppID: "a", AppSecret: "s", Timeout: 400 * time.Millisecond, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	r, err := c.Query(ctxTimeout(t, 10*time.Second), "0123456789abcdef0123456789abcdef")
	took := time.Since(start)
	if err != nil || r.Status != StatusProcessing || attempts.Load() != 2 {
		t.Fatalf("stalled first attempt: %+v, %v after %d attempts", r, err, attempts.Load())
	}
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Fatalf("took %v for a 400 ms attempt and a good one", took)
	}

	// Every attempt stalls: the context's deadline ends the call, whatever the attempts left.
	stallAll.Store(true)
	attempts.Store(0)
	start = time.Now()
	_, err = c.Query(ctxTimeout(t, 700*time.Millisecond), "0123456789abcdef0123456789abcdef")
	took = time.Since(start)
	wantKind(t, err, KindTimeout, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) || took < 650*time.Millisecond || took > 2*time.Second {
		t.Fatalf("whole-call bound: %v after %v", err, took)
	}
	if n := attempts.Load(); n != 2 {
		t.Fatalf("%d attempts within 700 ms of 400 ms attempts, want 2", n)
	}
	// Without a deadline: (Retries + 1) attempts, then the time-out.
	attempts.Store(0)
	start = time.Now()
	_, err = c.Query(context.Background(), "0123456789abcdef0123456789abcdef")
	took = time.Since(start)
	wantKind(t, err, KindTimeout, ErrTimeout)
	if n := attempts.Load(); n != 3 || took < 1200*time.Millisecond || took > 5*time.Second {
		t.Fatalf("no deadline: %d attempts in %v, want 3", n, took)
	}
}
