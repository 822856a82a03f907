// End-to-end runs of the example programs against the sandbox.
package examples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lines streams a process's output lines; the channel closes when the output ends.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// await returns the first line that matches re, failing the test at ctx's deadline.
func await(ctx context.Context, t *testing.T, ch <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("output ended before a line matching %s", re)
			}
			t.Log(l)
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-ctx.Done():
			t.Fatalf("no line matching %s in time", re)
		}
	}
}

// start runs a program and stops it (SIGTERM, then kill) when the test ends.
func start(t *testing.T, cmd *exec.Cmd, stdout, stderr bool) (out, errOut <-chan string) {
	t.Helper()
	if stdout {
		p, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		out = lines(p)
	}
	if stderr {
		p, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		errOut = lines(p)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return out, errOut
}

// sandbox starts the sandbox and returns the FOTP_* variables it printed.
func sandbox(ctx context.Context, t *testing.T, args ...string) []string {
	t.Helper()
	bin, _ := filepath.Abs("../../target/release/fotp")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `cargo build --release` first", bin)
	}
	cmd := exec.Command(bin, append([]string{"sandbox", "--addr", "127.0.0.1:0"}, args...)...)
	out, _ := start(t, cmd, true, false)
	var env []string
	for _, name := range []string{"FOTP_BASE_URL", "FOTP_APP_ID", "FOTP_APP_SECRET"} {
		m := await(ctx, t, out, regexp.MustCompile("^("+name+"=.*)$"))
		env = append(env, m[1])
	}
	go func() {
		for range out { // keep draining the log
		}
	}()
	return env
}

func build(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func uplink(t *testing.T, baseURL, mobile, content string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"mobile": mobile, "content": content})
	resp, err := http.Post(baseURL+"/sandbox/uplink", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(answer), `"000000"`) {
		t.Fatalf("uplink: %d %s", resp.StatusCode, answer)
	}
}

func baseURL(env []string) string {
	return strings.TrimPrefix(env[0], "FOTP_BASE_URL=")
}

func TestPullExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := build(t, "./pull")
	env := sandbox(ctx, t)

	cmd := exec.Command(bin, "-ft-id", "2", "-code", "482931", "-wait", "30s")
	cmd.Env = append(os.Environ(), env...)
	out, _ := start(t, cmd, true, false)
	await(ctx, t, out, regexp.MustCompile(`^http://.*/flash/opt/redirect/[0-9a-f]{32}$`))
	uplink(t, baseURL(env), "8613800000011", "482931")
	await(ctx, t, out, regexp.MustCompile(`^status: success \(mobile 8613800000011, code 482931\)$`))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pull exited with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("pull did not exit")
	}
}

func TestPushExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := build(t, "./push")
	// A free port for the receiver, known before the sandbox starts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := sandbox(ctx, t, "--template", "9=http://"+addr+"/fotp/callback")

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append(env, "FOTP_LISTEN="+addr)...)
	_, logs := start(t, cmd, false, true)
	await(ctx, t, logs, regexp.MustCompile(`listening on`))

	resp, err := http.Get("http://" + addr + "/start?ftId=9")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ URL, Code string }
	err = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !regexp.MustCompile(`^\d{6}$`).MatchString(v.Code) {
		t.Fatalf("/start: %d %+v %v", resp.StatusCode, v, err)
	}
	uplink(t, baseURL(env), "8613800000012", fmt.Sprintf("code %s", v.Code))
	await(ctx, t, logs, regexp.MustCompile(`mobile 8613800000012 verified: true`))
}

// uplinkN simulates the user's SMS for ftToken, its callback delivered n times.
func uplinkN(t *testing.T, baseURL, ftToken, mobile, content string, n int) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"ftToken": ftToken, "mobile": mobile, "content": content, "deliveries": n})
	resp, err := http.Post(baseURL+"/sandbox/uplink", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(answer), `"000000"`) {
		t.Fatalf("uplink: %d %s", resp.StatusCode, answer)
	}
}

