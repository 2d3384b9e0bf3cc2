/* End-to-end tests of `axllama serve` (engine + supervisor + tokenizer service + Ollama API) on
 * axllama-emu (fast profile): streaming, exact token counts, KV reuse across turns, limits the
 * runtime lacks, every quirk path of docs/spec/runtime-protocol.md §7, faults, queueing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat_result.h"
#include "serve_harness.h"
#include "server_fixture.h"

/* A server with one model "m" (emulator args, extra manifest members, extra env). */
static void start(h_server *s, const char *const *emu_args, const char *extra, const char *const *env)
{
    start_model_m(s, emu_args, extra, env);
}

#define USER_TURN(text) "<|im_start|>user\n" text "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

static void test_chat_streams_ndjson_with_the_reply_and_exact_counts(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r =
        post(&s, "/api/chat", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello world\"}]}");
    assert_int_equal(r.http.status, 200);
    assert_non_null(strstr(r.http.headers.data, "application/x-ndjson"));
    assert_true(r.n >= 2); /* at least one piece and the final line */
    assert_done(&r, "stop");
    char *content = h_join(r.lines, r.n, "message", "content");
    assert_string_equal(content, "Hello world");
    free(content);
    for (size_t i = 0; i < r.n; i++)
        assert_string_equal(str(json_object_get(r.lines[i], "message"), "role"), "assistant");
    /* a reset: the system block is evaluated too */
    assert_int_equal(num(r.last, "prompt_eval_count"), h_n_ids(tok, H_QWEN_SYSTEM_BLOCK USER_TURN("Hello world")));
    /* the prompt closed the think block (thinking off): the model answers at once, the echo */
    assert_int_equal(num(r.last, "eval_count"), h_n_ids(tok, "Hello world"));
    assert_true(num(r.last, "total_duration") > 0);
    assert_true(num(r.last, "eval_duration") > 0);
    assert_true(num(r.last, "total_duration") >= num(r.last, "load_duration"));
    chat_free(&r);
    h_server_stop(&s);
}

/* The value after needle's last occurrence in the server log (-1 if none). */
static long logged_number(h_server *s, const char *needle)
{
    char *log = h_server_log(s);
    long value = -1;
    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle))
        value = strtol(p + strlen(needle), NULL, 10);
    free(log);
    return value;
}

/* A turn is driven by the runtime's decode calls, not by polling (docs/design.md): a 300-token
 * reply costs a handful of runtime calls over one kept-alive connection, and the emulator counts
 * the generate_provider calls it answered (the old 200 Hz poller made hundreds). */
static void test_a_turn_is_told_its_end_by_the_runtime_over_one_connection(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "300", NULL};
    const char *env[] = {"OLLAMA_DEBUG=1", NULL};
    start(&s, args, NULL, env);
    chat_result r = post(&s, "/api/chat",
                         "{\"model\":\"m\",\"stream\":false,\"keep_alive\":0,"
                         "\"messages\":[{\"role\":\"user\",\"content\":\"a long reply\"}]}");
    assert_int_equal(r.http.status, 200);
    assert_int_equal(num(r.last, "eval_count"), 300);
    chat_free(&r);
    assert_true(h_server_wait_log(&s, "emulator calls:", 10)); /* keep_alive 0: unloaded, its totals logged */
    char *log = h_server_log(&s);
    const char *turn = strstr(log, "[DEBUG] turn: reset, prefilled ");
    assert_non_null(turn);
    long prefilled, n_calls, n_connects;
    assert_int_equal(sscanf(turn, "[DEBUG] turn: reset, prefilled %ld, %ld runtime calls, %ld new connections",
                            &prefilled, &n_calls, &n_connects),
                     3);
    if (n_calls > 20 || n_connects > 1)
        fprintf(stderr, "%.160s\n%s\n", turn, strstr(log, "emulator calls"));
    /* reset, generate (retried while the reset prefills), a few polls: 100 pieces, ~16 calls */
    assert_true(n_calls <= 20);
    assert_true(n_connects <= 1); /* one connection for the whole turn */
    free(log);
    long provider = logged_number(&s, "generate_provider ");
    assert_true(provider >= 1);
    assert_true(provider <= 20); /* the supervisor's readiness probes at load, and the turn's few */
    h_server_stop(&s);
}

