package fotp

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// Status is the status of a verification, with the values of the C ABI (fotp_status).
type Status int

// Verification statuses. StatusUnknown stands for any value the platform sent that is not
// 0, 1 or 2; the raw value is kept in QueryResult.RawStatus.
const (
	StatusProcessing Status = 0
	StatusFailed     Status = 1
	StatusSuccess    Status = 2
	StatusUnknown    Status = 255
)

func (s Status) String() string {
	switch s {
	case StatusProcessing:
		return "processing"
	case StatusFailed:
		return "failed"
	case StatusSuccess:
		return "success"
	case StatusUnknown:
		return "unknown"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// IsFinal reports whether the status will not change any more (failed or success).
func (s Status) IsFinal() bool { return s == StatusFailed || s == StatusSuccess }

// VerifyRequest is what Client.Verify sends. The zero value of an optional field means
// "unset": Code "" lets the platform choose the code, ValidityMinutes 0 means the platform's
// default (5 minutes). Formatted (fmt, slog), it shows the code as <redacted>.
type VerifyRequest struct {
	FtID            string // template id, 1-64 characters, no control characters
	Code            string // 4-6 ASCII digits, or "" for the platform's choice
	ValidityMinutes int    // 1-10, or 0 for the platform's default
}

// Verification is the platform's answer to verify. Formatted (fmt, slog), it shows the code as
// <redacted>.
type Verification struct {
	URL       string `json:"url"`       // the redirect link to open on the phone
	FtToken   string `json:"ftToken"`   // the token to query the result with
	MessageID string `json:"messageId"` // the platform's message id
	Code      string `json:"code"`      // the code the user's SMS must carry
}

// QueryResult is the platform's answer to query. Absent fields are "". Formatted (fmt, slog),
// it shows the code as <redacted> and the mobile's last 4 digits only, as the library's log
// events do.
type QueryResult struct {
	Status      Status `json:"-"`
	RawStatus   string `json:"status"` // the status exactly as the platform sent it
	Mobile      string `json:"mobile,omitempty"`
	Sender      string `json:"sender,omitempty"`
	SendTime    string `json:"sendTime,omitempty"`
	Code        string `json:"code,omitempty"`
	DeliverTime string `json:"deliverTime,omitempty"`
}

// Callback is a result pushed by the platform (push mode). Mobile, Sender, SendTime and
// Code are never empty in a parsed callback; the optional fields are "" when absent.
//
// A callback carries no signature: confirm it with Client.Confirm before trusting it.
//
// Formatted (fmt, slog), it shows the code and the SMS text (which carries the code) as
// <redacted> and the mobile's last 4 digits only, as the library's log events do.
type Callback struct {
	Mobile      string `json:"mobile"`
	Sender      string `json:"sender"`
	SendTime    string `json:"sendTime"`
	Code        string `json:"code"`
	Content     string `json:"content,omitempty"`
	DeliverTime string `json:"deliverTime,omitempty"`
	// Err is the platform's "err" field as sent: its reason why the verification failed, ""
	// when absent. A string, not a Go error: the callback itself arrived and parsed fine, and
	// the name and type are those of the wire field (CONTRACT sections 1 and 5); wrapping it in
	// an error would lose nothing but invite `if cb.Err != nil` checks that read as a failure
	// of the call.
	Err string `json:"err,omitempty"`
}

// Formatting: OTP codes never show, since formatted values end up in logs. Each type has a
// Format method (without one, %d and a struct's fields would print the code), String (for
// loggers that look for a Stringer) and LogValue (slog's JSON handler would otherwise marshal
// every field). JSON encoding is unchanged: it is the data, not a log.

// hidden is what shows for a code (or text carrying one): "" when unset, so that "no code"
// stays visible.
func hidden(s string) string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// quotedHidden is hidden in the %q style of the other fields.
func quotedHidden(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// maskMobile replaces all but the last 4 characters of m with '*', as the library's log events
// do.
func maskMobile(m string) string {
	n := utf8.RuneCountInString(m)
	if n <= 4 {
		return m
	}
	var b strings.Builder
	i := 0
	for _, r := range m {
		if i < n-4 {
			b.WriteByte('*')
		} else {
			b.WriteRune(r)
		}
		i++
	}
	return b.String()
}

// formatAs prints s (a value's String) for every verb, honouring width and flags.
func formatAs(f fmt.State, verb rune, s string) {
	if verb == 'v' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s)
}

// String shows the request with the code redacted.
func (r VerifyRequest) String() string {
	return fmt.Sprintf("fotp.VerifyRequest{FtID:%q Code:%s ValidityMinutes:%d}",
		r.FtID, quotedHidden(r.Code), r.ValidityMinutes)
}

// Format makes every fmt verb print String.
func (r VerifyRequest) Format(f fmt.State, verb rune) { formatAs(f, verb, r.String()) }

// LogValue is what slog records show: the code redacted.
func (r VerifyRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("ftId", r.FtID), slog.String("code", hidden(r.Code)),
		slog.Int("validityMinutes", r.ValidityMinutes))
}

// String shows the verification with the code redacted.
func (v Verification) String() string {
	return fmt.Sprintf("fotp.Verification{URL:%q FtToken:%q MessageID:%q Code:%s}",
		v.URL, v.FtToken, v.MessageID, quotedHidden(v.Code))
}

// Format makes every fmt verb print String.
func (v Verification) Format(f fmt.State, verb rune) { formatAs(f, verb, v.String()) }

// LogValue is what slog records show: the code redacted.
func (v Verification) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", v.URL), slog.String("ftToken", v.FtToken),
		slog.String("messageId", v.MessageID), slog.String("code", hidden(v.Code)))
}

