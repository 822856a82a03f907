// Command fotp-bench-go is the Go side of the benchmarks (driven by bench/driver.py).
//
//	fotp-bench-go cases BASE_URL CALLBACK_JSON   reads `CASE N` lines, answers `ok <ns>`
//	fotp-bench-go coldstart BASE_URL             prints `ok <ns>`: NewClient
//
// Cases: go-verify, go-query (the binding); nethttp-verify, nethttp-query (net/http with
// the signing written in Go, as users without fotp would); go-parse (fotp.ParseCallback)
// against json-parse (encoding/json into a struct with the same validation); go-tp-T: T
// goroutines sharing one fotp.Client, each making a verify then a query; nethttp-tp-T: the
// same with net/http.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	fotp "github.com/fotp-sdk/fotp-go/fotp"
)

const (
	appID  = "sandbox"
	secret = "sandbox-secret"
	token  = "44cadc6071214b968b3b3bb1cb5a6c24"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "coldstart" {
		t := time.Now()
		c, err := newClient(os.Args[2])
		dt := time.Since(t)
		if err != nil {
			fatal(err)
		}
		c.Close()
		fmt.Printf("ok %d\n", dt.Nanoseconds())
		return
	}
	if len(os.Args) != 4 || os.Args[1] != "cases" {
		fmt.Fprintln(os.Stderr, "usage: fotp-bench-go cases BASE_URL CALLBACK_JSON | coldstart BASE_URL")
		os.Exit(2)
	}
	if err := cases(os.Args[2], os.Args[3]); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "fotp-bench-go:", err)
	os.Exit(1)
}

func newClient(base string) (*fotp.Client, error) {
	return fotp.NewClient(fotp.Config{BaseURL: base, AppID: appID, AppSecret: secret})
}

// signed builds a request signed with the contract's hmac-sha256 scheme, in plain Go.
func signed(url string, body []byte) (*http.Request, error) {
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, err
	}
	nonce := hex.EncodeToString(nb[:])
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(appID + "\n" + ts + "\n" + nonce + "\n"))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h["Content-Type"] = []string{"application/json;charset=utf-8"}
	h["Accept"] = []string{"application/json"}
	h["appId"] = []string{appID}
	h["timestamp"] = []string{ts}
	h["nonce"] = []string{nonce}
	h["sign"] = []string{hex.EncodeToString(mac.Sum(nil))}
	return req, nil
}

type envelope[T any] struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Data    *T     `json:"data"`
}

type plainVerification struct {
	URL       string `json:"url"`
	FtToken   string `json:"ftToken"`
	MessageID string `json:"messageId"`
	Code      string `json:"code"`
}

type plainQuery struct {
	Status      json.RawMessage `json:"status"`
	Mobile      string          `json:"mobile"`
	Sender      string          `json:"sender"`
	SendTime    string          `json:"sendTime"`
	Code        string          `json:"code"`
	DeliverTime string          `json:"deliverTime"`
}

func post[T any](hc *http.Client, url string, reqBody any) (*T, error) {
	body, err := json.Marshal(reqBody)
	if err != nil {
		return nil, err
	}
	req, err := signed(url, body)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var env envelope[T]
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	if env.Code != "000000" || env.Data == nil {
		return nil, fmt.Errorf("API error %s: %s", env.Code, env.Message)
	}
	return env.Data, nil
}

// strOrInt is a callback field that may come as a JSON string or integer.
type strOrInt struct {
	s   string
	set bool
}

func (f *strOrInt) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		f.set = true
		return json.Unmarshal(b, &f.s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			return errors.New("not an integer")
		}
		f.s, f.set = string(n), true
		return nil
	}
}

type plainCallback struct {
	Mobile      string
	Sender      string
	SendTime    string
	Code        string
	Content     string
	DeliverTime string
	Err         string
}