/* The runtime logs "[E] ... model not available" for each generate it refuses while a reset prefills
 * (expected: axllama asks until the prefill is over). Those lines are debug lines: hidden without
 * OLLAMA_DEBUG, marked [DEBUG] with it, never shown as the runtime's errors. */
static void test_busy_answers_during_a_reset_are_debug_lines(void **state)
{
    (void)state;
    h_server s;
    /* the Pi's pace at 1/5: the reset's prefill lasts ~270 ms, so the first generates are refused */
    const char *args[] = {"--emu-profile", "qwen3-4b-pi5", "--emu-time-scale", "0.2", "--emu-init-seconds", "0", NULL};
    const char *env[] = {"OLLAMA_DEBUG=1", NULL};
    start(&s, args, NULL, env);
    chat_result r = post(&s, "/api/chat",
                         "{\"model\":\"m\",\"stream\":false,\"keep_alive\":0,"
                         "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}");
    assert_int_equal(r.http.status, 200);
    chat_free(&r);
    assert_true(h_server_wait_log(&s, "emulator calls:", 10));
    char *log = h_server_log(&s);
    int busy_lines = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "model not available")) {
            busy_lines++;
            if (!strstr(line, "[DEBUG] runtime: "))
                fail_msg("a busy answer logged as an error: %s", line);
        }
    assert_true(busy_lines >= 1); /* the reset's prefill did refuse a generate */
    free(log);
    h_server_stop(&s);
}

static void test_second_turn_prefills_only_the_new_turn(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r1 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"First question\"}]}");
    assert_int_equal(r1.http.status, 200);
    assert_string_equal(str(json_object_get(r1.last, "message"), "content"), "First question");
    chat_result r2 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"First question\"},"
             "{\"role\":\"assistant\",\"content\":\"First question\"},{\"role\":\"user\",\"content\":\"Second\"}]}");
    assert_int_equal(r2.http.status, 200);
    assert_string_equal(str(json_object_get(r2.last, "message"), "content"), "Second");
    assert_int_equal(num(r2.last, "prompt_eval_count"), h_n_ids(tok, "<|im_end|>\n" USER_TURN("Second")));
    /* an edited history is not reused: the whole conversation is prefilled again */
    chat_result r3 =
        post(&s, "/api/chat",
             "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Other first\"},"
             "{\"role\":\"assistant\",\"content\":\"First question\"},{\"role\":\"user\",\"content\":\"Second\"}]}");
    assert_true(num(r3.last, "prompt_eval_count") > num(r2.last, "prompt_eval_count") + 10);
    chat_free(&r1);
    chat_free(&r2);
    chat_free(&r3);
    h_server_stop(&s);
}

static void test_generate_without_streaming_returns_one_object(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(&s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"Say this\",\"stream\":false}");
    assert_int_equal(r.http.status, 200);
    assert_int_equal(r.n, 1);
    assert_string_equal(str(r.last, "response"), "Say this");
    assert_done(&r, "stop");
    chat_free(&r);
    h_server_stop(&s);
}

static void test_stop_sequence_trims_the_reply_with_done_reason_stop(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(
        &s, "/api/generate",
        "{\"model\":\"m\",\"prompt\":\"alpha beta gamma delta\",\"stream\":false,\"options\":{\"stop\":[\"gamma\"]}}");
    assert_int_equal(r.http.status, 200);
    assert_string_equal(str(r.last, "response"), "alpha beta ");
    assert_done(&r, "stop");
    chat_free(&r);
    h_server_stop(&s);
}

static void test_num_predict_ends_the_reply_with_done_reason_length(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(&s, "/api/generate",
                         "{\"model\":\"m\",\"prompt\":\"one two three four five six seven\",\"stream\":false,"
                         "\"options\":{\"num_predict\":2}}");
    assert_int_equal(r.http.status, 200);
    assert_done(&r, "length");
    assert_int_equal(num(r.last, "eval_count"), 2);
    assert_string_equal(str(r.last, "response"), "one two"); /* "one", " two" */
    chat_free(&r);
    h_server_stop(&s);
}

