package fotp

import "fmt"

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
// default (5 minutes).
type VerifyRequest struct {
	FtID            string // template id, 1-64 characters, no control characters
	Code            string // 4-6 ASCII digits, or "" for the platform's choice
	ValidityMinutes int    // 1-10, or 0 for the platform's default
}

// Verification is the platform's answer to verify.
type Verification struct {
	URL       string `json:"url"`       // the redirect link to open on the phone
	FtToken   string `json:"ftToken"`   // the token to query the result with
	MessageID string `json:"messageId"` // the platform's message id
	Code      string `json:"code"`      // the code the user's SMS must carry
}

// QueryResult is the platform's answer to query. Absent fields are "".
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