// String shows the result with the code redacted and the mobile masked.
func (r QueryResult) String() string {
	return fmt.Sprintf("fotp.QueryResult{Status:%v RawStatus:%q Mobile:%q Sender:%q SendTime:%q "+
		"Code:%s DeliverTime:%q}", r.Status, r.RawStatus, maskMobile(r.Mobile), r.Sender,
		r.SendTime, quotedHidden(r.Code), r.DeliverTime)
}

// Format makes every fmt verb print String.
func (r QueryResult) Format(f fmt.State, verb rune) { formatAs(f, verb, r.String()) }

// LogValue is what slog records show: the code redacted, the mobile masked.
func (r QueryResult) LogValue() slog.Value {
	return slog.GroupValue(slog.String("status", r.Status.String()),
		slog.String("rawStatus", r.RawStatus), slog.String("mobile", maskMobile(r.Mobile)),
		slog.String("sender", r.Sender), slog.String("sendTime", r.SendTime),
		slog.String("code", hidden(r.Code)), slog.String("deliverTime", r.DeliverTime))
}

// String shows the callback with the code and the SMS text redacted and the mobile masked.
func (c Callback) String() string {
	return fmt.Sprintf("fotp.Callback{Mobile:%q Sender:%q SendTime:%q Code:%s Content:%s "+
		"DeliverTime:%q Err:%q}", maskMobile(c.Mobile), c.Sender, c.SendTime,
		quotedHidden(c.Code), quotedHidden(c.Content), c.DeliverTime, c.Err)
}

// Format makes every fmt verb print String.
func (c Callback) Format(f fmt.State, verb rune) { formatAs(f, verb, c.String()) }

// LogValue is what slog records show: the code and the SMS text redacted, the mobile masked.
func (c Callback) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mobile", maskMobile(c.Mobile)),
		slog.String("sender", c.Sender), slog.String("sendTime", c.SendTime),
		slog.String("code", hidden(c.Code)), slog.String("content", hidden(c.Content)),
		slog.String("deliverTime", c.DeliverTime), slog.String("err", c.Err))
}
