/*
 * Calls every function of include/fotp.h, NULL arguments included, and checks the results.
 * Exits non-zero at the first failed check. Run by scripts/test-c.sh (under valgrind):
 *
 *   test_abi CALLBACK_JSON_FILE
 *
 * The network part runs against the sandbox named by FOTP_BASE_URL / FOTP_APP_ID /
 * FOTP_APP_SECRET and simulates the user's SMS with curl (POST /sandbox/uplink); it is skipped
 * only when FOTP_BASE_URL is unset.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fotp.h"

static int checks;

static void fail(int line, const char *what) {
    fprintf(stderr, "test_abi.c:%d: check failed: %s\n", line, what);
    exit(1);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) fail(__LINE__, #cond);                                                        \
    } while (0)

static int streq(const char *a, const char *b) { return a != NULL && b != NULL && !strcmp(a, b); }
static int contains(const char *s, const char *needle) { return s != NULL && strstr(s, needle); }

/* Success expected: on an error, print it and stop. */
static void ok_at(fotp_error *e, int line) {
    checks++;
    if (e != NULL) {
        fprintf(stderr, "test_abi.c:%d: unexpected error (kind %d): %s\n", line, fotp_error_kind(e),
                fotp_error_message(e));
        fotp_error_free(e);
        exit(1);
    }
}
#define OK(e) ok_at((e), __LINE__)

/* An error of `kind` whose message contains `needle` expected; frees it. */
static void err_at(fotp_error *e, int kind, const char *needle, int line) {
    checks++;
    if (e == NULL) fail(line, "expected an error, got success");
    if (fotp_error_kind(e) != kind || !contains(fotp_error_message(e), needle)) {
        fprintf(stderr, "test_abi.c:%d: expected kind %d containing \"%s\", got kind %d: %s\n", line,
                kind, needle, fotp_error_kind(e), fotp_error_message(e));
        exit(1);
    }
    if (kind != FOTP_ERROR_API && fotp_error_api_code(e) != NULL) fail(line, "api code on non-api");
    fotp_error_free(e);
}
#define ERR(e, kind, needle) err_at((e), (kind), (needle), __LINE__)
#define INVALID(e, arg) err_at((e), FOTP_ERROR_INVALID_ARGUMENT, "`" arg "`", __LINE__)

/* A non-NULL pointer that a failed call must leave in its out-parameter. */
static char sentinel_byte;
#define SENTINEL(T) ((T *)(void *)&sentinel_byte)

static const char BAD_UTF8[] = "\xff\xfe";

static void test_static_strings_and_constants(void) {
    char version[32];
    sprintf(version, "%d.%d.%d", FOTP_VERSION_MAJOR, FOTP_VERSION_MINOR, FOTP_VERSION_PATCH);
    CHECK(streq(fotp_version(), FOTP_VERSION));
    CHECK(streq(fotp_version(), version));
    CHECK(fotp_version() == fotp_version()); /* static */
    CHECK(streq(fotp_callback_ack(), "{\"code\":\"0\"}"));
    CHECK(FOTP_STATUS_PROCESSING == 0 && FOTP_STATUS_FAILED == 1 && FOTP_STATUS_SUCCESS == 2);
    CHECK(FOTP_STATUS_UNKNOWN == 255);
    CHECK(FOTP_ERROR_INVALID_ARGUMENT == 1 && FOTP_ERROR_CONFIG == 2 && FOTP_ERROR_NETWORK == 3);
    CHECK(FOTP_ERROR_TIMEOUT == 4 && FOTP_ERROR_HTTP_STATUS == 5 && FOTP_ERROR_API == 6);
    CHECK(FOTP_ERROR_DECODE == 7 && FOTP_ERROR_EXHAUSTED == 8 && FOTP_ERROR_INTERNAL == 99);
}

static void test_null_handling(void) {
    const char *out[8];
    int i;
    for (i = 0; i < 8; i++) out[i] = &sentinel_byte;

    CHECK(fotp_error_kind(NULL) == 0);
    CHECK(fotp_error_message(NULL) != NULL && strlen(fotp_error_message(NULL)) > 0);
    CHECK(fotp_error_api_code(NULL) == NULL);
    CHECK(fotp_error_http_status(NULL) == 0);

    CHECK(fotp_verification_url(NULL) == NULL);
    CHECK(fotp_verification_ft_token(NULL) == NULL);
    CHECK(fotp_verification_message_id(NULL) == NULL);
    CHECK(fotp_verification_code(NULL) == NULL);
    CHECK(fotp_verification_fields(NULL, out, 8) == 0);

    CHECK(fotp_query_result_status(NULL) == FOTP_STATUS_UNKNOWN);
    CHECK(fotp_query_result_raw_status(NULL) == NULL);
    CHECK(fotp_query_result_mobile(NULL) == NULL);
    CHECK(fotp_query_result_sender(NULL) == NULL);
    CHECK(fotp_query_result_send_time(NULL) == NULL);
    CHECK(fotp_query_result_code(NULL) == NULL);
    CHECK(fotp_query_result_deliver_time(NULL) == NULL);
    CHECK(fotp_query_result_fields(NULL, out, 8) == 0);

    CHECK(fotp_callback_mobile(NULL) == NULL);
    CHECK(fotp_callback_sender(NULL) == NULL);
    CHECK(fotp_callback_send_time(NULL) == NULL);
    CHECK(fotp_callback_code(NULL) == NULL);
    CHECK(fotp_callback_content(NULL) == NULL);
    CHECK(fotp_callback_deliver_time(NULL) == NULL);
    CHECK(fotp_callback_err(NULL) == NULL);
    CHECK(fotp_callback_fields(NULL, out, 8) == 0);
    for (i = 0; i < 8; i++) CHECK(out[i] == &sentinel_byte);

    fotp_config_set_timeout_ms(NULL, 1);
    fotp_config_set_connect_timeout_ms(NULL, 1);
    fotp_config_set_retries(NULL, 1);
    fotp_config_set_allow_insecure_http(NULL, true);

    fotp_error_free(NULL);
    fotp_config_free(NULL);
    fotp_client_free(NULL);
    fotp_verification_free(NULL);
    fotp_query_result_free(NULL);
    fotp_callback_free(NULL);
}

