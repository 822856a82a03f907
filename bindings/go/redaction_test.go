package fotp

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestFormattingNeverShowsTheCode: fmt (every verb, pointers, nested values) and slog (text
// and JSON handlers) never show an OTP code, the SMS text that carries it or a full mobile
// number (its last 4 digits only, as in the library's log events); the other fields show.
func TestFormattingNeverShowsTheCode(t *testing.T) {
	const code, mobile, masked = "5776", "8615711666132", "*********6132"
	cases := []struct {
		value   any
		visible []string
	}{
		{VerifyRequest{FtID: "tpl-7", Code: code, ValidityMinutes: 3},
			[]string{"VerifyRequest", "tpl-7", "3"}},
		{Verification{URL: "https://x/r/tok-1", FtToken: "tok-1", MessageID: "msg-1", Code: code},
			[]string{"Verification", "https://x/r/tok-1", "msg-1"}},
		{QueryResult{Status: StatusSuccess, RawStatus: "2", Mobile: mobile, Sender: "1008611",
			SendTime: "2025-05-15 11:23:34", Code: code, DeliverTime: "2025-05-15 11:24:24"},
			[]string{"QueryResult", "success", masked, "1008611", "11:23:34", "11:24:24"}},
		{Callback{Mobile: mobile, Sender: "1008611", SendTime: "2025-05-15 11:23:34", Code: code,
			Content: "Your VIP Key: ##FG5x-5776##", DeliverTime: "2025-05-15 11:24:24", Err: "why-not"},
			[]string{"Callback", masked, "1008611", "11:23:34", "11:24:24", "why-not"}},
	}
	hidden := []string{code, mobile, "VIP"}
	check := func(t *testing.T, what, s string, visible []string) {
		t.Helper()
		for _, h := range hidden {
			if strings.Contains(s, h) {
				t.Errorf("%s shows %q: %s", what, h, s)
			}
		}
		for _, v := range visible {
			if !strings.Contains(s, v) {
				t.Errorf("%s lacks %q: %s", what, v, s)
			}
		}
	}
	for _, c := range cases {
		name := fmt.Sprintf("%T", c.value)
		t.Run(name, func(t *testing.T) {
			nested := struct{ Inner any }{c.value}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%10.200v"} {
				check(t, verb, fmt.Sprintf(verb, c.value), c.visible)
				check(t, verb+" of a struct holding it", fmt.Sprintf(verb, nested), c.visible)
				check(t, verb+" of a slice of it", fmt.Sprintf(verb, []any{c.value}), c.visible)
			}
			check(t, "%v of a pointer", fmt.Sprintf("%v", pointerTo(c.value)), c.visible)
			check(t, "Println", fmt.Sprintln(c.value), c.visible)
			// %x hex-encodes: the encoded code must not be there either.
			check(t, "%x", fmt.Sprintf("%x", c.value), nil)
			if strings.Contains(fmt.Sprintf("%x", c.value), fmt.Sprintf("%x", code)) {
				t.Errorf("%%x shows the code hex-encoded")
			}
			for _, h := range []struct {
				name string
				new  func(*bytes.Buffer) slog.Handler
			}{
				{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
				{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
			} {
				var buf bytes.Buffer
				slog.New(h.new(&buf)).Info("got", "value", c.value, "pointer", pointerTo(c.value))
				check(t, "slog "+h.name, buf.String(), c.visible[1:])
			}
		})
	}
}

func pointerTo(v any) any {
	switch v := v.(type) {
	case VerifyRequest:
		return &v
	case Verification:
		return &v
	case QueryResult:
		return &v
	case Callback:
		return &v
	}
	panic(fmt.Sprintf("no case for %T", v))
}
