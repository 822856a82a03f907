/* The tracker's C API from C: usage against the sandbox, ownership (run under valgrind). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fotp.h"

static int failures = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

/* Frees e and returns its kind (0 for success). */
static int kind_of(fotp_error *e) {
    if (e == NULL) return 0;
    int k = fotp_error_kind(e);
    fprintf(stderr, "  (expected or not) error %d: %s\n", k, fotp_error_message(e));
    fotp_error_free(e);
    return k;
}

static fotp_callback *callback_with(const char *code) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"mobile\":\"8613800000000\",\"sender\":\"1008611\","
             "\"sendTime\":\"2025-05-15 11:23:34\",\"code\":\"%s\"}",
             code);
    fotp_callback *cb = NULL;
    CHECK(kind_of(fotp_callback_parse((const uint8_t *)body, strlen(body), &cb)) == 0);
    return cb;
}

/* verify through t, push the callback three times, check one match and two duplicates. */
static void round_trip(const fotp_tracker *t, const fotp_client *client, uint32_t len) {
    fotp_verification *v = NULL;
    CHECK(kind_of(fotp_tracker_verify(t, client, "2", len, 1, &v)) == 0);
    if (v == NULL) return;
    const char *code = fotp_verification_code(v);
    const char *token = fotp_verification_ft_token(v);
    CHECK(strlen(code) == (len == 0 ? 4 : len));
    CHECK(code[0] != '0');

    fotp_callback *cb = callback_with(code);
    for (int i = 0; i < 3; i++) {
        fotp_match *m = NULL;
        CHECK(kind_of(fotp_tracker_match(t, cb, &m)) == 0);
        CHECK(m != NULL);
        if (m != NULL) {
            CHECK(strcmp(fotp_match_ft_token(m), token) == 0);
            CHECK(fotp_match_is_duplicate(m) == (i > 0));
        }
        fotp_match_free(m);
    }
    fotp_callback_free(cb);

    /* The sandbox session is not finished (no uplink): the wait runs into its limit. */
    fotp_query_result *r = (fotp_query_result *)0x1;
    CHECK(kind_of(fotp_tracker_wait(t, client, token, 300, &r)) == FOTP_ERROR_TIMEOUT);
    CHECK(r == (fotp_query_result *)0x1);
    fotp_verification_free(v);
}

static const char *base_url;

/* The user's SMS reaching the sandbox (POST /sandbox/uplink), by curl. */
static void uplink(const char *token, const char *code) {
    char cmd[1024];
    const char *p;
    for (p = base_url; *p; p++) { /* it goes into a shell command: URL characters only */
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/.-_[]", *p)) {
            CHECK(!"base URL with odd characters");
            return;
        }
    }
    CHECK(strspn(token, "0123456789abcdef") == strlen(token) && strspn(code, "0123456789") == strlen(code));
    snprintf(cmd, sizeof cmd,
             "curl -sS -H 'Content-Type: application/json' --data "
             "'{\"ftToken\":\"%s\",\"mobile\":\"8613800000000\",\"content\":\"code %s\"}' "
             "'%s/sandbox/uplink' | grep -q '\"000000\"'",
             token, code, base_url);
    CHECK(system(cmd) == 0);
}

/* settle_outcome: returns the outcome, checks the match's token and duplicate flag. */
static fotp_settle_outcome settle(const fotp_tracker *t, const fotp_client *client,
                                  const fotp_callback *cb, const char *token) {
    fotp_settle_outcome o = FOTP_SETTLE_NO_MATCH;
    fotp_match *m = (fotp_match *)0x1;
    CHECK(kind_of(fotp_tracker_settle_outcome(t, client, cb, &o, &m)) == 0);
    if (o == FOTP_SETTLE_FIRST || o == FOTP_SETTLE_DUPLICATE) {
        CHECK(m != NULL && m != (fotp_match *)0x1);
        if (m != NULL && m != (fotp_match *)0x1) {
            CHECK(strcmp(fotp_match_ft_token(m), token) == 0);
            CHECK(fotp_match_is_duplicate(m) == (o == FOTP_SETTLE_DUPLICATE));
            fotp_match_free(m);
        }
    } else {
        CHECK(m == NULL);
    }
    return o;
}