static void test_config(void) {
    fotp_config *c = fotp_config_new();
    fotp_config *from_env = SENTINEL(fotp_config);
    fotp_client *client = SENTINEL(fotp_client);
    fotp_error *e;
    char *saved = NULL;
    CHECK(c != NULL);

    INVALID(fotp_config_set_base_url(NULL, "https://x"), "c");
    INVALID(fotp_config_set_base_url(c, NULL), "url");
    INVALID(fotp_config_set_base_url(c, BAD_UTF8), "url");
    INVALID(fotp_config_set_hmac_auth(NULL, "a", "s"), "c");
    INVALID(fotp_config_set_hmac_auth(c, NULL, "s"), "app_id");
    INVALID(fotp_config_set_hmac_auth(c, "a", NULL), "app_secret");
    INVALID(fotp_config_set_hmac_auth(c, BAD_UTF8, "s"), "app_id");
    INVALID(fotp_config_set_token_auth(NULL, "k", "t"), "c");
    INVALID(fotp_config_set_token_auth(c, NULL, "t"), "app_key");
    INVALID(fotp_config_set_token_auth(c, "k", BAD_UTF8), "token");
    INVALID(fotp_config_set_user_agent_suffix(NULL, "c99"), "c");
    INVALID(fotp_config_set_user_agent_suffix(c, NULL), "suffix");
    INVALID(fotp_config_from_env(NULL), "out");
    INVALID(fotp_client_new(NULL, &client), "c");
    INVALID(fotp_client_new(c, NULL), "out");

    /* The failed setters changed nothing: the base URL is still missing. */
    ERR(fotp_client_new(c, &client), FOTP_ERROR_CONFIG, "base URL");
    OK(fotp_config_set_base_url(c, "https://otp.example.com/otp-api"));
    ERR(fotp_client_new(c, &client), FOTP_ERROR_CONFIG, "no credentials");
    OK(fotp_config_set_hmac_auth(c, "app", "hunter2-secret"));
    OK(fotp_config_set_base_url(c, "http://otp.example.com/otp-api"));
    e = fotp_client_new(c, &client);
    CHECK(fotp_error_kind(e) == FOTP_ERROR_CONFIG);
    CHECK(contains(fotp_error_message(e), "plain HTTP"));
    CHECK(!contains(fotp_error_message(e), "hunter2"));
    CHECK(fotp_error_http_status(e) == 0 && fotp_error_api_code(e) == NULL);
    fotp_error_free(e);
    CHECK(client == SENTINEL(fotp_client));

    fotp_config_set_allow_insecure_http(c, true);
    fotp_config_set_timeout_ms(c, 0);
    ERR(fotp_client_new(c, &client), FOTP_ERROR_CONFIG, "timeout");
    fotp_config_set_timeout_ms(c, 2000);
    fotp_config_set_connect_timeout_ms(c, 0);
    ERR(fotp_client_new(c, &client), FOTP_ERROR_CONFIG, "connect timeout");
    fotp_config_set_connect_timeout_ms(c, 500);
    fotp_config_set_retries(c, 0);
    OK(fotp_config_set_user_agent_suffix(c, "bad\tsuffix"));
    ERR(fotp_client_new(c, &client), FOTP_ERROR_CONFIG, "User-Agent");
    OK(fotp_config_set_user_agent_suffix(c, "c-test/1"));
    OK(fotp_client_new(c, &client));
    CHECK(client != NULL && client != SENTINEL(fotp_client));
    fotp_client_free(client);

    OK(fotp_config_set_token_auth(c, "key", ""));
    ERR(fotp_client_new(c, &client), FOTP_ERROR_CONFIG, "token");
    OK(fotp_config_set_token_auth(c, "key", "tok"));
    OK(fotp_client_new(c, &client));
    fotp_config_free(c); /* the client does not depend on its config */
    fotp_client_free(client);

    /* A FOTP_* variable that does not parse is a config error naming it. */
    if (getenv("FOTP_RETRIES") != NULL) saved = strdup(getenv("FOTP_RETRIES"));
    CHECK(setenv("FOTP_RETRIES", "many", 1) == 0);
    ERR(fotp_config_from_env(&from_env), FOTP_ERROR_CONFIG, "FOTP_RETRIES");
    CHECK(from_env == SENTINEL(fotp_config));
    if (saved != NULL) {
        CHECK(setenv("FOTP_RETRIES", saved, 1) == 0);
        free(saved);
    } else {
        CHECK(unsetenv("FOTP_RETRIES") == 0);
    }
    OK(fotp_config_from_env(&from_env));
    CHECK(from_env != NULL && from_env != SENTINEL(fotp_config));
    fotp_config_free(from_env);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL) {
        fprintf(stderr, "test_abi: cannot open %s\n", path);
        exit(1);
    }
    CHECK(fseek(f, 0, SEEK_END) == 0);
    n = ftell(f);
    CHECK(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static fotp_callback *parse(const char *json) {
    fotp_callback *cb = NULL;
    OK(fotp_callback_parse((const uint8_t *)json, strlen(json), &cb));
    CHECK(cb != NULL);
    return cb;
}

/* The fields fotp_callback_parse_into() wrote: `n` NUL-terminated strings back to back. */
static const char *nth_field(const char *buf, int n) {
    while (n-- > 0) buf += strlen(buf) + 1;
    return buf;
}

static void test_callback_parse_into(const char *seed_path) {
    size_t len, used = 12345;
    uint32_t present = 0xdead;
    char *seed = read_file(seed_path, &len);
    char *buf = malloc(len + 7);
    char small[16];
    const char *body;
    fotp_callback *cb = NULL;
    int i;

    CHECK(buf != NULL);
    /* The seed: the same fields as fotp_callback_parse(), in fotp_callback_fields() order. */
    OK(fotp_callback_parse((const uint8_t *)seed, len, &cb));
    OK(fotp_callback_parse_into((const uint8_t *)seed, len, buf, len + 7, &used, &present));
    CHECK(present == 0x3f); /* all but err */
    CHECK(streq(nth_field(buf, 0), fotp_callback_mobile(cb)));
    CHECK(streq(nth_field(buf, 1), fotp_callback_sender(cb)));
    CHECK(streq(nth_field(buf, 2), fotp_callback_send_time(cb)));
    CHECK(streq(nth_field(buf, 3), "5776"));
    CHECK(streq(nth_field(buf, 4), fotp_callback_content(cb)));
    CHECK(streq(nth_field(buf, 5), fotp_callback_deliver_time(cb)));
    CHECK(streq(nth_field(buf, 6), "")); /* absent: empty, bit 6 clear */
    CHECK(used == (size_t)(nth_field(buf, 7) - buf));
    fotp_callback_free(cb);

    /* Integers, null, an empty optional field (present, unlike an absent one). */
    body = "{\"mobile\":8613800000000,\"sender\":1,\"sendTime\":\"t\",\"code\":5776,"
           "\"content\":null,\"deliverTime\":\"\",\"err\":\"x\\u00e9\"}";
    OK(fotp_callback_parse_into((const uint8_t *)body, strlen(body), buf, len + 7, &used,
                                &present));
    CHECK(present == (0xf | 1u << 5 | 1u << 6));
    CHECK(streq(nth_field(buf, 0), "8613800000000") && streq(nth_field(buf, 1), "1"));
    CHECK(streq(nth_field(buf, 3), "5776") && streq(nth_field(buf, 4), ""));
    CHECK(streq(nth_field(buf, 5), "") && streq(nth_field(buf, 6), "x\xc3\xa9"));
    CHECK(used == (size_t)(nth_field(buf, 7) - buf));

    /* len + 7 always suffices, even for the shortest body (three fields absent). */
    body = "{\"mobile\":1,\"sender\":2,\"sendTime\":3,\"code\":4}";
    OK(fotp_callback_parse_into((const uint8_t *)body, strlen(body), small, sizeof small, &used,
                                &present));
    CHECK(present == 0xf && used == 11 && streq(nth_field(small, 3), "4"));

    /* Errors: nothing written. */
    memset(buf, 'z', len + 7);
    used = 12345;
    present = 0xdead;
    /* Too small a buffer (the seed's fields need more than 16 bytes). */
    INVALID(fotp_callback_parse_into((const uint8_t *)seed, len, buf, 16, &used, &present), "cap");
    ERR(fotp_callback_parse_into((const uint8_t *)seed, len, buf, 0, &used, &present),
        FOTP_ERROR_INVALID_ARGUMENT, "need");
    /* Bad UTF-8, bad JSON, a NUL inside a field, a missing field: the parse's own errors. */
    body = "{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\",\"err\":\"\xff\"}";
    ERR(fotp_callback_parse_into((const uint8_t *)body, strlen(body), buf, len + 7, &used,
                                 &present),
        FOTP_ERROR_DECODE, "invalid callback body");
    ERR(fotp_callback_parse_into((const uint8_t *)"[1]", 3, buf, len + 7, &used, &present),
        FOTP_ERROR_DECODE, "invalid callback body");
    body = "{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\",\"content\":\"a\\u0000\"}";
    ERR(fotp_callback_parse_into((const uint8_t *)body, strlen(body), buf, len + 7, &used,
                                 &present),
        FOTP_ERROR_DECODE, "`content`");
    body = "{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\"}";
    ERR(fotp_callback_parse_into((const uint8_t *)body, strlen(body), buf, len + 7, &used,
                                 &present),
        FOTP_ERROR_DECODE, "`code`");
    ERR(fotp_callback_parse_into(NULL, 0, buf, len + 7, &used, &present), FOTP_ERROR_DECODE, "EOF");
    /* NULL arguments. */
    INVALID(fotp_callback_parse_into(NULL, 3, buf, len + 7, &used, &present), "body");
    INVALID(fotp_callback_parse_into((const uint8_t *)seed, len, NULL, len + 7, &used, &present),
            "buf");
    INVALID(fotp_callback_parse_into((const uint8_t *)seed, len, buf, len + 7, NULL, &present),
            "used");
    INVALID(fotp_callback_parse_into((const uint8_t *)seed, len, buf, len + 7, &used, NULL),
            "present");
    CHECK(used == 12345 && present == 0xdead);
    for (i = 0; i < (int)(len + 7) && buf[i] == 'z'; i++) continue;
    CHECK(i == (int)(len + 7));
    free(buf);
    free(seed);
}

static void test_callbacks(const char *seed_path) {
    size_t len;
    char *seed = read_file(seed_path, &len);
    fotp_callback *cb = NULL;
    const char *f[9];
    const char *two[2];
    char *big;
    int i;
    static const char *const bad[][2] = {
        {"", "EOF"},
        {"[1,2]", "invalid callback body"},
        {"{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\"}", "`code`"},
        {"{\"mobile\":\"\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\"}", "`mobile`"},
        {"{\"mobile\":\"1\",\"sender\":true,\"sendTime\":\"t\",\"code\":\"1\"}", "`sender`"},
        {"{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\",\"err\":\"\xff\"}",
         "invalid callback body"},
        {"{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\",\"content\":\"a\\u0000b\"}",
         "`content`"},
        {"{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"1\"} trailing", "trailing"},
    };

    OK(fotp_callback_parse((const uint8_t *)seed, len, &cb));
    free(seed); /* the callback keeps its own copies */
    CHECK(streq(fotp_callback_mobile(cb), "8615711666132"));
    CHECK(streq(fotp_callback_sender(cb), "1008611"));
    CHECK(streq(fotp_callback_send_time(cb), "2025-05-15 11:23:34"));
    CHECK(streq(fotp_callback_code(cb), "5776"));
    CHECK(contains(fotp_callback_content(cb), "\xF0\x9F\x94\x90 Exclusive Access Unlocked!\nYour VIP"));
    CHECK(streq(fotp_callback_deliver_time(cb), "2025-05-15 11:24:24"));
    CHECK(fotp_callback_err(cb) == NULL);
    for (i = 0; i < 9; i++) f[i] = &sentinel_byte;
    CHECK(fotp_callback_fields(cb, f, 9) == 7);
    CHECK(f[0] == fotp_callback_mobile(cb) && f[1] == fotp_callback_sender(cb));
    CHECK(f[2] == fotp_callback_send_time(cb) && f[3] == fotp_callback_code(cb));
    CHECK(f[4] == fotp_callback_content(cb) && f[5] == fotp_callback_deliver_time(cb));
    CHECK(f[6] == NULL && f[7] == &sentinel_byte && f[8] == &sentinel_byte);
    CHECK(fotp_callback_fields(cb, two, 2) == 7);
    CHECK(two[0] == f[0] && two[1] == f[1]);
    CHECK(fotp_callback_fields(cb, NULL, 0) == 7);
    fotp_callback_free(cb);

    cb = parse("{\"mobile\":8613800000000,\"sender\":1008611,\"sendTime\":\"t\",\"code\":5776,"
               "\"content\":null,\"err\":\"expired\",\"extra\":{\"x\":[1]}}");
    CHECK(streq(fotp_callback_mobile(cb), "8613800000000"));
    CHECK(streq(fotp_callback_sender(cb), "1008611"));
    CHECK(streq(fotp_callback_code(cb), "5776"));
    CHECK(fotp_callback_content(cb) == NULL && fotp_callback_deliver_time(cb) == NULL);
    CHECK(streq(fotp_callback_err(cb), "expired"));
    fotp_callback_free(cb);

    cb = SENTINEL(fotp_callback);
    for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        ERR(fotp_callback_parse((const uint8_t *)bad[i][0], strlen(bad[i][0]), &cb),
            FOTP_ERROR_DECODE, bad[i][1]);
    }
    big = malloc(64 * 1024 + 1);
    CHECK(big != NULL);
    memset(big, ' ', 64 * 1024 + 1);
    ERR(fotp_callback_parse((const uint8_t *)big, 64 * 1024 + 1, &cb), FOTP_ERROR_DECODE,
        "over the limit");
    free(big);
    ERR(fotp_callback_parse(NULL, 0, &cb), FOTP_ERROR_DECODE, "EOF");
    INVALID(fotp_callback_parse(NULL, 3, &cb), "body");
    INVALID(fotp_callback_parse((const uint8_t *)"{}", 2, NULL), "out");
    CHECK(cb == SENTINEL(fotp_callback));
}