static void test_multibyte_text_comes_out_whole(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(
        &s, "/api/chat",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\xAB\xA8 "
        "caf\xC3\xA9 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\"}]}");
    assert_int_equal(r.http.status, 200);
    char *content = h_join(r.lines, r.n, "message", "content");
    assert_string_equal(
        content, "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\xAB\xA8 caf\xC3\xA9 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9");
    free(content);
    chat_free(&r);
    h_server_stop(&s);
}

static void test_empty_prompt_loads_and_keep_alive_zero_unloads(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(&s, "/api/generate", "{\"model\":\"m\"}");
    assert_int_equal(r.http.status, 200);
    assert_done(&r, "load");
    h_http ps = h_srv(&s, "GET", "/api/ps", NULL);
    assert_non_null(strstr(ps.body.data, "\"m:latest\""));
    h_http_free(&ps);
    chat_result u = post(&s, "/api/generate", "{\"model\":\"m\",\"keep_alive\":0}");
    assert_done(&u, "unload");
    bool gone = false;
    for (double end = h_now() + 15; !gone && h_now() < end; h_sleep(0.05)) {
        ps = h_srv(&s, "GET", "/api/ps", NULL);
        gone = strstr(ps.body.data, "m:latest") == NULL;
        h_http_free(&ps);
    }
    assert_true(gone);
    chat_free(&r);
    chat_free(&u);
    h_server_stop(&s);
}

static void test_keep_alive_expiry_unloads_and_the_next_request_reloads(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r =
        post(&s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"x\",\"stream\":false,\"keep_alive\":\"1s\"}");
    assert_int_equal(r.http.status, 200);
    bool gone = false;
    for (double end = h_now() + 15; !gone && h_now() < end; h_sleep(0.1)) {
        h_http ps = h_srv(&s, "GET", "/api/ps", NULL);
        gone = strstr(ps.body.data, "m:latest") == NULL;
        h_http_free(&ps);
    }
    assert_true(gone);
    chat_result r2 = post(&s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"again\",\"stream\":false}");
    assert_int_equal(r2.http.status, 200);
    assert_string_equal(str(r2.last, "response"), "again");
    assert_true(num(r2.last, "load_duration") > num(r.last, "load_duration") / 100); /* it loaded again */
    chat_free(&r);
    chat_free(&r2);
    h_server_stop(&s);
}

typedef struct {
    h_server *s;
    const char *body;
    chat_result r;
    double t_done;
} request_thread;

static void *run_request(void *arg)
{
    request_thread *t = arg;
    t->r = post(t->s, "/api/generate", t->body);
    t->t_done = h_now();
    return NULL;
}

/* Waits until /api/ps shows needle (the engine's own account: no pause that hopes). */
static bool wait_ps(h_server *s, const char *needle, double timeout_s)
{
    bool seen = false;
    for (double end = h_now() + timeout_s; !seen && h_now() < end; h_sleep(0.01)) {
        h_http r = h_srv(s, "GET", "/api/ps", NULL);
        seen = r.body.data && strstr(r.body.data, needle);
        h_http_free(&r);
    }
    return seen;
}

static void test_a_full_queue_answers_503_with_ollamas_message(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "600", NULL}; /* ~1.2 s per reply */
    const char *env[] = {"OLLAMA_MAX_QUEUE=1", NULL};
    start(&s, args, NULL, env);
    request_thread t[2] = {{.s = &s, .body = "{\"model\":\"m\",\"prompt\":\"a\",\"stream\":false}"},
                           {.s = &s, .body = "{\"model\":\"m\",\"prompt\":\"b\",\"stream\":false}"}};
    pthread_t th[2];
    pthread_create(&th[0], NULL, run_request, &t[0]);
    assert_true(wait_ps(&s, "\"running\":true", 10)); /* the first runs */
    pthread_create(&th[1], NULL, run_request, &t[1]);
    assert_true(wait_ps(&s, "\"queued\":1", 10)); /* the second waits in the queue */
    chat_result third = post(&s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"c\"}");
    assert_int_equal(third.http.status, 503);
    assert_string_equal(third.http.body.data,
                        "{\"error\":\"server busy, please try again.  maximum pending requests exceeded\"}");
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].r.http.status, 200);
        chat_free(&t[i].r);
    }
    chat_free(&third);
    h_server_stop(&s);
}

