/*
 * The C logger (fotp_set_logger, fotp_set_logger_fields, fotp_set_log_level): a query retried
 * after a 503 with Retry-After: 1 is logged attempt by attempt, with the pause; no secret,
 * signature, code or full mobile number in any event; a callback that calls back into fotp
 * does not deadlock; setting and removing the logger from several threads while calls run.
 * Serves its own HTTP on 127.0.0.1 (an ephemeral port). Run by scripts/test-c.sh under ASan
 * and helgrind:
 *
 *   logging [THREADS ROUNDS]
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fotp.h"

#define SECRET "logging-secret-9f3c"
#define TOKEN "44cadc6071214b968b3b3bb1cb5a6c24"
#define MOBILE "6285273203675"
#define CODE "5777"

static const char QUERY_OK[] =
    "{\"code\":\"000000\",\"success\":true,\"message\":\"ok\",\"data\":{\"status\":\"2\","
    "\"mobile\":\"" MOBILE "\",\"sender\":\"6285215410016\",\"sendTime\":\"2025-04-29 17:47:00\","
    "\"code\":\"" CODE "\",\"deliverTime\":\"2025-04-29 17:48:23\"}}";

static void fail(int line, const char *what) {
    fprintf(stderr, "logging.c:%d: check failed: %s\n", line, what);
    exit(1);
}
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) fail(__LINE__, #cond);                                                        \
    } while (0)
#define OK(e)                                                                                      \
    do {                                                                                           \
        fotp_error *e_ = (e);                                                                      \
        if (e_) {                                                                                  \
            fprintf(stderr, "logging.c:%d: %s\n", __LINE__, fotp_error_message(e_));               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- a scripted HTTP server: 503 + Retry-After: 1 when asked, else the query answer ---- */

static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;
static int fail_next;
static char last_request[8192];
static int listener;

static void *serve(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0) return NULL;
        char buf[8192] = {0};
        size_t len = 0;
        char *end = NULL;
        while (len < sizeof buf - 1 && !(end = strstr(buf, "\r\n\r\n"))) {
            ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
            if (n <= 0) break;
            len += (size_t)n;
            buf[len] = 0;
        }
        if (end) {
            const char *cl = strstr(buf, "ontent-Length: ");
            if (!cl) cl = strstr(buf, "ontent-length: ");
            size_t want = cl ? (size_t)atol(cl + 15) : 0, have = len - (size_t)(end + 4 - buf);
            while (have < want && len < sizeof buf - 1) {
                ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
                if (n <= 0) break;
                len += (size_t)n;
                have += (size_t)n;
                buf[len] = 0;
            }
        }
        char resp[1024];
        pthread_mutex_lock(&server_lock);
        memcpy(last_request, buf, len + 1);
        int busy = fail_next;
        fail_next = 0;
        pthread_mutex_unlock(&server_lock);
        if (busy)
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n"
                     "Connection: close\r\n\r\nbusy");
        else
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(QUERY_OK), QUERY_OK);
        size_t off = 0, total = strlen(resp);
        while (off < total) {
            ssize_t n = write(c, resp + off, total - off);
            if (n <= 0) break;
            off += (size_t)n;
        }
        close(c);
    }
}

static int start_server(void) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listener >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(listener, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(listener, 64) == 0);
    socklen_t alen = sizeof a;
    CHECK(getsockname(listener, (struct sockaddr *)&a, &alen) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, serve, NULL) == 0);
    CHECK(pthread_detach(t) == 0);
    return ntohs(a.sin_port);
}

/* ---- captured events ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char captured[65536];
static size_t captured_len;
static long events;

static void append(const char *s) {
    size_t n = strlen(s);
    if (captured_len + n + 1 < sizeof captured) {
        memcpy(captured + captured_len, s, n);
        captured_len += n;
        captured[captured_len] = 0;
    }
}

static void plain_logger(void *user, int level, const char *target, const char *message) {
    CHECK(user == (void *)&captured);
    char line[1024];
    snprintf(line, sizeof line, "%d %s %s\n", level, target, message);
    pthread_mutex_lock(&log_lock);
    append(line);
    events++;
    pthread_mutex_unlock(&log_lock);
}

static void fields_logger(void *user, int level, const char *target, const char *message,
                          size_t n, const char *const *keys, const char *const *values) {
    (void)user;
    char line[2048];
    int off = snprintf(line, sizeof line, "%d %s %s |", level, target, message);
    for (size_t i = 0; i < n && off > 0 && (size_t)off < sizeof line; i++)
        off += snprintf(line + off, sizeof line - (size_t)off, " %s=%s", keys[i], values[i]);
    pthread_mutex_lock(&log_lock);
    append(line);
    append("\n");
    events++;
    pthread_mutex_unlock(&log_lock);
}

static void reset_capture(void) {
    pthread_mutex_lock(&log_lock);
    captured_len = 0;
    captured[0] = 0;
    events = 0;
    pthread_mutex_unlock(&log_lock);
}

static fotp_client *new_client(int port) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    fotp_config *c = fotp_config_new();
    OK(fotp_config_set_base_url(c, url));
    OK(fotp_config_set_hmac_auth(c, "logging-app", SECRET));
    fotp_config_set_retries(c, 2);
    fotp_client *client = NULL;
    OK(fotp_client_new(c, &client));
    fotp_config_free(c);
    return client;
}

/* Every header value of the last request longer than 12 characters (the signature, nonce, app
 * id...) must not appear in the captured events. */