/* ---- network part, against the sandbox ---- */

static const char *base_url;

/* Simulates the user's SMS through the sandbox (POST /sandbox/uplink) with curl. */
static void uplink(const char *ft_token, const char *mobile, const char *content) {
    char cmd[1024];
    const char *p;
    for (p = base_url; *p; p++) { /* it goes into a shell command: allow URL characters only */
        CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/.-_[]", *p));
    }
    CHECK(strlen(ft_token) == 32 && strspn(ft_token, "0123456789abcdef") == 32);
    CHECK(strlen(base_url) + strlen(mobile) + strlen(content) < 600);
    sprintf(cmd,
            "curl -sS -X POST -H 'Content-Type: application/json' --data "
            "'{\"ftToken\":\"%s\",\"mobile\":\"%s\",\"content\":\"%s\"}' '%s/sandbox/uplink'"
            " | grep -q '\"code\":\"000000\"'",
            ft_token, mobile, content, base_url);
    CHECK(system(cmd) == 0);
}

static fotp_client *client_with(const char *url, const char *app_id, const char *secret) {
    fotp_config *c = fotp_config_new();
    fotp_client *client = NULL;
    OK(fotp_config_set_base_url(c, url));
    OK(fotp_config_set_hmac_auth(c, app_id, secret));
    fotp_config_set_timeout_ms(c, 5000);
    OK(fotp_client_new(c, &client));
    fotp_config_free(c);
    return client;
}

