/* Push mode with a tracker shared through Redis, across processes.
 *
 * A callback names no ftToken, only the mobile and the code. A tracker gives every
 * verification a code no other live verification holds; settling a callback finds that
 * verification, has the platform confirm the callback (one query) and reports exactly one
 * genuine delivery per verification as the first, in whichever process receives it. Callbacks
 * are not signed: an unconfirmed one consumes nothing, so a forged callback never hides the
 * genuine one.
 *
 *   push_tracker verify           verify (through the tracker), print the link, wait for the
 *                                 result: woken at once when any process settles its callback
 *   push_tracker settle [FILE|-]  what your callback endpoint does with a body: parse it,
 *                                 settle it, print the HTTP answer
 *
 * Settings: FOTP_BASE_URL, FOTP_APP_ID, FOTP_APP_SECRET (see fotp_config_from_env) and
 * FOTP_REDIS_URL (e.g. redis://127.0.0.1:6379/; unset: an in-memory tracker, one process).
 *
 * Build: cc push_tracker.c $(pkg-config --cflags --libs fotp) -o push_tracker */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fotp.h>

static int report(fotp_error *err) {
  fprintf(stderr, "fotp error %d: %s\n", fotp_error_kind(err), fotp_error_message(err));
  fotp_error_free(err);
  return 1;
}

static fotp_error *open_tracker(fotp_tracker **out) {
  const char *url = getenv("FOTP_REDIS_URL");
  if (url && *url) return fotp_tracker_new_redis(url, "fotp-example", out);
  *out = fotp_tracker_new_memory();
  return NULL;
}

static int do_verify(const fotp_tracker *tracker, const fotp_client *client) {
  fotp_verification *v = NULL;
  fotp_error *err = fotp_tracker_verify(tracker, client, "2", 4, 0, &v);
  if (err) return report(err);
  printf("link %s\ntoken %s\ncode %s\n", fotp_verification_url(v),
         fotp_verification_ft_token(v), fotp_verification_code(v));
  fflush(stdout);

  fotp_query_result *r = NULL;
  err = fotp_tracker_wait(tracker, client, fotp_verification_ft_token(v), 120000, &r);
  fotp_verification_free(v);
  if (err) return report(err);
  int ok = fotp_query_result_status(r) == FOTP_STATUS_SUCCESS;
  printf("status %s\n", fotp_query_result_raw_status(r));
  fotp_query_result_free(r);
  return ok ? 0 : 1;
}

/* Your handler: act on a confirmed result, once. Returns 0 when it succeeded. */
static int handle(const fotp_match *m) {
  printf("first %s\n", fotp_match_ft_token(m));
  return 0;
}

static int do_settle(const fotp_tracker *tracker, const fotp_client *client, FILE *in) {
  static uint8_t body[64 * 1024 + 1];
  size_t len = fread(body, 1, sizeof body, in);
  fotp_callback *cb = NULL;
  fotp_error *err = fotp_callback_parse(body, len, &cb);
  if (err) return report(err); /* an HTTP endpoint answers 400 here */

  fotp_settle_outcome outcome;
  fotp_match *m = NULL;
  err = fotp_tracker_settle_outcome(tracker, client, cb, &outcome, &m);
  fotp_callback_free(cb);
  if (err) {
    printf("answer 503\n"); /* the store or the query failed: nothing consumed, delivered again */
    return report(err);
  }
  switch (outcome) {
  case FOTP_SETTLE_NO_MATCH:
    printf("no live verification holds this code\nanswer %s\n", fotp_callback_ack());
    break;
  case FOTP_SETTLE_UNCONFIRMED:
    printf("unconfirmed\nanswer 503\n"); /* nothing consumed: the platform delivers again */
    break;
  case FOTP_SETTLE_FIRST:
    if (handle(m) != 0) {
      /* The handler failed: undo, so the next delivery is offered to it again. */
      err = fotp_tracker_unsettle(tracker, m);
      if (err) report(err);
      printf("answer 500\n");
      break;
    }
    printf("answer %s\n", fotp_callback_ack());
    break;
  case FOTP_SETTLE_DUPLICATE:
    printf("duplicate %s\nanswer %s\n", fotp_match_ft_token(m), fotp_callback_ack());
    break;
  }
  fotp_match_free(m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "settle") != 0)) {
    fprintf(stderr, "usage: %s verify | settle [FILE|-]\n", argv[0]);
    return 2;
  }
  fotp_tracker *tracker = NULL;
  fotp_error *err = open_tracker(&tracker);
  if (err) return report(err);
  fotp_config *cfg = NULL;
  fotp_client *client = NULL;
  err = fotp_config_from_env(&cfg);
  if (!err) err = fotp_client_new(cfg, &client);
  fotp_config_free(cfg);
  if (err) {
    fotp_tracker_free(tracker);
    return report(err);
  }

  int status;
  if (strcmp(argv[1], "settle") == 0) {
    FILE *in = stdin;
    if (argc > 2 && strcmp(argv[2], "-") != 0) in = fopen(argv[2], "rb");
    if (!in) {
      perror(argv[2]);
      status = 2;
    } else {
      status = do_settle(tracker, client, in);
      if (in != stdin) fclose(in);
    }
  } else {
    status = do_verify(tracker, client);
  }
  fotp_client_free(client);
  fotp_tracker_free(tracker);
  return status;
}
