package fotp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func seedCallback(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../tests/data/callback.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCallbackSeed(t *testing.T) {
	cb, err := ParseCallback(seedCallback(t))
	if err != nil {
		t.Fatal(err)
	}
	if cb.Mobile != "8615711666132" || cb.Sender != "1008611" || cb.SendTime != "2025-05-15 11:23:34" ||
		cb.Code != "5776" || cb.DeliverTime != "2025-05-15 11:24:24" || cb.Err != "" {
		t.Fatalf("%+v", cb)
	}
	if !strings.HasPrefix(cb.Content, "🔐 Exclusive Access Unlocked!\nYour VIP Key: ##FG5x-5776##") ||
		strings.Count(cb.Content, "\n") != 5 {
		t.Fatalf("content %q", cb.Content)
	}
}

func TestParseCallbackShapes(t *testing.T) {
	cb, err := ParseCallback([]byte(`{"mobile":8613800000000,"sender":1008611,"sendTime":"t","code":5776,
		"content":null,"deliverTime":null,"err":"expired","extra":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Callback{Mobile: "8613800000000", Sender: "1008611", SendTime: "t", Code: "5776", Err: "expired"}
	if *cb != want {
		t.Fatalf("got %+v", cb)
	}
	bad := []struct{ body, want string }{
		{``, ""},
		{`not json`, ""},
		{`[]`, ""},
		{`{"sender":"1","sendTime":"t","code":"1234"}`, "mobile"},
		{`{"mobile":"","sender":"1","sendTime":"t","code":"1234"}`, "mobile"},
		{`{"mobile":"1","sender":"1","sendTime":"t"}`, "code"},
		{`{"mobile":"1","sender":"1","sendTime":true,"code":"1234"}`, "sendTime"},
		{`{"mobile":"1","sender":"1","sendTime":"t","code":"1234","content":{}}`, "content"},
		{"{\"mobile\":\"\xff\",\"sender\":\"1\",\"sendTime\":\"t\",\"code\":\"1234\"}", ""},
		{`{"mobile":"1","sender":"1","sendTime":"t","code":"1234"} trailing`, ""},
		{`{"mobile":"` + strings.Repeat("9", MaxCallbackBytes) + `","sender":"1","sendTime":"t","code":"1"}`, "limit"},
	}
	for _, tc := range bad {
		cb, err := ParseCallback([]byte(tc.body))
		if cb != nil {
			t.Fatalf("%.60q parsed: %+v", tc.body, cb)
		}
		fe := wantKind(t, err, KindDecode, ErrDecode)
		if !strings.Contains(fe.Message, tc.want) {
			t.Fatalf("%.60q: message %q does not name %q", tc.body, fe.Message, tc.want)
		}
	}
	if _, err := ParseCallback(nil); !errors.Is(err, ErrDecode) {
		t.Fatalf("nil body: %v", err)
	}
}

func TestCallbackAckMatchesLibrary(t *testing.T) {
	if libraryAck() != CallbackAck {
		t.Fatalf("library ack %q, binding %q", libraryAck(), CallbackAck)
	}
	b, err := os.ReadFile("../../tests/data/callback-ack.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != CallbackAck {
		t.Fatalf("vector %q", b)
	}
}

func TestCallbackHandler(t *testing.T) {
	var got []*Callback
	var fail error
	h := CallbackHandler(func(ctx context.Context, cb *Callback) error {
		if ctx == nil {
			return errors.New("no context")
		}
		got = append(got, cb)
		return fail
	})
	do := func(method, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/callback", strings.NewReader(body)))
		return rec
	}

	rec := do(http.MethodPost, string(seedCallback(t)))
	if rec.Code != 200 || rec.Body.String() != CallbackAck ||
		rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("accepted: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	if len(got) != 1 || got[0].Code != "5776" {
		t.Fatalf("handler saw %+v", got)
	}

	rec = do(http.MethodPost, `{"mobile":"1","sender":"1","sendTime":"t"}`)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "code") {
		t.Fatalf("missing field: %d %q", rec.Code, rec.Body.String())
	}
	rec = do(http.MethodPost, `{"mobile":"`+strings.Repeat("1", 2*MaxCallbackBytes)+`"}`)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "limit") {
		t.Fatalf("oversized: %d %.200q", rec.Code, rec.Body.String())
	}
	rec = do(http.MethodGet, "")
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d", rec.Code)
	}
	if len(got) != 1 {
		t.Fatalf("handler called for refused requests: %d", len(got))
	}

	fail = errors.New("secret database password in this error")
	rec = do(http.MethodPost, string(seedCallback(t)))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "password") {
		t.Fatalf("handler error: %d %q", rec.Code, rec.Body.String())
	}

	// Over a real connection, as the platform sees it.
	fail = nil
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(string(seedCallback(t))))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != CallbackAck {
		t.Fatalf("over HTTP: %d %q", resp.StatusCode, body)
	}
}

func TestErrorKindsAndSentinels(t *testing.T) {
	sentinels := map[ErrorKind]*Error{
		KindInvalidArgument: ErrInvalidArgument, KindConfig: ErrConfig, KindNetwork: ErrNetwork,
		KindTimeout: ErrTimeout, KindHTTPStatus: ErrHTTPStatus, KindAPI: ErrAPI,
		KindDecode: ErrDecode, KindExhausted: ErrExhausted, KindInternal: ErrInternal,
	}
	values := map[ErrorKind]int{KindInvalidArgument: 1, KindConfig: 2, KindNetwork: 3, KindTimeout: 4,
		KindHTTPStatus: 5, KindAPI: 6, KindDecode: 7, KindExhausted: 8, KindInternal: 99}
	for kind, s := range sentinels {
		if int(kind) != values[kind] {
			t.Fatalf("%s has value %d", kind, int(kind))
		}
		err := fmt.Errorf("wrapped: %w", &Error{Kind: kind, Message: "m"})
		for other, o := range sentinels {
			if errors.Is(err, o) != (other == kind) {
				t.Fatalf("errors.Is(%s error, Err of %s) = %v", kind, other, !(other == kind))
			}
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != kind || s.Kind != kind {
			t.Fatalf("errors.As for %s", kind)
		}
		if strings.HasPrefix(kind.String(), "kind(") {
			t.Fatalf("%d has no name", int(kind))
		}
	}
	e := &Error{Kind: KindAPI, Message: "unknown ftToken", APICode: "300001", HTTPStatus: 200}
	if e.Error() != "fotp: api error 300001: unknown ftToken" {
		t.Fatal(e.Error())
	}
	if (&Error{Kind: 42}).Is(ErrInternal) || ErrorKind(42).String() != "kind(42)" {
		t.Fatal("unknown kinds match nothing")
	}
}

func BenchmarkParseCallback(b *testing.B) {
	body := seedCallback(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseCallback(body); err != nil {
			b.Fatal(err)
		}
	}
}