static void test_concurrent_clients_are_served_in_arrival_order(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "100", NULL};
    start(&s, args, NULL, NULL);
    request_thread t[3] = {{.s = &s, .body = "{\"model\":\"m\",\"prompt\":\"one\",\"stream\":false}"},
                           {.s = &s, .body = "{\"model\":\"m\",\"prompt\":\"two\",\"stream\":false}"},
                           {.s = &s, .body = "{\"model\":\"m\",\"prompt\":\"three\",\"stream\":false}"}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&th[i], NULL, run_request, &t[i]);
        h_sleep(0.05);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    const char *want[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i].r.http.status, 200);
        assert_true(strncmp(str(t[i].r.last, "response"), want[i], strlen(want[i])) == 0);
        if (i)
            assert_true(t[i].t_done > t[i - 1].t_done);
        chat_free(&t[i].r);
    }
    h_server_stop(&s);
}

/* Reads the stream until first_line bytes arrived, then hangs up. */
static size_t abort_after_first_line(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    int *lines = user;
    (*lines)++;
    return *lines >= 2 ? 0 : size * n; /* returning less than given makes curl abort */
}

static void test_a_client_that_leaves_cancels_its_job_and_the_next_starts_at_once(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "3000", NULL}; /* ~6 s if not stopped */
    start(&s, args, NULL, NULL);
    CURL *c = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/generate", s.port);
    int lines = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"model\":\"m\",\"prompt\":\"long long reply\"}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after_first_line);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &lines);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    double t0 = h_now();
    chat_result r = post(&s, "/api/generate",
                         "{\"model\":\"m\",\"prompt\":\"next\",\"stream\":false,\"options\":{\"num_predict\":1}}");
    double took = h_now() - t0;
    assert_int_equal(r.http.status, 200);
    assert_true(took < 3.0);                              /* the abandoned 6-second reply was stopped */
    assert_string_equal(str(r.last, "response"), "next"); /* no stale text from the stopped reply */
    chat_free(&r);
    h_server_stop(&s);
}

/* The runtime forgets a stop that lands while the generate is only queued (§2.7): the engine
 * repeats it until the run ends, so an abandoned reply does not run to its end. */
static void test_a_stop_sent_before_the_run_starts_is_repeated_until_it_takes(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "3000", "--emu-dispatch-delay", "0.4", NULL}; /* ~6 s */
    start(&s, args, NULL, NULL);
    chat_result load = post(&s, "/api/generate", "{\"model\":\"m\"}");
    assert_int_equal(load.http.status, 200);
    chat_free(&load);
    CURL *c = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/generate", s.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"model\":\"m\",\"prompt\":\"a reply nobody reads\"}");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 150L); /* leaves while the tasks are only queued */
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    double t0 = h_now();
    chat_result r = post(&s, "/api/generate",
                         "{\"model\":\"m\",\"prompt\":\"next\",\"stream\":false,\"options\":{\"num_predict\":1}}");
    double took = h_now() - t0;
    assert_int_equal(r.http.status, 200);
    assert_string_equal(str(r.last, "response"), "next");
    assert_true(took < 4.0); /* the abandoned 6-second reply was stopped once it started */
    chat_free(&r);
    h_server_stop(&s);
}

/* The older build's context-full wedge (§1.4): busy forever, done:false forever, no decode call.
 * done:false is no progress, so the turn fails after the stall timeout instead of hanging. */
