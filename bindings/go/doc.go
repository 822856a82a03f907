// Package fotp verifies phone numbers with Flash OTP: a mobile-originated SMS.
//
// Client.Verify asks the platform for a redirect link and a code; the user opens the link on
// the phone and sends the prepared SMS. The result is then pulled with Client.Query or
// Client.Wait, or pushed by the platform to the template's callback address.
//
// In push mode a callback names no ftToken, only the mobile number and the code, and it
// carries no signature: anyone who knows the callback address can post one. A Tracker
// (NewMemoryTracker, or NewRedisTracker for several app instances) starts verifications with
// codes no other live one holds, and its receiver TrackedCallbackHandler settles each
// callback (Tracker.Settle: the platform confirms it with one query) before your function
// sees it: your function runs once per verification, for the first genuine delivery, never
// for a forged or repeated one, never twice at the same time; when it fails, the settlement
// is undone and the platform's next delivery is offered to it again. Tracker.Wait returns as
// soon as the callback was settled. Without a tracker, CallbackHandler serves every
// delivery, and Client.Confirm cross-checks a callback.
//
// The methods that talk to the platform (Client's Verify, Query, Wait, Confirm; Tracker's
// Verify, Settle, Wait) take a context; Tracker.Match (the store only), constructors,
// ParseCallback, Close and the handlers do not.
//
// Errors are *Error values: compare them with errors.Is against ErrInvalidArgument, ErrConfig,
// ErrNetwork, ErrTimeout, ErrHTTPStatus, ErrAPI, ErrDecode, ErrExhausted and ErrInternal;
// docs/ERRORS.md in the repository says exactly when each kind is used. A zero Config field
// means "unset" (the library default): set Retries to NoRetries to disable retries. A nil
// handler, tracker or client given to CallbackHandler or TrackedCallbackHandler panics at
// once, as http.Handle does.
//
// Time limits: Config.Timeout bounds each attempt (a query attempt that runs out of it is
// retried), and the context's deadline bounds the whole call. Cancelling the context returns
// ctx.Err() at once; the library call stops within about 100 ms (a verify not sent yet is
// never sent), so its OS thread is free again. Wait sleeps in Go between polls and holds no
// OS thread meanwhile.
//
// The package wraps the fotp C library (cgo; static linking by default, the fotp_dynamic
// build tag links libfotp.so). The library retries system calls interrupted by signals, which
// Go's runtime sends to its threads all the time. Go programs do not fork (os/exec starts new
// programs), so the library's fork safety does not concern them. See README.md.
package fotp
