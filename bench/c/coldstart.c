/*
 * Cold start of the C library: dlopen libfotp.so, build a config and a client. Prints
 * `ok <ns>` for that span (process start-up excluded). Run in a fresh process each time.
 *
 *   fotp-bench-c-coldstart LIBFOTP_SO BASE_URL
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

#include "fotp.h"

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define SYM(var, name)                                                                             \
    do {                                                                                           \
        *(void **)(&var) = dlsym(lib, name);                                                       \
        if (!var) {                                                                                \
            fprintf(stderr, "missing symbol %s\n", name);                                          \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fotp-bench-c-coldstart LIBFOTP_SO BASE_URL\n");
        return 2;
    }
    long long t = now_ns();
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    fotp_config *(*config_new)(void);
    fotp_error *(*set_base_url)(fotp_config *, const char *);
    fotp_error *(*set_hmac)(fotp_config *, const char *, const char *);
    fotp_error *(*client_new)(const fotp_config *, fotp_client **);
    SYM(config_new, "fotp_config_new");
    SYM(set_base_url, "fotp_config_set_base_url");
    SYM(set_hmac, "fotp_config_set_hmac_auth");
    SYM(client_new, "fotp_client_new");
    fotp_config *cfg = config_new();
    fotp_client *client = NULL;
    if (set_base_url(cfg, argv[2]) || set_hmac(cfg, "sandbox", "sandbox-secret") ||
        client_new(cfg, &client)) {
        fprintf(stderr, "cannot build the client\n");
        return 1;
    }
    long long dt = now_ns() - t;
    printf("ok %lld\n", dt);
    return 0;
}