static void test_a_wedged_runtime_fails_the_turn_after_the_stall_timeout(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-context-full-wedge", "1", "--emu-prefill-max", "256", NULL};
    const char *env[] = {"AXLLAMA_STALL_TIMEOUT=3", NULL};
    start(&s, args, NULL, env);
    strbuf body = {0};
    sb_puts(&body, "{\"model\":\"m\",\"stream\":false,\"prompt\":\"");
    for (int i = 0; i < 400; i++)
        sb_puts(&body, "word ");
    sb_puts(&body, "\"}");
    double t0 = h_now();
    chat_result r = post(&s, "/api/generate", body.data);
    double took = h_now() - t0;
    assert_int_equal(r.http.status, 500);
    assert_non_null(strstr(r.http.body.data, "stopped answering"));
    assert_true(took < 30.0);
    chat_free(&r);
    sb_free(&body);
    h_server_stop(&s);
}

/* At the context end the runtime does not stream its 1-2 leftover ids (§2.6); they come with the
 * final decode and must reach the reply. */
static void test_the_last_ids_at_the_context_end_reach_the_reply(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "400", "--emu-max-token-len", "300", "--emu-prefill-max", "256", NULL};
    start(&s, args, "\"context\": {\"max_prefill\": 256, \"max_positions\": 300}", NULL);
    const char *words = "a b c d e f g h i j";
    chat_result r = post(&s, "/api/generate", "{\"model\":\"m\",\"stream\":false,\"prompt\":\"a b c d e f g h i j\"}");
    assert_int_equal(r.http.status, 200);
    assert_done(&r, "length");
    long n = num(r.last, "eval_count");
    assert_true(n > 10);
    /* the reply: the echo's ids cycled (the prompt closed the think block) */
    idvec echo = {0}, reply = {0};
    tokenizer_encode(tok, words, strlen(words), &echo);
    for (long i = 0; i < n; i++)
        iv_push(&reply, echo.v[(size_t)i % echo.len]);
    strbuf want = {0};
    assert_true(tokenizer_decode(tok, reply.v, reply.len, &want));
    assert_string_equal(str(r.last, "response"), want.data);
    sb_free(&want);
    iv_free(&echo);
    iv_free(&reply);
    chat_free(&r);
    h_server_stop(&s);
}

static void test_a_runtime_crash_mid_stream_gives_an_error_line_and_a_restart(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "3000", NULL};
    start(&s, args, NULL, NULL);
    chat_result load = post(&s, "/api/generate", "{\"model\":\"m\"}");
    pid_t rt = h_runtime_pid(&s);
    assert_true(rt > 0);
    stream_request t = {.s = &s, .path = "/api/generate", .body = "{\"model\":\"m\",\"prompt\":\"doomed reply\"}"};
    pthread_t th;
    pthread_create(&th, NULL, stream_request_run, &t);
    assert_true(stream_request_wait_streaming(&t, 30)); /* the reply is under way */
    kill(rt, SIGKILL);
    pthread_join(th, NULL);
    if (t.r.http.status != 200)
        fprintf(stderr, "answer %ld: %s\n", t.r.http.status, t.r.http.body.data);
    assert_int_equal(t.r.http.status, 200);
    assert_true(t.r.n >= 2);
    assert_non_null(json_object_get(t.r.last, "error")); /* an error line, not done:true */
    assert_null(json_object_get(t.r.last, "done_reason"));
    chat_result after = post(&s, "/api/generate",
                             "{\"model\":\"m\",\"prompt\":\"alive\",\"stream\":false,\"options\":{\"num_predict\":1}}");
    if (after.http.status != 200)
        fprintf(stderr, "answer %ld: %s\n", after.http.status, after.http.body.data);
    assert_int_equal(after.http.status, 200);
    assert_string_equal(str(after.last, "response"), "alive");
    pid_t rt2 = h_runtime_pid(&s);
    assert_true(rt2 > 0 && rt2 != rt);
    chat_free(&load);
    chat_free(&t.r);
    chat_free(&after);
    h_server_stop(&s);
}

