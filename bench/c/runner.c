/*
 * The C side of the benchmarks (driven by bench/driver.py).
 *
 *   fotp-bench-c cases BASE_URL   reads `CASE N` lines (c-verify, c-verify-logged, c-query,
 *                                 c-parse) and answers
 *                                 `ok <elapsed ns>` or `error <message>`
 *
 * Links libfotp.so as a C user would (-lfotp). Credentials: the sandbox's defaults.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fotp.h"

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, fotp_error *e) {
    fprintf(stderr, "fotp-bench-c: %s: %s\n", what, e ? fotp_error_message(e) : "failed");
    exit(1);
}

/* The logger of c-verify-logged: what a cheap real logger does, touch every byte once. */
static unsigned long long logged_bytes;
static void count_event(void *user, int level, const char *target, const char *message) {
    (void)user;
    (void)level;
    logged_bytes += strlen(target) + strlen(message);
}

static char callback[65536];
static size_t callback_len;

/* One operation; returns NULL or a static description of what went wrong. */
static const char *op(const fotp_client *client, const char *c) {
    fotp_error *e = NULL;
    if (!strcmp(c, "c-verify")) {
        fotp_verification *v = NULL;
        if ((e = fotp_verify(client, "2", NULL, 0, &v)) != NULL) goto fail;
        int ok = !strcmp(fotp_verification_code(v), "3872");
        fotp_verification_free(v);
        return ok ? NULL : "unexpected verify code";
    }
    if (!strcmp(c, "c-verify-logged")) {
        /* verify with a logger at info: one event per call, formatted and delivered. */
        if ((e = fotp_set_logger(FOTP_LOG_INFO, count_event, NULL)) != NULL) goto fail;
        unsigned long long before = logged_bytes;
        const char *r = op(client, "c-verify");
        if ((e = fotp_set_logger(FOTP_LOG_OFF, NULL, NULL)) != NULL) goto fail;
        return r ? r : logged_bytes > before ? NULL : "no event was logged";
    }
    if (!strcmp(c, "c-query")) {
        fotp_query_result *r = NULL;
        if ((e = fotp_query(client, "44cadc6071214b968b3b3bb1cb5a6c24", &r)) != NULL) goto fail;
        int ok = fotp_query_result_status(r) == FOTP_STATUS_SUCCESS;
        fotp_query_result_free(r);
        return ok ? NULL : "unexpected query status";
    }
    if (!strcmp(c, "c-parse")) {
        fotp_callback *cb = NULL;
        if ((e = fotp_callback_parse((const uint8_t *)callback, callback_len, &cb)) != NULL) goto fail;
        int ok = !strcmp(fotp_callback_code(cb), "5776");
        fotp_callback_free(cb);
        return ok ? NULL : "unexpected callback code";
    }
    return "unknown case";
fail:
    fprintf(stderr, "fotp-bench-c: %s: %s\n", c, fotp_error_message(e));
    fotp_error_free(e);
    return "call failed (see stderr)";
}

int main(int argc, char **argv) {
    if (argc != 4 || strcmp(argv[1], "cases")) {
        fprintf(stderr, "usage: fotp-bench-c cases BASE_URL CALLBACK_JSON\n");
        return 2;
    }
    FILE *f = fopen(argv[3], "rb");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    callback_len = fread(callback, 1, sizeof callback, f);
    fclose(f);

    fotp_config *cfg = fotp_config_new();
    fotp_error *e;
    if ((e = fotp_config_set_base_url(cfg, argv[2])) != NULL) die("base URL", e);
    if ((e = fotp_config_set_hmac_auth(cfg, "sandbox", "sandbox-secret")) != NULL) die("auth", e);
    fotp_client *client = NULL;
    if ((e = fotp_client_new(cfg, &client)) != NULL) die("client", e);
    fotp_config_free(cfg);

    printf("ready\n");
    fflush(stdout);
    char line[256], name[128];
    unsigned long long n;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "%127s %llu", name, &n) != 2) {
            printf("error bad command\n");
            fflush(stdout);
            continue;
        }
        const char *err = NULL;
        long long t = now_ns();
        for (unsigned long long i = 0; i < n && !err; i++) err = op(client, name);
        long long dt = now_ns() - t;
        if (err)
            printf("error %s: %s\n", name, err);
        else
            printf("ok %lld\n", dt);
        fflush(stdout);
    }
    fotp_client_free(client);
    return 0;
}