struct worker {
    const fotp_client *client;
    const char *ft_token;
    int successes;
};

static void *query_many(void *arg) {
    struct worker *w = arg;
    int i;
    for (i = 0; i < 5; i++) {
        fotp_query_result *r = NULL;
        fotp_error *e = fotp_query(w->client, w->ft_token, &r);
        if (e == NULL && fotp_query_result_status(r) == FOTP_STATUS_SUCCESS) w->successes++;
        fotp_error_free(e);
        fotp_query_result_free(r);
    }
    return NULL;
}

/* Waits until the pool reports `want` tags and returns them in `tags` (at most 8). */
static void drain_until(const fotp_offload *o, uint64_t *tags, size_t want) {
    size_t got = 0;
    int fd = -1, rounds = 0;
    OK(fotp_offload_fd(o, &fd));
    CHECK(fd >= 0);
    while (got < want && rounds++ < 100) {
        struct pollfd p = {fd, POLLIN, 0};
        size_t n = fotp_offload_drain(o, tags + got, 8 - got);
        got += n;
        if (n == 0) CHECK(poll(&p, 1, 200) >= 0);
    }
    CHECK(got == want);
}

/* The calls on the library's worker pool (src/ffi/offload.rs): same results and errors as the
 * blocking calls, the tag reported once, the result taken once. */