static void test_a_slow_load_shows_progress_in_ps_and_counts_in_load_duration(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-init-seconds", "1.5", "--axmodel_num", "10", NULL};
    start(&s, args, NULL, NULL);
    request_thread t = {.s = &s, .body = "{\"model\":\"m\",\"prompt\":\"after load\",\"stream\":false}"};
    pthread_t th;
    pthread_create(&th, NULL, run_request, &t);
    bool saw_loading = false;
    for (double end = h_now() + 5; !saw_loading && h_now() < end; h_sleep(0.05)) {
        h_http ps = h_srv(&s, "GET", "/api/ps", NULL);
        saw_loading = strstr(ps.body.data, "loading") != NULL && strstr(ps.body.data, "/13") != NULL;
        h_http_free(&ps);
    }
    pthread_join(th, NULL);
    assert_true(saw_loading);
    assert_int_equal(t.r.http.status, 200);
    assert_string_equal(str(t.r.last, "response"), "after load");
    assert_true(num(t.r.last, "load_duration") >= 1400000000L);
    chat_free(&t.r);
    h_server_stop(&s);
}

static char *many_words(int n)
{
    strbuf sb = {0};
    for (int i = 0; i < n; i++)
        sb_puts(&sb, " apple");
    return sb_steal(&sb);
}

static void test_a_long_history_is_fitted_by_dropping_old_turns(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    char *big = many_words(1000); /* two of them do not fit in 1920 */
    strbuf body = {0};
    sb_printf(&body,
              "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":8},\"messages\":[{\"role\":\"user\","
              "\"content\":\"%s\"},"
              "{\"role\":\"assistant\",\"content\":\"%s\"},{\"role\":\"user\",\"content\":\"short question\"}]}",
              big, big);
    chat_result r = post(&s, "/api/chat", body.data);
    assert_int_equal(r.http.status, 200);
    assert_string_equal(str(json_object_get(r.last, "message"), "content"), "short question");
    assert_int_equal(num(r.last, "prompt_eval_count"), h_n_ids(tok, H_QWEN_SYSTEM_BLOCK USER_TURN("short question")));
    chat_free(&r);
    sb_free(&body);
    free(big);
    h_server_stop(&s);
}

