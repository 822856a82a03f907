// Command push-tracker verifies phone numbers in push mode with a fotp.Tracker: its receiver
// settles each callback (matches it to its verification and has the platform confirm it), so
// the app acts once per verification, never on a forged or repeated delivery.
//
//	GET  /start?ftId=2          starts a verification; answers {"url", "ftToken"} (JSON)
//	GET  /result?ftToken=TOKEN  waits (up to 60 s) for the result; answers {"status", "mobile"}
//	POST /fotp/callback         the callback address to configure for the template
//
// /result returns as soon as the platform's callback reaches /fotp/callback, and its answer
// always comes from the platform's query (a callback carries no signature).
//
// It reads FOTP_* from the environment, FOTP_LISTEN (default 127.0.0.1:8789) and
// FOTP_REDIS_URL: when set, the tracker lives in Redis (namespace FOTP_REDIS_NS, default
// "fotp"), so that several instances behind a load balancer share it: any one may receive
// the callback, any one may answer /result. With the sandbox:
//
//	fotp sandbox --template 2=http://127.0.0.1:8789/fotp/callback
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	fotp "github.com/fotp-sdk/fotp-go/fotp"
)

type server struct {
	client  *fotp.Client
	tracker *fotp.Tracker
}

func (s *server) start(w http.ResponseWriter, r *http.Request) {
	ftID := r.URL.Query().Get("ftId")
	if ftID == "" {
		ftID = "2"
	}
	// 6 digits: up to 450 000 verifications may be in progress at once.
	v, err := s.tracker.Verify(r.Context(), s.client, fotp.TrackerVerifyRequest{FtID: ftID, CodeLength: 6})
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, map[string]string{"url": v.URL, "ftToken": v.FtToken})
}

func (s *server) result(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	res, err := s.tracker.Wait(ctx, s.client, r.URL.Query().Get("ftToken"))
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, map[string]string{"status": res.Status.String(), "mobile": res.Mobile})
}

// callback runs once per verification, for the first genuine delivery: the receiver has
// settled it (the platform confirmed it with a query), so acting on it is safe. Repeated and
// forged deliveries never get here; if this returns an error, the settlement is undone and
// the platform's next delivery comes here again. Settling already woke the /result waiting
// for the token, in whichever instance that runs.
func (s *server) callback(ctx context.Context, cb *fotp.Callback, m *fotp.Match) error {
	if m == nil {
		log.Printf("callback with a code no verification in progress holds: ignored")
		return nil
	}
	log.Printf("callback for %s: settled (mobile %s)", m.FtToken, cb.Mobile)
	return nil
}

func httpError(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, fotp.ErrInvalidArgument):
		status = http.StatusBadRequest
	case errors.Is(err, fotp.ErrTimeout):
		status = http.StatusGatewayTimeout
	case errors.Is(err, fotp.ErrExhausted):
		status = http.StatusServiceUnavailable
	}
	http.Error(w, err.Error(), status)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func newTracker() (*fotp.Tracker, error) {
	if url := os.Getenv("FOTP_REDIS_URL"); url != "" {
		return fotp.NewRedisTracker(url, os.Getenv("FOTP_REDIS_NS"))
	}
	return fotp.NewMemoryTracker()
}

func main() {
	client, err := fotp.NewClientFromEnv()
	if err != nil {
		log.Fatal("configuration: ", err)
	}
	defer client.Close()
	tracker, err := newTracker()
	if err != nil {
		log.Fatal("tracker: ", err)
	}
	defer tracker.Close()
	addr := os.Getenv("FOTP_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8789"
	}
	s := &server{client: client, tracker: tracker}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /start", s.start)
	mux.HandleFunc("GET /result", s.result)
	mux.Handle("/fotp/callback", fotp.TrackedCallbackHandler(tracker, client, s.callback))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s (callback path /fotp/callback)", l.Addr())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}
