package fotp_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/fotp-sdk/fotp-go/fotp"
)

// Pull mode: start a verification, let the user send the SMS, wait for the result.
func ExampleClient() {
	// In an app: fotp.NewClient(fotp.Config{BaseURL: ..., AppID: ..., AppSecret: ...}) or
	// fotp.NewClientFromEnv(). Here, the sandbox the tests run against.
	client, err := fotp.NewClient(fotp.SandboxConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	v, err := client.Verify(ctx, fotp.VerifyRequest{FtID: "2"})
	if err != nil {
		log.Fatal(err)
	}
	// Show v.URL to the user, who opens it on the phone and sends the SMS (simulated here).
	if err := fotp.SimulateSMS(v.FtToken, "8613800000000", v.Code); err != nil {
		log.Fatal(err)
	}
	r, err := client.Wait(ctx, v.FtToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Status, r.Mobile)
	// Output: success 8613800000000
}

// Push mode at scale: a tracker gives each verification a code no other live one holds, so a
// callback (which names no token) finds its verification; Wait returns once it is settled.
func ExampleTracker() {
	client, err := fotp.NewClient(fotp.SandboxConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	tracker, err := fotp.NewMemoryTracker() // or fotp.NewRedisTracker(url, "myapp")
	if err != nil {
		log.Fatal(err)
	}
	defer tracker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	v, err := tracker.Verify(ctx, client, fotp.TrackerVerifyRequest{FtID: "2", CodeLength: 5})
	if err != nil {
		log.Fatal(err)
	}
	if err := fotp.SimulateSMS(v.FtToken, "8613800000001", v.Code); err != nil {
		log.Fatal(err)
	}
	r, err := tracker.Wait(ctx, client, v.FtToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(v.Code), r.Status)
	// Output: 5 success
}

// A receiver for the template's callback address that acts on every delivery; without a
// tracker, confirm each callback with Client.Confirm before trusting it.
func ExampleCallbackHandler() {
	h := fotp.CallbackHandler(func(ctx context.Context, cb *fotp.Callback) error {
		fmt.Println("callback from", cb.Mobile, "with code", cb.Code)
		return nil // answers {"code":"0"}; an error answers 500 and the platform delivers again
	})
	// In an app: http.Handle("/fotp/callback", h). Here, one delivery:
	body := `{"mobile":"8613800000000","sender":"1069","sendTime":"2025-05-15 11:23:34","code":"4821"}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/fotp/callback", strings.NewReader(body)))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// callback from 8613800000000 with code 4821
	// 200 {"code":"0"}
}

// The receiver for verifications started with a tracker: each callback is confirmed with the
// platform first, and the function runs once per verification, for the first genuine delivery.
func ExampleTrackedCallbackHandler() {
	client, err := fotp.NewClient(fotp.SandboxConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	tracker, err := fotp.NewMemoryTracker()
	if err != nil {
		log.Fatal(err)
	}
	defer tracker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := tracker.Verify(ctx, client, fotp.TrackerVerifyRequest{FtID: "2"})
	if err != nil {
		log.Fatal(err)
	}

	h := fotp.TrackedCallbackHandler(tracker, client,
		func(ctx context.Context, cb *fotp.Callback, m *fotp.Match) error {
			if m == nil {
				return nil // no live verification of ours holds this code
			}
			fmt.Println("verified", cb.Mobile, m.FtToken == v.FtToken)
			return nil
		})
	if err := fotp.SimulateSMS(v.FtToken, "8613800000002", v.Code); err != nil {
		log.Fatal(err)
	}
	// The platform's delivery, and a repeat of it (acknowledged without calling the function).
	body := `{"mobile":"8613800000002","sender":"1069","sendTime":"2025-05-15 11:23:34","code":"` + v.Code + `"}`
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/fotp/callback", strings.NewReader(body)))
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// verified 8613800000002 true
	// 200 {"code":"0"}
	// 200 {"code":"0"}
}