static void test_a_context_full_answer_resets_and_retries_once(void **state)
{
    (void)state;
    h_server s;
    /* the manifest claims 1024 tokens of prefill, the runtime takes 512: the runtime, not axllama,
     * finds the second turn too long */
    const char *args[] = {"--emu-prefill-max", "512", "--emu-max-token-len", "1279", "--emu-reply-tokens", "480", NULL};
    start(&s, args, "\"context\": {\"max_prefill\": 1024, \"max_positions\": 1279}", NULL);
    chat_result r1 = post(&s, "/api/chat",
                          "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_int_equal(r1.http.status, 200);
    const char *reply = str(json_object_get(r1.last, "message"), "content");
    strbuf body = {0};
    json_t *req =
        json_pack("{s:s,s:b,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "model", "m", "stream", 0, "messages", "role", "user",
                  "content", "Hi", "role", "assistant", "content", reply, "role", "user", "content", "Second turn");
    char *text = json_dumps(req, JSON_COMPACT);
    chat_result r2 = post(&s, "/api/chat", text);
    assert_int_equal(r2.http.status, 200);
    const char *content = str(json_object_get(r2.last, "message"), "content");
    assert_null(strstr(content, "SetKVCache"));
    assert_true(strncmp(content, "Second turn", 11) == 0);
    char *log = h_server_log(&s);
    assert_non_null(strstr(log, "full context"));
    free(log);
    free(text);
    json_decref(req);
    sb_free(&body);
    chat_free(&r1);
    chat_free(&r2);
    h_server_stop(&s);
}

static void test_slow_dispatch_races_still_give_each_turn_its_own_reply(void **state)
{
    (void)state;
    h_server s;
    /* the worker picks tasks up 50 ms late: done:true while queued, a reset still queued when the
     * generate arrives */
    const char *args[] = {"--emu-dispatch-delay", "0.05", NULL};
    start(&s, args, NULL, NULL);
    const char *prompts[] = {"first", "second", "third"};
    for (int i = 0; i < 3; i++) {
        strbuf body = {0};
        sb_printf(&body, "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                  prompts[i]);
        chat_result r = post(&s, "/api/chat", body.data);
        assert_int_equal(r.http.status, 200);
        assert_string_equal(str(json_object_get(r.last, "message"), "content"), prompts[i]);
        chat_free(&r);
        sb_free(&body);
    }
    h_server_stop(&s);
}

static void test_sigterm_stops_the_server_and_leaves_no_runtime(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(&s, "/api/generate", "{\"model\":\"m\"}");
    pid_t rt = h_runtime_pid(&s);
    assert_true(rt > 0);
    int status = h_server_stop(&s);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(kill(rt, 0) == -1);
    chat_free(&r);
}

static void test_unknown_model_and_bad_requests_get_ollamas_errors(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    chat_result r = post(&s, "/api/chat", "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.http.status, 404);
    assert_string_equal(r.http.body.data, "{\"error\":\"model 'nope' not found\"}");
    chat_free(&r);
    r = post(&s, "/api/chat", "");
    assert_int_equal(r.http.status, 400);
    assert_string_equal(r.http.body.data, "{\"error\":\"missing request body\"}");
    chat_free(&r);
    r = post(&s, "/api/generate", "{bad json");
    assert_int_equal(r.http.status, 400);
    chat_free(&r);
    h_server_stop(&s);
}

int main(int argc, char **argv)
{
    if (argc > 1) /* run the tests whose names contain argv[1] */
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_chat_streams_ndjson_with_the_reply_and_exact_counts, stop_current),
        cmocka_unit_test_teardown(test_second_turn_prefills_only_the_new_turn, stop_current),
        cmocka_unit_test_teardown(test_a_turn_is_told_its_end_by_the_runtime_over_one_connection, stop_current),
        cmocka_unit_test_teardown(test_busy_answers_during_a_reset_are_debug_lines, stop_current),
        cmocka_unit_test_teardown(test_generate_without_streaming_returns_one_object, stop_current),
        cmocka_unit_test_teardown(test_stop_sequence_trims_the_reply_with_done_reason_stop, stop_current),
        cmocka_unit_test_teardown(test_num_predict_ends_the_reply_with_done_reason_length, stop_current),
        cmocka_unit_test_teardown(test_multibyte_text_comes_out_whole, stop_current),
        cmocka_unit_test_teardown(test_empty_prompt_loads_and_keep_alive_zero_unloads, stop_current),
        cmocka_unit_test_teardown(test_keep_alive_expiry_unloads_and_the_next_request_reloads, stop_current),
        cmocka_unit_test_teardown(test_a_full_queue_answers_503_with_ollamas_message, stop_current),
        cmocka_unit_test_teardown(test_concurrent_clients_are_served_in_arrival_order, stop_current),
        cmocka_unit_test_teardown(test_a_client_that_leaves_cancels_its_job_and_the_next_starts_at_once, stop_current),
        cmocka_unit_test_teardown(test_a_stop_sent_before_the_run_starts_is_repeated_until_it_takes, stop_current),
        cmocka_unit_test_teardown(test_a_wedged_runtime_fails_the_turn_after_the_stall_timeout, stop_current),
        cmocka_unit_test_teardown(test_the_last_ids_at_the_context_end_reach_the_reply, stop_current),
        cmocka_unit_test_teardown(test_a_runtime_crash_mid_stream_gives_an_error_line_and_a_restart, stop_current),
        cmocka_unit_test_teardown(test_a_slow_load_shows_progress_in_ps_and_counts_in_load_duration, stop_current),
        cmocka_unit_test_teardown(test_a_long_history_is_fitted_by_dropping_old_turns, stop_current),
        cmocka_unit_test_teardown(test_a_context_full_answer_resets_and_retries_once, stop_current),
        cmocka_unit_test_teardown(test_slow_dispatch_races_still_give_each_turn_its_own_reply, stop_current),
        cmocka_unit_test_teardown(test_sigterm_stops_the_server_and_leaves_no_runtime, stop_current),
        cmocka_unit_test_teardown(test_unknown_model_and_bad_requests_get_ollamas_errors, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
