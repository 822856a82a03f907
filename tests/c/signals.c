/*
 * Signals never surface as errors: worker threads make 10,000 tracker and client calls against
 * the sandbox and a redis-server while a helper thread sends each of them SIGUSR1 (handler
 * installed with SA_RESTART, as Go's runtime and most programs do) every 100 microseconds.
 * Sockets with a time-out are never restarted by the kernel, so every blocking read must retry
 * EINTR itself. Run by scripts/test-tracker.sh:
 *
 *   signals SANDBOX_BASE_URL REDIS_URL
 *
 * Exits 0 when no call failed and the workers were really interrupted.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fotp.h"

#define WORKERS 4
#define CALLS_PER_WORKER 2500 /* 10,000 calls in all */

static volatile sig_atomic_t signals_handled;

static void on_signal(int sig) {
    (void)sig;
    signals_handled++;
}

struct worker {
    pthread_t thread;
    const fotp_client *client;
    const fotp_tracker *tracker;
    int calls;
    int errors;
};

/* Counts a call; prints and frees its error, if any. */
static void count(struct worker *w, fotp_error *e, const char *what) {
    w->calls++;
    if (e != NULL) {
        w->errors++;
        fprintf(stderr, "signals: %s failed (kind %d): %s\n", what, fotp_error_kind(e),
                fotp_error_message(e));
        fotp_error_free(e);
    }
}

static fotp_callback *callback_for(const char *code) {
    char body[256];
    fotp_callback *cb = NULL;
    snprintf(body, sizeof body,
             "{\"mobile\":\"8613800000000\",\"sender\":\"1008611\","
             "\"sendTime\":\"2025-05-15 11:23:34\",\"code\":\"%s\"}",
             code);
    fotp_error *e = fotp_callback_parse((const uint8_t *)body, strlen(body), &cb);
    if (e != NULL) {
        fprintf(stderr, "signals: callback_parse: %s\n", fotp_error_message(e));
        exit(1);
    }
    return cb;
}

static void *work(void *arg) {
    struct worker *w = arg;
    fotp_verification *v = NULL;
    fotp_callback *cb = NULL;
    while (w->calls < CALLS_PER_WORKER) {
        int step = w->calls % 8;
        if (step == 0 || v == NULL) {
            fotp_verification *next = NULL;
            fotp_error *e = fotp_tracker_verify(w->tracker, w->client, "2", 6, 1, &next);
            count(w, e, "fotp_tracker_verify");
            if (e == NULL) {
                fotp_verification_free(v);
                fotp_callback_free(cb);
                v = next;
                cb = callback_for(fotp_verification_code(v));
            }
        } else if (step == 1 || step == 5) {
            fotp_settle_outcome o = FOTP_SETTLE_FIRST;
            fotp_match *m = NULL;
            count(w, fotp_tracker_settle_outcome(w->tracker, w->client, cb, &o, &m),
                  "fotp_tracker_settle_outcome");
            if (o != FOTP_SETTLE_UNCONFIRMED) {
                fprintf(stderr, "signals: an unfinished verification settled (%d)\n", (int)o);
                w->errors++;
            }
            fotp_match_free(m);
        } else if (step == 2 || step == 6) {
            fotp_match *m = NULL;
            count(w, fotp_tracker_match(w->tracker, cb, &m), "fotp_tracker_match");
            if (m == NULL || strcmp(fotp_match_ft_token(m), fotp_verification_ft_token(v)) != 0) {
                fprintf(stderr, "signals: match found another verification\n");
                w->errors++;
            }
            fotp_match_free(m);
        } else if (step == 3) {
            fotp_query_result *r = NULL;
            count(w, fotp_query(w->client, fotp_verification_ft_token(v), &r), "fotp_query");
            fotp_query_result_free(r);
        } else {
            /* Matched above, so the wake-up is there at once; the result stays "processing". */
            fotp_query_result *r = NULL;
            fotp_error *e = fotp_tracker_wait(w->tracker, w->client,
                                              fotp_verification_ft_token(v), 20, &r);
            w->calls++;
            if (e == NULL || fotp_error_kind(e) != FOTP_ERROR_TIMEOUT) {
                fprintf(stderr, "signals: wait: expected a time-out, got %s\n",
                        e == NULL ? "a result" : fotp_error_message(e));
                w->errors++;
            }
            fotp_error_free(e);
            fotp_query_result_free(r);
        }
    }
    fotp_callback_free(cb);
    fotp_verification_free(v);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SANDBOX_BASE_URL REDIS_URL\n", argv[0]);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return 1;

    fotp_config *c = fotp_config_new();
    fotp_client *client = NULL;
    fotp_tracker *tracker = NULL;
    fotp_error *e = fotp_config_set_base_url(c, argv[1]);
    if (e == NULL) e = fotp_config_set_hmac_auth(c, "sandbox", "sandbox-secret");
    if (e == NULL) e = fotp_client_new(c, &client);
    if (e == NULL) e = fotp_tracker_new_redis(argv[2], "signals", &tracker);
    fotp_config_free(c);
    if (e != NULL) {
        fprintf(stderr, "signals: setup: %s\n", fotp_error_message(e));
        return 1;
    }

    struct worker workers[WORKERS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < WORKERS; i++) {
        workers[i].client = client;
        workers[i].tracker = tracker;
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) return 1;
    }
    /* The helper: SIGUSR1 to every worker every 100 us until they are all done. */
    struct timespec pause = {0, 100 * 1000};
    long sent = 0;
    for (;;) {
        int running = 0;
        for (int i = 0; i < WORKERS; i++) {
            if (workers[i].calls < CALLS_PER_WORKER) {
                running++;
                if (pthread_kill(workers[i].thread, SIGUSR1) == 0) sent++;
            }
        }
        if (!running) break;
        nanosleep(&pause, NULL);
    }
    int calls = 0, errors = 0;
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(workers[i].thread, NULL);
        calls += workers[i].calls;
        errors += workers[i].errors;
    }
    fotp_tracker_free(tracker);
    fotp_client_free(client);
    printf("signals: %d calls, %d errors, %ld signals sent, %d handled\n", calls, errors, sent,
           (int)signals_handled);
    if (errors != 0) return 1;
    if (signals_handled < 1000) {
        fprintf(stderr, "signals: too few signals reached the workers to prove anything\n");
        return 1;
    }
    return 0;
}