// plainParseCallback is what a user writes without fotp: encoding/json into a struct, with
// the contract's checks.
func plainParseCallback(body []byte) (*plainCallback, error) {
	if len(body) > 64*1024 {
		return nil, errors.New("callback body over 64 KiB")
	}
	var raw struct {
		Mobile      strOrInt `json:"mobile"`
		Sender      strOrInt `json:"sender"`
		SendTime    strOrInt `json:"sendTime"`
		Code        strOrInt `json:"code"`
		Content     strOrInt `json:"content"`
		DeliverTime strOrInt `json:"deliverTime"`
		Err         strOrInt `json:"err"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		v    strOrInt
	}{{"mobile", raw.Mobile}, {"sender", raw.Sender}, {"sendTime", raw.SendTime}, {"code", raw.Code}} {
		if !f.v.set || f.v.s == "" {
			return nil, fmt.Errorf("callback field %s is missing or empty", f.name)
		}
	}
	return &plainCallback{raw.Mobile.s, raw.Sender.s, raw.SendTime.s, raw.Code.s,
		raw.Content.s, raw.DeliverTime.s, raw.Err.s}, nil
}

func check(ok bool, what string) error {
	if !ok {
		return errors.New("unexpected " + what)
	}
	return nil
}

func cases(base, callbackFile string) error {
	cbBody, err := os.ReadFile(callbackFile)
	if err != nil {
		return err
	}
	client, err := newClient(base)
	if err != nil {
		return err
	}
	defer client.Close()
	raw, err := newRawClient(base)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	verifyURL, queryURL := base+"/flash/opt/verify", base+"/flash/opt/query"

	goVerify := func() error {
		v, err := client.Verify(ctx, fotp.VerifyRequest{FtID: "2"})
		if err != nil {
			return err
		}
		return check(v.Code == "3872", "verify code")
	}
	goQuery := func() error {
		r, err := client.Query(ctx, token)
		if err != nil {
			return err
		}
		return check(r.Status == fotp.StatusSuccess, "query status")
	}
	nethttpVerify := func(hc *http.Client) func() error {
		return func() error {
			v, err := post[plainVerification](hc, verifyURL, map[string]string{"ftId": "2"})
			if err != nil {
				return err
			}
			return check(v.Code == "3872", "verify code")
		}
	}
	nethttpQuery := func(hc *http.Client) func() error {
		return func() error {
			r, err := post[plainQuery](hc, queryURL, map[string]string{"ftToken": token})
			if err != nil {
				return err
			}
			return check(string(r.Status) == `"2"`, "query status")
		}
	}
	ops := map[string]func() error{
		"go-verify":      goVerify,
		"go-query":       goQuery,
		"cgo-verify":     raw.verify,
		"nethttp-verify": nethttpVerify(hc),
		"nethttp-query":  nethttpQuery(hc),
		"go-parse": func() error {
			cb, err := fotp.ParseCallback(cbBody)
			if err != nil {
				return err
			}
			return check(cb.Code == "5776", "callback code")
		},
		"json-parse": func() error {
			cb, err := plainParseCallback(cbBody)
			if err != nil {
				return err
			}
			return check(cb.Code == "5776", "callback code")
		},
	}
	// Enough idle connections for every goroutine (the default keeps 2 per host).
	tpClient := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	pairs := map[string][2]func() error{
		"go":      {goVerify, goQuery},
		"nethttp": {nethttpVerify(tpClient), nethttpQuery(tpClient)},
	}
	throughput := func(pair [2]func() error, goroutines, n int) error {
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := 0; g < goroutines; g++ {
			share := n / goroutines
			if g < n%goroutines {
				share++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < share; i++ {
					if err := pair[0](); err != nil {
						errs <- err
						return
					}
					if err := pair[1](); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs // nil when the channel is empty
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		var n int
		if len(fields) == 2 {
			n, err = strconv.Atoi(fields[1])
		}
		if len(fields) != 2 || err != nil {
			fmt.Fprintf(out, "error bad command %q\n", in.Text())
			out.Flush()
			continue
		}
		name := fields[0]
		var runErr error
		t := time.Now()
		prefix, g, isTP := strings.Cut(name, "-tp-")
		if pair, ok := pairs[prefix]; ok && isTP {
			gs, convErr := strconv.Atoi(g)
			if convErr != nil || gs <= 0 {
				runErr = fmt.Errorf("bad goroutine count %q", g)
			} else {
				runErr = throughput(pair, gs, n)
			}
		} else if op, ok := ops[name]; ok {
			for i := 0; i < n && runErr == nil; i++ {
				runErr = op()
			}
		} else {
			runErr = errors.New("unknown case")
		}
		dt := time.Since(t)
		if runErr != nil {
			fmt.Fprintf(out, "error %s: %v\n", name, runErr)
		} else {
			fmt.Fprintf(out, "ok %d\n", dt.Nanoseconds())
		}
		out.Flush()
	}
	return in.Err()
}