static void test_offload(const fotp_client *client) {
    fotp_offload *o = SENTINEL(fotp_offload);
    fotp_call *cv = SENTINEL(fotp_call), *cq = NULL, *cc = NULL, *bad = NULL;
    fotp_verification *v = SENTINEL(fotp_verification);
    fotp_query_result *r = SENTINEL(fotp_query_result);
    fotp_callback *cb = NULL;
    uint64_t tags[8] = {0};
    bool confirmed = true;
    int fd = 7;

    INVALID(fotp_offload_new(2, NULL), "out");
    OK(fotp_offload_new(2, &o));
    CHECK(o != NULL && o != SENTINEL(fotp_offload));
    INVALID(fotp_offload_fd(NULL, &fd), "o");
    INVALID(fotp_offload_fd(o, NULL), "fd");
    CHECK(fd == 7);
    CHECK(fotp_offload_drain(NULL, tags, 8) == 0);
    CHECK(fotp_offload_drain(o, NULL, 8) == 0);
    CHECK(fotp_offload_drain(o, tags, 8) == 0);
    INVALID(fotp_verify_start(NULL, "2", NULL, 0, o, 1, &cv), "client");
    INVALID(fotp_verify_start(client, NULL, NULL, 0, o, 1, &cv), "ft_id");
    INVALID(fotp_verify_start(client, "2", BAD_UTF8, 0, o, 1, &cv), "code");
    INVALID(fotp_verify_start(client, "2", NULL, 0, NULL, 1, &cv), "o");
    INVALID(fotp_verify_start(client, "2", NULL, 0, o, 1, NULL), "out");
    INVALID(fotp_query_start(client, NULL, o, 1, &cv), "ft_token");
    INVALID(fotp_confirm_callback_start(client, NULL, "t", o, 1, &cv), "cb");
    CHECK(cv == SENTINEL(fotp_call));
    INVALID(fotp_call_verification(NULL, &v), "call");
    INVALID(fotp_call_query_result(NULL, &r), "call");
    INVALID(fotp_call_confirmed(NULL, &confirmed), "call");
    fotp_call_free(NULL);
    fotp_offload_free(NULL);

    OK(fotp_verify_start(client, "2", "2468", 0, o, 41, &cv));
    /* Input rules are the blocking call's; the error comes with the result. */
    OK(fotp_verify_start(client, "2", "12", 0, o, 42, &bad));
    drain_until(o, tags, 2);
    CHECK((tags[0] == 41 && tags[1] == 42) || (tags[0] == 42 && tags[1] == 41));
    INVALID(fotp_call_verification(cv, NULL), "out");
    ERR(fotp_call_query_result(cv, &r), FOTP_ERROR_INVALID_ARGUMENT, "fotp_verify_start");
    OK(fotp_call_verification(cv, &v));
    CHECK(streq(fotp_verification_code(v), "2468"));
    ERR(fotp_call_verification(cv, &v), FOTP_ERROR_INVALID_ARGUMENT, "already taken");
    ERR(fotp_call_verification(bad, &v), FOTP_ERROR_INVALID_ARGUMENT, "code");
    fotp_call_free(bad);
    bad = NULL;

    OK(fotp_query_start(client, fotp_verification_ft_token(v), o, 43, &cq));
    cb = parse("{\"mobile\":\"1\",\"sender\":\"2\",\"sendTime\":\"t\",\"code\":\"2468\"}");
    OK(fotp_confirm_callback_start(client, cb, fotp_verification_ft_token(v), o, 44, &cc));
    fotp_callback_free(cb); /* copied by the call */
    /* Freed while it may still run: it finishes and its result is dropped. */
    OK(fotp_query_start(client, fotp_verification_ft_token(v), o, 45, &bad));
    fotp_call_free(bad);
    drain_until(o, tags, 3);
    OK(fotp_call_query_result(cq, &r));
    CHECK(fotp_query_result_status(r) == FOTP_STATUS_PROCESSING);
    OK(fotp_call_confirmed(cc, &confirmed));
    CHECK(!confirmed); /* not delivered yet: not confirmed */
    CHECK(fotp_offload_drain(o, tags, 8) == 0);
    fotp_query_result_free(r);
    fotp_verification_free(v);
    fotp_call_free(cv);
    fotp_call_free(cq);
    fotp_call_free(cc);
    fotp_offload_free(o);
}

