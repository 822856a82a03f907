// Command pull verifies a phone number in pull mode: it asks for a verification, prints the
// link to open on the phone, and waits for the result by polling query.
//
// It reads FOTP_BASE_URL, FOTP_APP_ID and FOTP_APP_SECRET (or the token scheme) from the
// environment. Try it against the sandbox: run `target/release/fotp sandbox --addr
// 127.0.0.1:8788` in another terminal, export the three FOTP_* lines it prints, then
//
//	go run ./pull -ft-id 2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	fotp "github.com/fotp-sdk/fotp-go/fotp"
)

func main() {
	ftID := flag.String("ft-id", "2", "template id (ftId)")
	code := flag.String("code", "", "the code to send (4-6 digits); empty lets the platform choose")
	wait := flag.Duration("wait", 5*time.Minute, "how long to wait for the user's SMS")
	flag.Parse()
	os.Exit(run(*ftID, *code, *wait))
}

func run(ftID, code string, wait time.Duration) int {
	client, err := fotp.NewClientFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		return 2
	}
	defer client.Close()

	// Ctrl-C cancels the wait.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	v, err := client.Verify(ctx, fotp.VerifyRequest{FtID: ftID, Code: code})
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify:", err)
		return exitCode(err)
	}
	fmt.Printf("Open this link on the phone and send the SMS (code %s):\n%s\n", v.Code, v.URL)

	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r, err := client.Wait(ctx, v.FtToken)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wait:", err)
		return exitCode(err)
	}
	fmt.Printf("status: %s (mobile %s, code %s)\n", r.Status, r.Mobile, r.Code)
	if r.Status != fotp.StatusSuccess {
		return 1
	}
	return 0
}

// exitCode follows the command line's convention: 2 bad input, 3 network or time-out, 1 else.
func exitCode(err error) int {
	switch {
	case errors.Is(err, fotp.ErrInvalidArgument), errors.Is(err, fotp.ErrConfig):
		return 2
	case errors.Is(err, fotp.ErrNetwork), errors.Is(err, fotp.ErrTimeout), errors.Is(err, context.Canceled):
		return 3
	}
	return 1
}
