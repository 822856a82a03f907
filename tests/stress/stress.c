/* Stress test of the C ABI: many threads share one client, mixing callback parsing with
 * verify/query against the sandbox (FOTP_BASE_URL, FOTP_APP_ID, FOTP_APP_SECRET), then checks
 * that memory stays flat across a million parse calls.
 *
 * usage: stress THREADS CALLS_PER_THREAD PARSE_CALLS
 * Every check that fails prints why and makes the program exit 1. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fotp.h"

static const char SEED[] =
    "{\"sendTime\":\"2025-05-15 11:23:34\",\"code\":\"5776\",\"sender\":\"1008611\","
    "\"mobile\":\"8615711666132\",\"content\":\"\\ud83d\\udd10 Key: ##FG5x-5776##\\n\","
    "\"deliverTime\":\"2025-05-15 11:24:24\"}";

static fotp_client *client;
static long calls_per_thread;
static int failures;
static pthread_mutex_t failures_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, fotp_error *err) {
  pthread_mutex_lock(&failures_lock);
  failures++;
  if (failures <= 10)
    fprintf(stderr, "FAIL %s: %s\n", what, err ? fotp_error_message(err) : "(no error)");
  pthread_mutex_unlock(&failures_lock);
}

static int parse_once(void) {
  fotp_callback *cb = NULL;
  fotp_error *err = fotp_callback_parse((const uint8_t *)SEED, sizeof SEED - 1, &cb);
  if (err) {
    fail("parse", err);
    fotp_error_free(err);
    return 0;
  }
  int ok = strcmp(fotp_callback_code(cb), "5776") == 0 && fotp_callback_err(cb) == NULL &&
           strcmp(fotp_callback_mobile(cb), "8615711666132") == 0;
  fotp_callback_free(cb);
  if (!ok) fail("parsed fields", NULL);
  return ok;
}

static void verify_and_query(void) {
  fotp_verification *v = NULL;
  fotp_error *err = fotp_verify(client, "2", NULL, 0, &v);
  if (err) {
    fail("verify", err);
    fotp_error_free(err);
    return;
  }
  fotp_query_result *r = NULL;
  err = fotp_query(client, fotp_verification_ft_token(v), &r);
  if (err) {
    fail("query", err);
    fotp_error_free(err);
  } else {
    if (fotp_query_result_status(r) != FOTP_STATUS_PROCESSING) fail("fresh session status", NULL);
    fotp_query_result_free(r);
  }
  fotp_verification_free(v);
}

static void bad_input(void) {
  fotp_verification *v = NULL;
  fotp_error *err = fotp_verify(client, "2", "12", 0, &v);
  if (!err || fotp_error_kind(err) != FOTP_ERROR_INVALID_ARGUMENT || v != NULL)
    fail("bad code accepted", err);
  fotp_error_free(err);
}

static void *worker(void *arg) {
  long id = (long)arg;
  for (long i = 0; i < calls_per_thread; i++) {
    switch ((i + id) % 8) {
      case 0: verify_and_query(); break;
      case 1: bad_input(); break;
      default: parse_once(); break;
    }
  }
  return NULL;
}

static long rss_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s THREADS CALLS_PER_THREAD PARSE_CALLS\n", argv[0]);
    return 2;
  }
  long threads = atol(argv[1]);
  calls_per_thread = atol(argv[2]);
  long parse_calls = atol(argv[3]);
  if (threads < 1 || threads > 256) return 2;

  fotp_config *cfg = NULL;
  fotp_error *err = fotp_config_from_env(&cfg);
  if (!err) err = fotp_client_new(cfg, &client);
  fotp_config_free(cfg);
  if (err) {
    fprintf(stderr, "setup: %s\n", fotp_error_message(err));
    fotp_error_free(err);
    return 1;
  }

  pthread_t tids[256];
  for (long t = 0; t < threads; t++) pthread_create(&tids[t], NULL, worker, (void *)t);
  for (long t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  printf("threads: %ld x %ld mixed calls done\n", threads, calls_per_thread);

  if (parse_calls > 0) {
    long warm = parse_calls / 10;
    for (long i = 0; i < warm; i++) parse_once();
    long before = rss_kib();
    for (long i = warm; i < parse_calls; i++) parse_once();
    long after = rss_kib();
    printf("rss: %ld KiB after %ld parses, %ld KiB after %ld\n", before, warm, after, parse_calls);
    if (before < 0 || after - before > 1024) fail("RSS grew by more than 1 MiB", NULL);
  }

  fotp_client_free(client);
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("stress: ok\n");
  return 0;
}