static void test_network(void) {
    fotp_config *c = NULL;
    fotp_client *client = NULL, *short_client = SENTINEL(fotp_client), *other = NULL;
    fotp_verification *v = SENTINEL(fotp_verification), *v2 = NULL;
    fotp_query_result *r = SENTINEL(fotp_query_result);
    fotp_callback *cb = NULL;
    const char *f[6];
    const char *token;
    char body[512];
    bool confirmed = true;
    fotp_error *e;
    pthread_t threads[4];
    struct worker workers[4];
    int i;

    OK(fotp_config_from_env(&c));
    OK(fotp_client_new(c, &client));
    fotp_config_free(c);

    /* Input rules are checked before anything is sent. */
    INVALID(fotp_verify(NULL, "2", NULL, 0, &v), "client");
    INVALID(fotp_verify(client, NULL, NULL, 0, &v), "ft_id");
    INVALID(fotp_verify(client, BAD_UTF8, NULL, 0, &v), "ft_id");
    INVALID(fotp_verify(client, "2", BAD_UTF8, 0, &v), "code");
    INVALID(fotp_verify(client, "2", NULL, 0, NULL), "out");
    ERR(fotp_verify(client, "", NULL, 0, &v), FOTP_ERROR_INVALID_ARGUMENT, "ftId");
    ERR(fotp_verify(client, "2", "123", 0, &v), FOTP_ERROR_INVALID_ARGUMENT, "code");
    ERR(fotp_verify(client, "2", "", 0, &v), FOTP_ERROR_INVALID_ARGUMENT, "code");
    ERR(fotp_verify(client, "2", NULL, 11, &v), FOTP_ERROR_INVALID_ARGUMENT, "validityPeriod");
    CHECK(v == SENTINEL(fotp_verification));

    OK(fotp_verify(client, "2", "4321", 5, &v));
    CHECK(v != NULL && v != SENTINEL(fotp_verification));
    token = fotp_verification_ft_token(v);
    CHECK(strlen(token) == 32);
    CHECK(streq(fotp_verification_code(v), "4321"));
    CHECK(contains(fotp_verification_url(v), token));
    CHECK(strlen(fotp_verification_message_id(v)) > 0);
    CHECK(fotp_verification_fields(v, f, 6) == 4);
    CHECK(f[0] == fotp_verification_url(v) && f[1] == token);
    CHECK(f[2] == fotp_verification_message_id(v) && f[3] == fotp_verification_code(v));

    INVALID(fotp_query(NULL, token, &r), "client");
    INVALID(fotp_query(client, NULL, &r), "ft_token");
    INVALID(fotp_query(client, token, NULL), "out");
    ERR(fotp_query(client, "not a token", &r), FOTP_ERROR_INVALID_ARGUMENT, "ftToken");
    INVALID(fotp_wait(NULL, token, 100, &r), "client");
    INVALID(fotp_wait(client, BAD_UTF8, 100, &r), "ft_token");
    INVALID(fotp_wait(client, token, 100, NULL), "out");
    CHECK(r == SENTINEL(fotp_query_result));

    OK(fotp_query(client, token, &r));
    CHECK(fotp_query_result_status(r) == FOTP_STATUS_PROCESSING);
    CHECK(streq(fotp_query_result_raw_status(r), "0"));
    fotp_query_result_free(r);
    r = SENTINEL(fotp_query_result);

    /* Nobody sent the SMS yet: the wait runs out. */
    ERR(fotp_wait(client, token, 300, &r), FOTP_ERROR_TIMEOUT, "");
    CHECK(r == SENTINEL(fotp_query_result));

    uplink(token, "8613800000000", "my code is 4321");
    OK(fotp_wait(client, token, 10000, &r));
    CHECK(fotp_query_result_status(r) == FOTP_STATUS_SUCCESS);
    CHECK(streq(fotp_query_result_raw_status(r), "2"));
    CHECK(streq(fotp_query_result_mobile(r), "8613800000000"));
    CHECK(streq(fotp_query_result_code(r), "4321"));
    CHECK(streq(fotp_query_result_sender(r), "1008611"));
    CHECK(fotp_query_result_send_time(r) != NULL);
    CHECK(fotp_query_result_deliver_time(r) != NULL);
    CHECK(fotp_query_result_fields(r, f, 6) == 6);
    CHECK(f[0] == fotp_query_result_raw_status(r) && f[1] == fotp_query_result_mobile(r));
    CHECK(f[2] == fotp_query_result_sender(r) && f[3] == fotp_query_result_send_time(r));
    CHECK(f[4] == fotp_query_result_code(r) && f[5] == fotp_query_result_deliver_time(r));

    /* Push mode: a callback carrying what the platform knows is confirmed, a forged one not. */
    sprintf(body, "{\"mobile\":\"%s\",\"sender\":\"%s\",\"sendTime\":\"%s\",\"code\":\"%s\"}",
            fotp_query_result_mobile(r), fotp_query_result_sender(r),
            fotp_query_result_send_time(r), fotp_query_result_code(r));
    fotp_query_result_free(r);
    cb = parse(body);
    INVALID(fotp_confirm_callback(NULL, cb, token, &confirmed), "client");
    INVALID(fotp_confirm_callback(client, NULL, token, &confirmed), "cb");
    INVALID(fotp_confirm_callback(client, cb, NULL, &confirmed), "ft_token");
    INVALID(fotp_confirm_callback(client, cb, token, NULL), "confirmed");
    CHECK(confirmed); /* untouched by the failures */
    confirmed = false;
    OK(fotp_confirm_callback(client, cb, token, &confirmed));
    CHECK(confirmed);
    e = fotp_confirm_callback(client, cb, "0123456789abcdef0123456789abcdef", &confirmed);
    CHECK(fotp_error_kind(e) == FOTP_ERROR_API);
    CHECK(streq(fotp_error_api_code(e), "300001"));
    CHECK(fotp_error_http_status(e) == 200);
    fotp_error_free(e);
    CHECK(confirmed);
    fotp_callback_free(cb);
    cb = parse("{\"mobile\":\"8613800000000\",\"sender\":\"1008611\",\"sendTime\":\"t\","
               "\"code\":\"4322\"}");
    OK(fotp_confirm_callback(client, cb, token, &confirmed));
    CHECK(!confirmed);
    fotp_callback_free(cb);

    /* One client from several threads at once. */
    for (i = 0; i < 4; i++) {
        workers[i].client = client;
        workers[i].ft_token = token;
        workers[i].successes = 0;
        CHECK(pthread_create(&threads[i], NULL, query_many, &workers[i]) == 0);
    }
    for (i = 0; i < 4; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(workers[i].successes == 5);
    }

    /* A derived client with its own time limit, sharing the pool, outliving nothing. */
    INVALID(fotp_client_with_timeout(NULL, 100, &short_client), "client");
    INVALID(fotp_client_with_timeout(client, 0, &short_client), "timeout_ms");
    INVALID(fotp_client_with_timeout(client, 100, NULL), "out");
    CHECK(short_client == SENTINEL(fotp_client));
    OK(fotp_client_with_timeout(client, 2000, &short_client));
    OK(fotp_query(short_client, token, &r));
    CHECK(fotp_query_result_status(r) == FOTP_STATUS_SUCCESS);
    fotp_query_result_free(r);

    /* A wrong code in the SMS fails the verification. */
    OK(fotp_verify(short_client, "2", NULL, 0, &v2));
    CHECK(strlen(fotp_verification_code(v2)) >= 4 && strlen(fotp_verification_code(v2)) <= 6);
    sprintf(body, "wrong code %s", fotp_verification_code(v2));
    body[11] = body[11] == '9' ? '1' : (char)(body[11] + 1); /* another code, same length */
    uplink(fotp_verification_ft_token(v2), "8613800000001", body);
    OK(fotp_wait(short_client, fotp_verification_ft_token(v2), 10000, &r));
    CHECK(fotp_query_result_status(r) == FOTP_STATUS_FAILED);
    CHECK(streq(fotp_query_result_raw_status(r), "1"));
    fotp_query_result_free(r);
    fotp_verification_free(v2);
    fotp_client_free(short_client);

    /* Platform errors: unknown template, bad credentials; and nobody listening. */
    v2 = SENTINEL(fotp_verification);
    e = fotp_verify(client, "no-such-template", NULL, 0, &v2);
    CHECK(fotp_error_kind(e) == FOTP_ERROR_API && streq(fotp_error_api_code(e), "200002"));
    fotp_error_free(e);
    other = client_with(base_url, "sandbox", "wrong-secret");
    e = fotp_verify(other, "2", NULL, 0, &v2);
    CHECK(fotp_error_kind(e) == FOTP_ERROR_API && streq(fotp_error_api_code(e), "100001"));
    CHECK(!contains(fotp_error_message(e), "wrong-secret"));
    fotp_error_free(e);
    fotp_client_free(other);
    other = client_with("http://127.0.0.1:1", "sandbox", "sandbox-secret");
    e = fotp_verify(other, "2", NULL, 0, &v2);
    CHECK(fotp_error_kind(e) == FOTP_ERROR_NETWORK && fotp_error_http_status(e) == 0);
    fotp_error_free(e);
    fotp_client_free(other);
    CHECK(v2 == SENTINEL(fotp_verification));

    fotp_verification_free(v);
    test_offload(client);
    fotp_client_free(client);
}