// freeAddr returns a loopback address that is free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// redisURL starts a private redis-server on an ephemeral port and returns its URL; the test
// is skipped when redis-server is missing, unless FOTP_REQUIRE_REDIS is set.
func redisURL(ctx context.Context, t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("FOTP_REQUIRE_REDIS") != "" {
			t.Fatalf("FOTP_REQUIRE_REDIS is set but redis-server is not installed: %v", err)
		}
		t.Skip("*** SKIPPED: redis-server is not installed; set FOTP_REQUIRE_REDIS=1 to make this a failure ***")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	out, _ := start(t, cmd, true, false)
	await(ctx, t, out, regexp.MustCompile(`Ready to accept connections`))
	go func() {
		for range out { // keep draining the log
		}
	}()
	return "redis://" + addr + "/"
}

// getJSON GETs url and decodes its JSON answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// pushTracker runs the push-tracker example: instances[0] starts the verification and
// answers /result, instances[len-1] receives the callbacks (the same one without Redis).
func pushTracker(t *testing.T, redis bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := build(t, "./push-tracker")
	n := 1
	var extra []string
	if redis {
		n = 2
		extra = []string{"FOTP_REDIS_URL=" + redisURL(ctx, t), "FOTP_REDIS_NS=example"}
	}
	addrs := make([]string, n)
	logs := make([]<-chan string, n)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	env := sandbox(ctx, t, "--template", "9=http://"+addrs[n-1]+"/fotp/callback")
	for i, addr := range addrs {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), append(append(env, extra...), "FOTP_LISTEN="+addr)...)
		_, logs[i] = start(t, cmd, false, true)
		await(ctx, t, logs[i], regexp.MustCompile(`listening on`))
	}

	var v struct{ URL, FtToken string }
	getJSON(t, "http://"+addrs[0]+"/start?ftId=9", &v)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(v.FtToken) || !strings.Contains(v.URL, v.FtToken) {
		t.Fatalf("/start: %+v", v)
	}
	type result struct{ Status, Mobile string }
	got := make(chan result, 1)
	go func() {
		var r result
		resp, err := http.Get("http://" + addrs[0] + "/result?ftToken=" + v.FtToken)
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
		}
		got <- r
	}()
	code := codeOf(t, baseURL(env), v.FtToken)
	if !regexp.MustCompile(`^[1-9][0-9]{5}$`).MatchString(code) {
		t.Fatalf("the tracker's code %q is not 6 digits without a leading 0", code)
	}
	uplinkN(t, baseURL(env), v.FtToken, "8613800000013", "code "+code, 2)
	cbLogs := logs[n-1]
	settled := regexp.MustCompile(`callback for ` + v.FtToken + `: settled`)
	await(ctx, t, cbLogs, regexp.MustCompile(`callback for `+v.FtToken+`: settled \(mobile 8613800000013\)`))
	// The repeated delivery is acknowledged without the app's function.
	for accepted(t, baseURL(env), v.FtToken) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the repeated delivery was not acknowledged")
		case <-time.After(20 * time.Millisecond):
		}
	}
	for drained := time.After(300 * time.Millisecond); ; {
		select {
		case l := <-cbLogs:
			if settled.MatchString(l) {
				t.Fatalf("the function ran for the repeated delivery: %s", l)
			}
			continue
		case <-drained:
		}
		break
	}
	select {
	case r := <-got:
		if r.Status != "success" || r.Mobile != "8613800000013" {
			t.Fatalf("/result: %+v", r)
		}
	case <-ctx.Done():
		t.Fatal("/result did not answer")
	}
}

// accepted is the number of deliveries of ftToken's callback that the receiver acknowledged.
func accepted(t *testing.T, baseURL, ftToken string) int {
	t.Helper()
	var list struct {
		Sessions []struct {
			FtToken   string
			Callbacks []struct{ Accepted bool }
		}
	}
	getJSON(t, baseURL+"/sandbox/sessions", &list)
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

// codeOf looks up the code of a session in the sandbox (the user would read it in the SMS).
func codeOf(t *testing.T, baseURL, ftToken string) string {
	t.Helper()
	var list struct {
		Sessions []struct{ FtToken, Code string }
	}
	getJSON(t, baseURL+"/sandbox/sessions", &list)
	for _, s := range list.Sessions {
		if s.FtToken == ftToken {
			return s.Code
		}
	}
	t.Fatalf("the sandbox has no session %s", ftToken)
	return ""
}

func TestPushTrackerExample(t *testing.T) { pushTracker(t, false) }

func TestPushTrackerExampleTwoInstancesSharingRedis(t *testing.T) { pushTracker(t, true) }
