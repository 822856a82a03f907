// Command push verifies phone numbers in push mode: the platform POSTs each result to the
// template's callback address, served here with fotp.CallbackHandler.
//
//	GET  /start?ftId=2   starts a verification and answers its link (JSON)
//	POST /fotp/callback  the callback address to configure for the template
//
// A callback carries no signature and no ftToken, only the mobile and the code: this server
// chooses a code no other verification in progress holds, remembers which token has it, and
// confirms every callback with the platform before trusting it.
//
// fotp.Tracker and its receiver, fotp.TrackedCallbackHandler, do the code bookkeeping and
// settle each callback exactly once for you, in memory or in Redis for several instances:
// see ../push-tracker.
//
// It reads FOTP_* from the environment, and FOTP_LISTEN (default 127.0.0.1:8789). With the
// sandbox: fotp sandbox --template 2=http://127.0.0.1:8789/fotp/callback
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	fotp "github.com/fotp-sdk/fotp-go/fotp"
)

type server struct {
	client *fotp.Client
	mu     sync.Mutex
	tokens map[string]string // code -> ftToken of the verifications in progress
}

func (s *server) start(w http.ResponseWriter, r *http.Request) {
	ftID := r.URL.Query().Get("ftId")
	if ftID == "" {
		ftID = "2"
	}
	code, err := s.reserveCode()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	v, err := s.client.Verify(r.Context(), fotp.VerifyRequest{FtID: ftID, Code: code})
	if err != nil {
		s.mu.Lock()
		delete(s.tokens, code)
		s.mu.Unlock()
		var fe *fotp.Error
		status := http.StatusBadGateway
		if errors.As(err, &fe) && fe.Kind == fotp.KindInvalidArgument {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	s.mu.Lock()
	s.tokens[v.Code] = v.FtToken
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"url": v.URL, "code": v.Code})
}

// reserveCode picks a random 6-digit code that no verification in progress holds.
func (s *server) reserveCode() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 100; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return "", err
		}
		code := fmt.Sprintf("%06d", n.Int64())
		if _, taken := s.tokens[code]; !taken {
			s.tokens[code] = "" // reserved until verify answers
			return code, nil
		}
	}
	return "", errors.New("no free code: too many verifications in progress")
}

func (s *server) callback(ctx context.Context, cb *fotp.Callback) error {
	s.mu.Lock()
	token := s.tokens[cb.Code]
	s.mu.Unlock()
	if token == "" {
		// Not ours, or a duplicate delivery already handled: accept so it is not resent.
		log.Printf("callback for an unknown code from %s: ignored", cb.Mobile)
		return nil
	}
	confirmed, err := s.client.Confirm(ctx, cb, token)
	if err != nil {
		return err // answered 500: the platform delivers it again later
	}
	if !confirmed {
		// Forged, or the platform does not confirm it yet: keep the code, so that the genuine
		// delivery still finds it; the error makes the platform deliver again.
		return errors.New("callback not confirmed by the platform")
	}
	s.mu.Lock()
	first := s.tokens[cb.Code] == token
	delete(s.tokens, cb.Code)
	s.mu.Unlock()
	if first { // a concurrent repeated delivery may have been confirmed too
		log.Printf("mobile %s verified: %v", cb.Mobile, confirmed)
	}
	return nil
}

func main() {
	client, err := fotp.NewClientFromEnv()
	if err != nil {
		log.Fatal("configuration: ", err)
	}
	defer client.Close()
	addr := os.Getenv("FOTP_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:8789"
	}
	s := &server{client: client, tokens: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/start", s.start)
	mux.Handle("/fotp/callback", fotp.CallbackHandler(s.callback))
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
		log.Fatal(err)
	}
}