static double now_ms(void) {
    struct timespec t;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t) == 0);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static void *trigger_later(void *cancel) {
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    fotp_cancel_trigger((const fotp_cancel *)cancel);
    return NULL;
}

/* Call bounds, cancellation from another thread, per-client proxy and CA bundle settings. */
static void test_limits_cancel_and_settings(void) {
    fotp_config *c = NULL;
    fotp_client *client = NULL, *watched = SENTINEL(fotp_client), *bounded = NULL;
    fotp_client *proxied = NULL, *direct = NULL;
    fotp_cancel *cancel;
    fotp_verification *v = NULL, *v2 = SENTINEL(fotp_verification);
    fotp_query_result *r = SENTINEL(fotp_query_result);
    fotp_error *e;
    pthread_t thread;
    double start, took;

    OK(fotp_config_from_env(&c));
    OK(fotp_client_new(c, &client));
    /* A verification nobody answers: wait keeps polling it. */
    OK(fotp_verify(client, "2", NULL, 0, &v));

    /* The call bound ends a wait before its own limit. */
    fotp_config_set_call_timeout_ms(NULL, 1);
    fotp_config_set_call_timeout_ms(c, 300);
    OK(fotp_client_new(c, &bounded));
    start = now_ms();
    ERR(fotp_wait(bounded, fotp_verification_ft_token(v), 10000, &r), FOTP_ERROR_TIMEOUT, "300 ms");
    took = now_ms() - start;
    CHECK(took >= 290 && took < 3000);
    CHECK(r == SENTINEL(fotp_query_result));
    fotp_client_free(bounded);
    fotp_config_set_call_timeout_ms(c, 0);

    /* Cancellation: a wait stops soon after another thread triggers the token. */
    fotp_cancel_trigger(NULL);
    fotp_cancel_free(NULL);
    cancel = fotp_cancel_new();
    CHECK(cancel != NULL);
    INVALID(fotp_client_with_cancel(NULL, cancel, &watched), "client");
    INVALID(fotp_client_with_cancel(client, NULL, &watched), "cancel");
    INVALID(fotp_client_with_cancel(client, cancel, NULL), "out");
    CHECK(watched == SENTINEL(fotp_client));
    OK(fotp_client_with_cancel(client, cancel, &watched));
    CHECK(pthread_create(&thread, NULL, trigger_later, cancel) == 0);
    start = now_ms();
    ERR(fotp_wait(watched, fotp_verification_ft_token(v), 10000, &r), FOTP_ERROR_TIMEOUT,
        "cancelled");
    took = now_ms() - start;
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(took >= 150 && took < 3000); /* generous: valgrind runs this too */
    /* Later calls fail at once, and the token may go before the client. */
    fotp_cancel_free(cancel);
    ERR(fotp_verify(watched, "2", NULL, 0, &v2), FOTP_ERROR_TIMEOUT, "cancelled");
    CHECK(v2 == SENTINEL(fotp_verification));
    fotp_client_free(watched);
    OK(fotp_query(client, fotp_verification_ft_token(v), &r));
    CHECK(fotp_query_result_status(r) == FOTP_STATUS_PROCESSING);
    fotp_query_result_free(r);

    /* Settings checked when set. */
    INVALID(fotp_config_set_ca_bundle(NULL, "x"), "c");
    INVALID(fotp_config_set_ca_bundle(c, NULL), "pem_path");
    ERR(fotp_config_set_ca_bundle(c, "/nonexistent/ca.pem"), FOTP_ERROR_CONFIG, "/nonexistent/ca.pem");
    INVALID(fotp_config_set_proxy(NULL, NULL), "c");
    INVALID(fotp_config_set_proxy(c, BAD_UTF8), "proxy_url");
    ERR(fotp_config_set_proxy(c, "socks5://127.0.0.1:1080"), FOTP_ERROR_CONFIG, "proxy");

    /* Two clients, one process: a proxy that is not there fails only the client set to use it
     * (an explicit proxy applies to a loopback base URL too); NULL means none at all. */
    OK(fotp_config_set_proxy(c, "http://127.0.0.1:1"));
    fotp_config_set_retries(c, 0);
    OK(fotp_client_new(c, &proxied));
    OK(fotp_config_set_proxy(c, NULL));
    OK(fotp_client_new(c, &direct));
    e = fotp_query(proxied, fotp_verification_ft_token(v), &r);
    CHECK(fotp_error_kind(e) == FOTP_ERROR_NETWORK);
    fotp_error_free(e);
    OK(fotp_query(direct, fotp_verification_ft_token(v), &r));
    fotp_query_result_free(r);
    fotp_client_free(proxied);
    fotp_client_free(direct);

    fotp_config_free(c);
    fotp_verification_free(v);
    fotp_client_free(client);
}

