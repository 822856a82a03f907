/* The tracker's C API from C: usage against the sandbox, ownership (run under valgrind). */
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

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SANDBOX_BASE_URL REDIS_URL\n", argv[0]);
        return 2;
    }
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
    if (shared != NULL) round_trip(shared, client, 5);
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