/* The safe path: unconfirmed until the SMS arrives, then first once, duplicates, unsettle. */
static void settle_round(const fotp_tracker *t, const fotp_client *client) {
    fotp_verification *v = NULL;
    CHECK(kind_of(fotp_tracker_verify(t, client, "2", 4, 1, &v)) == 0);
    if (v == NULL) return;
    const char *code = fotp_verification_code(v);
    const char *token = fotp_verification_ft_token(v);
    fotp_callback *cb = callback_with(code);
    /* Forged (the platform has no result yet): nothing consumed, however often. */
    CHECK(settle(t, client, cb, token) == FOTP_SETTLE_UNCONFIRMED);
    CHECK(settle(t, client, cb, token) == FOTP_SETTLE_UNCONFIRMED);
    uplink(token, code);
    fotp_match *first = NULL;
    CHECK(kind_of(fotp_tracker_settle(t, client, cb, &first)) == 0);
    CHECK(first != NULL && !fotp_match_is_duplicate(first));
    CHECK(settle(t, client, cb, token) == FOTP_SETTLE_DUPLICATE);
    /* The handler failed: the next delivery is the first again, once. */
    CHECK(kind_of(fotp_tracker_unsettle(t, first)) == 0);
    fotp_match_free(first);
    CHECK(settle(t, client, cb, token) == FOTP_SETTLE_FIRST);
    CHECK(settle(t, client, cb, token) == FOTP_SETTLE_DUPLICATE);

    /* NULL arguments: invalid-argument errors, out-parameters untouched. */
    fotp_match *m = (fotp_match *)0x1;
    fotp_settle_outcome o = FOTP_SETTLE_DUPLICATE;
    CHECK(kind_of(fotp_tracker_settle(NULL, client, cb, &m)) == FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_settle(t, NULL, cb, &m)) == FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_settle(t, client, NULL, &m)) == FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_settle(t, client, cb, NULL)) == FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_settle_outcome(NULL, client, cb, &o, &m)) ==
          FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_settle_outcome(t, client, cb, NULL, &m)) ==
          FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_settle_outcome(t, client, cb, &o, NULL)) ==
          FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_unsettle(NULL, NULL)) == FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_unsettle(t, NULL)) == FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(m == (fotp_match *)0x1 && o == FOTP_SETTLE_DUPLICATE);
    fotp_callback_free(cb);

    /* A code no live verification holds. */
    fotp_callback *stray = callback_with("0123");
    CHECK(settle(t, client, stray, "") == FOTP_SETTLE_NO_MATCH);
    fotp_callback_free(stray);
    fotp_verification_free(v);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SANDBOX_BASE_URL REDIS_URL\n", argv[0]);
        return 2;
    }
    base_url = argv[1];
    fotp_config *c = fotp_config_new();
    CHECK(kind_of(fotp_config_set_base_url(c, argv[1])) == 0);
    CHECK(kind_of(fotp_config_set_hmac_auth(c, "sandbox", "sandbox-secret")) == 0);
    fotp_client *client = NULL;
    CHECK(kind_of(fotp_client_new(c, &client)) == 0);
    fotp_config_free(c);

    fotp_tracker *mem = fotp_tracker_new_memory();
    CHECK(mem != NULL);
    round_trip(mem, client, 0);
    round_trip(mem, client, 6);
    settle_round(mem, client);

    /* No live verification holds this code (never allocated: leading zero): *out NULL. */
    fotp_callback *stray = callback_with("0123");
    fotp_match *m = (fotp_match *)0x1;
    CHECK(kind_of(fotp_tracker_match(mem, stray, &m)) == 0);
    CHECK(m == NULL);
    fotp_callback_free(stray);

    fotp_verification *v = NULL;
    CHECK(kind_of(fotp_tracker_verify(mem, client, "2", 7, 0, &v)) ==
          FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(kind_of(fotp_tracker_verify(NULL, client, "2", 4, 0, &v)) ==
          FOTP_ERROR_INVALID_ARGUMENT);
    CHECK(v == NULL);

    fotp_tracker *shared = NULL;
    CHECK(kind_of(fotp_tracker_new_redis(argv[2], "ctest", &shared)) == 0);
    if (shared != NULL) {
        round_trip(shared, client, 5);
        settle_round(shared, client);
    }
    fotp_tracker *bad = NULL;
    CHECK(kind_of(fotp_tracker_new_redis("redis://127.0.0.1:1/", NULL, &bad)) ==
          FOTP_ERROR_NETWORK);
    CHECK(kind_of(fotp_tracker_new_redis("::nonsense::", NULL, &bad)) == FOTP_ERROR_CONFIG);
    CHECK(bad == NULL);

    fotp_tracker_free(shared);
    fotp_tracker_free(mem);
    fotp_tracker_free(NULL);
    fotp_match_free(NULL);
    fotp_client_free(client);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("tracker C API: all checks passed\n");
    return 0;
}