/* A forked child must not use its parent's pooled connection nor repeat its nonces: the
   sandbox refuses a nonce it has seen (100003), so a child drawing the parent's next nonces
   fails here. Also runs the library's pthread_atfork handler under ASan and valgrind. */
static void test_fork(void) {
    fotp_config *c = NULL;
    fotp_client *client = NULL;
    fotp_verification *v = NULL;
    int round, i, status = 0, child_ok;
    pid_t pid;
    const char *preload = getenv("LD_PRELOAD");

    /* Under valgrind the child's exit reports the parent's pool as lost: the library forgets
       it on purpose in a child (closing it could write to the parent's TLS sessions). The
       AddressSanitizer run (whose leak check a child's _exit skips) runs this test. */
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) return;
    OK(fotp_config_from_env(&c));
    OK(fotp_client_new(c, &client));
    fotp_config_free(c);
    for (round = 0; round < 3; round++) {
        OK(fotp_verify(client, "2", NULL, 0, &v)); /* pooled connection, seeded generator */
        fotp_verification_free(v);
        fflush(stdout);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            child_ok = 1;
            for (i = 0; i < 5; i++) {
                fotp_error *e = fotp_verify(client, "2", NULL, 0, &v);
                if (e != NULL) {
                    fprintf(stderr, "test_abi: child verify: %s\n", fotp_error_message(e));
                    fotp_error_free(e);
                    child_ok = 0;
                    break;
                }
                fotp_verification_free(v);
            }
            _exit(child_ok ? 0 : 1);
        }
        for (i = 0; i < 5; i++) {
            OK(fotp_verify(client, "2", NULL, 0, &v));
            fotp_verification_free(v);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    fotp_client_free(client);
}

/* A pool made before fork(): the child gets a clear error from it, drains nothing from it and
   frees it without waiting for the parent's workers (an alarm turns a hang into a failure); a
   pool made in the child works, and so does the parent's, meanwhile. */
static void test_offload_fork(void) {
    fotp_config *c = NULL;
    fotp_client *client = NULL;
    fotp_offload *o = NULL, *mine = NULL;
    fotp_call *call = NULL;
    fotp_verification *v = NULL;
    uint64_t tags[8] = {0};
    int status = 0;
    pid_t pid;
    const char *preload = getenv("LD_PRELOAD");

    /* As test_fork: the child forgets the parent's pool on purpose, which valgrind reports. */
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) return;
    OK(fotp_config_from_env(&c));
    OK(fotp_client_new(c, &client));
    fotp_config_free(c);
    OK(fotp_offload_new(2, &o));
    OK(fotp_verify_start(client, "2", "1357", 0, o, 1, &call)); /* a worker now idles */
    drain_until(o, tags, 1);
    fotp_call_free(call);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        ERR(fotp_verify_start(client, "2", NULL, 0, o, 2, &call), FOTP_ERROR_INTERNAL, "fork");
        CHECK(fotp_offload_drain(o, tags, 8) == 0);
        fotp_offload_free(o);
        OK(fotp_offload_new(1, &mine));
        OK(fotp_verify_start(client, "2", "2468", 0, mine, 3, &call));
        drain_until(mine, tags, 1);
        CHECK(tags[0] == 3);
        OK(fotp_call_verification(call, &v));
        CHECK(streq(fotp_verification_code(v), "2468"));
        fotp_verification_free(v);
        fotp_call_free(call);
        fotp_offload_free(mine);
        _exit(0);
    }
    OK(fotp_verify_start(client, "2", "9753", 0, o, 4, &call));
    drain_until(o, tags, 1);
    CHECK(tags[0] == 4);
    OK(fotp_call_verification(call, &v));
    CHECK(streq(fotp_verification_code(v), "9753"));
    fotp_verification_free(v);
    fotp_call_free(call);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fotp_offload_free(o);
    fotp_client_free(client);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_abi CALLBACK_JSON_FILE\n");
        return 2;
    }
    test_static_strings_and_constants();
    test_null_handling();
    test_config();
    test_callbacks(argv[1]);
    test_callback_parse_into(argv[1]);
    base_url = getenv("FOTP_BASE_URL");
    if (base_url != NULL && *base_url) {
        test_network();
        test_fork();
        test_offload_fork();
        test_limits_cancel_and_settings();
    } else {
        printf("test_abi: FOTP_BASE_URL is not set, network part skipped\n");
    }
    printf("test_abi: %d checks passed\n", checks);
    return 0;
}