static void check_no_request_header_values(void) {
    char req[8192];
    pthread_mutex_lock(&server_lock);
    memcpy(req, last_request, sizeof req);
    pthread_mutex_unlock(&server_lock);
    int seen = 0;
    for (char *line = strtok(req, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        char *v = strstr(line, ": ");
        if (!v || strncmp(line, "user-agent", 10) == 0 || strncmp(line, "User-Agent", 10) == 0 ||
            strncmp(line, "content-type", 12) == 0 || strncmp(line, "Content-Type", 12) == 0)
            continue;
        v += 2;
        if (strlen(v) > 12) {
            seen++;
            if (strstr(captured, v)) {
                fprintf(stderr, "header value %s in the events:\n%s", v, captured);
                exit(1);
            }
        }
    }
    CHECK(seen >= 1); /* at least the signature */
}

static void test_retry_after_503(int port) {
    fotp_client *client = new_client(port);
    char id[32];
    snprintf(id, sizeof id, "client=%llu", (unsigned long long)fotp_client_log_id(client));
    CHECK(fotp_client_log_id(client) != 0 && fotp_client_log_id(NULL) == 0);

    /* Plain messages. */
    reset_capture();
    OK(fotp_set_logger(FOTP_LOG_INFO, plain_logger, &captured));
    pthread_mutex_lock(&server_lock);
    fail_next = 1;
    pthread_mutex_unlock(&server_lock);
    fotp_query_result *r = NULL;
    OK(fotp_query(client, TOKEN, &r));
    fotp_query_result_free(r);
    pthread_mutex_lock(&log_lock);
    CHECK(events == 2);
    CHECK(strstr(captured, "3 fotp::http query POST /flash/opt/query attempt 1: HTTP 503 in "));
    CHECK(strstr(captured, "; retrying in 1000 ms\n"));
    CHECK(strstr(captured, "3 fotp::http query POST /flash/opt/query attempt 2: HTTP 200 in "));
    pthread_mutex_unlock(&log_lock);
    CHECK(!strstr(captured, SECRET) && !strstr(captured, MOBILE) && !strstr(captured, CODE));
    check_no_request_header_values();

    /* Structured fields. */
    reset_capture();
    OK(fotp_set_logger_fields(FOTP_LOG_DEBUG, fields_logger, NULL));
    pthread_mutex_lock(&server_lock);
    fail_next = 1;
    pthread_mutex_unlock(&server_lock);
    OK(fotp_query(client, TOKEN, &r));
    fotp_query_result_free(r);
    char *second = strstr(captured, "attempt=2");
    CHECK(events == 2);
    CHECK(strstr(captured, id));
    CHECK(strstr(captured, " op=query method=POST path=/flash/opt/query attempt=1 status=503 "));
    CHECK(strstr(captured, " retry_in_ms=1000\n"));
    CHECK(second && strstr(second, " status=200 elapsed_ms="));
    CHECK(!strstr(second, "retry_in_ms"));
    CHECK(!strstr(captured, SECRET) && !strstr(captured, MOBILE) && !strstr(captured, CODE));
    check_no_request_header_values();

    /* A refused callback: the reason, never the body. */
    reset_capture();
    const char body[] = "{\"mobile\":\"8615711666132\",\"code\":[\"5776\"]}";
    fotp_callback *cb = NULL;
    fotp_error *e = fotp_callback_parse((const uint8_t *)body, sizeof body - 1, &cb);
    CHECK(e != NULL && cb == NULL);
    fotp_error_free(e);
    CHECK(events == 1 && strstr(captured, "fotp::callback callback refused: "));
    CHECK(!strstr(captured, "8615711666132") && !strstr(captured, "5776"));

    /* The level: INFO hides the debug events; a level change keeps the callback. */
    OK(fotp_set_log_level(FOTP_LOG_WARN));
    reset_capture();
    OK(fotp_query(client, TOKEN, &r));
    fotp_query_result_free(r);
    CHECK(events == 0);
    OK(fotp_set_log_level(FOTP_LOG_INFO));
    OK(fotp_query(client, TOKEN, &r));
    fotp_query_result_free(r);
    CHECK(events == 1);

    /* Bad levels are refused, and removal stops the events. */
    e = fotp_set_logger(6, plain_logger, &captured);
    CHECK(e && fotp_error_kind(e) == FOTP_ERROR_INVALID_ARGUMENT);
    fotp_error_free(e);
    e = fotp_set_log_level(-1);
    CHECK(e && fotp_error_kind(e) == FOTP_ERROR_INVALID_ARGUMENT);
    fotp_error_free(e);
    OK(fotp_set_logger(FOTP_LOG_OFF, NULL, NULL));
    reset_capture();
    OK(fotp_query(client, TOKEN, &r));
    fotp_query_result_free(r);
    CHECK(events == 0);
    OK(fotp_set_log_level(FOTP_LOG_DEBUG)); /* no logger: nothing to change */
    OK(fotp_query(client, TOKEN, &r));
    fotp_query_result_free(r);
    CHECK(events == 0);
    fotp_client_free(client);
}

/* ---- a callback that calls back into fotp ---- */

static long reentered;

static void reentrant_logger(void *user, int level, const char *target, const char *message) {
    (void)level;
    (void)target;
    (void)message;
    fotp_client *client = user;
    /* An error made and freed, a level change, a parse (which logs, recursively), and the
     * logger replaced from inside its own callback. */
    fotp_error *e = fotp_config_set_base_url(NULL, "x");
    fotp_error_free(e);
    OK(fotp_set_log_level(FOTP_LOG_INFO));
    CHECK(fotp_client_log_id(client) != 0);
    pthread_mutex_lock(&log_lock);
    long n = ++reentered;
    pthread_mutex_unlock(&log_lock);
    if (n == 1) {
        fotp_callback *cb = NULL;
        e = fotp_callback_parse((const uint8_t *)"{", 1, &cb);
        fotp_error_free(e);
    }
    if (n >= 3) OK(fotp_set_logger(FOTP_LOG_OFF, NULL, NULL));
}

static void test_reentrant_callback(int port) {
    fotp_client *client = new_client(port);
    reentered = 0;
    OK(fotp_set_logger(FOTP_LOG_INFO, reentrant_logger, client));
    fotp_query_result *r = NULL;
    for (int i = 0; i < 3; i++) {
        OK(fotp_query(client, TOKEN, &r));
        fotp_query_result_free(r);
    }
    /* query 1 + its nested refused-callback event, query 2 (removes the logger), query 3 none */
    CHECK(reentered == 3);
    fotp_client_free(client);
}

/* ---- set and remove the logger from several threads while calls run ---- */

static int rounds = 20;
static int port_for_threads;

static void *caller(void *arg) {
    (void)arg;
    fotp_client *client = new_client(port_for_threads);
    for (int i = 0; i < rounds; i++) {
        fotp_query_result *r = NULL;
        OK(fotp_query(client, TOKEN, &r));
        fotp_query_result_free(r);
        fotp_callback *cb = NULL;
        fotp_error *e = fotp_callback_parse((const uint8_t *)"[]", 2, &cb);
        CHECK(e != NULL);
        fotp_error_free(e);
    }
    fotp_client_free(client);
    return NULL;
}

static void *setter(void *arg) {
    long which = (long)arg;
    for (int i = 0; i < rounds * 4; i++) {
        switch ((i + which) % 4) {
        case 0: OK(fotp_set_logger(FOTP_LOG_INFO, plain_logger, &captured)); break;
        case 1: OK(fotp_set_logger_fields(FOTP_LOG_DEBUG, fields_logger, NULL)); break;
        case 2: OK(fotp_set_log_level(FOTP_LOG_TRACE)); break;
        default: OK(fotp_set_logger(FOTP_LOG_OFF, NULL, NULL)); break;
        }
    }
    return NULL;
}

static void test_threads(int port, int threads) {
    port_for_threads = port;
    reset_capture();
    pthread_t t[64];
    if (threads > 32) threads = 32;
    for (long i = 0; i < threads; i++) {
        CHECK(pthread_create(&t[2 * i], NULL, caller, NULL) == 0);
        CHECK(pthread_create(&t[2 * i + 1], NULL, setter, (void *)i) == 0);
    }
    for (int i = 0; i < 2 * threads; i++) CHECK(pthread_join(t[i], NULL) == 0);
    OK(fotp_set_logger(FOTP_LOG_OFF, NULL, NULL));
    pthread_mutex_lock(&log_lock);
    CHECK(!strstr(captured, SECRET) && !strstr(captured, MOBILE) && !strstr(captured, CODE));
    pthread_mutex_unlock(&log_lock);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2) rounds = atoi(argv[2]);
    /* A deadlock fails the test instead of hanging it. */
    alarm(300);
    int port = start_server();
    test_retry_after_503(port);
    test_reentrant_callback(port);
    test_threads(port, threads);
    printf("logging: all checks passed\n");
    return 0;
}
