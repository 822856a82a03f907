// Package fotp verifies phone numbers with Flash OTP: a mobile-originated SMS.
//
// Client.Verify asks the platform for a redirect link and a code; the user opens the link on
// the phone and sends the prepared SMS. The result is then pulled with Client.Query or
// Client.Wait, or pushed by the platform to the template's callback address, served with
// CallbackHandler (or parsed with ParseCallback) and cross-checked with Client.Confirm.
//
// In push mode a callback names no ftToken, only the mobile number and the code. A Tracker
// (NewMemoryTracker, or NewRedisTracker for several app instances) starts verifications with
// codes no other live one holds, matches each callback to its token exactly once
// (TrackedCallbackHandler, Tracker.Match) and lets Tracker.Wait return when it arrived.
//
// The package wraps the fotp C library (cgo; static linking by default, the fotp_dynamic
// build tag links libfotp.so). Every method takes a context: a deadline shortens the call's
// time limit, and cancellation returns ctx.Err() at once while the abandoned C call ends
// within its own time limit in the background (see README.md).
package fotp
