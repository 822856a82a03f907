/*
 * fotp quickstart (pull mode): start a verification, show the link and the code, then wait for
 * the user's SMS and print the result.
 *
 * Configuration comes from the environment: FOTP_BASE_URL, FOTP_APP_ID, FOTP_APP_SECRET (and the
 * other FOTP_* variables). Try it against the local sandbox:
 *
 *   fotp sandbox --addr 127.0.0.1:8788 &        # prints FOTP_BASE_URL=... and the credentials
 *   export FOTP_BASE_URL=http://127.0.0.1:8788 FOTP_APP_ID=sandbox FOTP_APP_SECRET=sandbox-secret
 *   cc quickstart.c $(pkg-config --cflags --libs fotp) -o quickstart
 *   ./quickstart [FT_ID] [WAIT_SECONDS]           # default template "2", 120 s
 *
 * then open the printed link (the sandbox's phone page) and press "Send".
 * Exit status: 0 verified, 1 the verification failed or timed out, 2 any other error.
 */
#include <stdio.h>
#include <stdlib.h>

#include <fotp.h>

/* Prints an error the library returned, frees it, and gives the exit status to use. */
static int report(const char *what, fotp_error *err) {
    const char *api_code = fotp_error_api_code(err);
    int kind = fotp_error_kind(err);
    fprintf(stderr, "quickstart: %s failed (kind %d%s%s): %s\n", what, kind,
            api_code ? ", platform code " : "", api_code ? api_code : "",
            fotp_error_message(err));
    fotp_error_free(err);
    return kind == FOTP_ERROR_TIMEOUT ? 1 : 2;
}

static const char *or_dash(const char *s) { return s ? s : "-"; }

int main(int argc, char **argv) {
    const char *ft_id = argc > 1 ? argv[1] : "2";
    long wait_seconds = argc > 2 ? strtol(argv[2], NULL, 10) : 120;
    fotp_config *config = NULL;
    fotp_client *client = NULL;
    fotp_verification *v = NULL;
    fotp_query_result *r = NULL;
    fotp_error *err;
    int status = 2;

    if (wait_seconds <= 0 || wait_seconds > 3600) {
        fprintf(stderr, "quickstart: WAIT_SECONDS must be 1-3600\n");
        return 2;
    }
    printf("fotp %s\n", fotp_version());

    if ((err = fotp_config_from_env(&config)) != NULL) {
        return report("reading the FOTP_* environment", err);
    }
    err = fotp_client_new(config, &client);
    fotp_config_free(config); /* the client keeps its own copy */
    if (err != NULL) {
        return report("creating the client", err);
    }

    /* NULL code: the platform picks one; 0 minutes: the platform's default validity. */
    if ((err = fotp_verify(client, ft_id, NULL, 0, &v)) != NULL) {
        status = report("verify", err);
        goto done;
    }
    printf("open this link on the phone: %s\n", fotp_verification_url(v));
    printf("code: %s\n", fotp_verification_code(v));
    printf("ft_token: %s\n", fotp_verification_ft_token(v));
    printf("waiting up to %ld s for the SMS...\n", wait_seconds);
    fflush(stdout); /* a script may be reading the token to simulate the SMS */

    err = fotp_wait(client, fotp_verification_ft_token(v), (uint32_t)(wait_seconds * 1000), &r);
    if (err != NULL) {
        status = report("wait", err);
        goto done;
    }
    switch (fotp_query_result_status(r)) {
    case FOTP_STATUS_SUCCESS:
        printf("status: success (mobile %s, code %s, sent %s)\n",
               or_dash(fotp_query_result_mobile(r)), or_dash(fotp_query_result_code(r)),
               or_dash(fotp_query_result_send_time(r)));
        status = 0;
        break;
    case FOTP_STATUS_FAILED:
        printf("status: failed\n");
        status = 1;
        break;
    default:
        printf("status: unknown (%s)\n", fotp_query_result_raw_status(r));
        status = 1;
        break;
    }

done:
    fotp_query_result_free(r); /* every free function accepts NULL */
    fotp_verification_free(v);
    fotp_client_free(client);
    return status;
}
