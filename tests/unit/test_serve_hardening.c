/* End-to-end regression tests of issue 9 (hardening) on `axllama serve` with axllama-emu (fast profile):
 *   1-3. num_predict 0 and fractions end with done; a runtime that stops answering (SIGSTOP) idle or
 *        mid-stream is killed by the liveness probe and restarted, the client gets an error line
 *        within seconds; a crash loop answers a queued request 503 with a retry time;
 *   4. a flood of GET /get_uid on the tokenizer service leaves the runtime's uid alone, the service
 *      refuses web pages and other hosts, and a runtime whose uid is unknown fails fast and reloads;
 *   5. the connection limits and a slowloris of 3,000 connections while a client is served;
 *   6. the named limits (body, bytes held, stop sequences, tools) and huge prompts;
 *   7. JSON that Go accepts (an escaped NUL, a lone surrogate);
 *   8. /v1 message fields of the wrong type;
 *   9. the Host header checks on the API. */
/* cmocka.h needs these first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>
#include <stdatomic.h>

/* the harness first: the others use it */
/* clang-format off */
#include "serve_harness.h"
#include "server_fixture.h"
#include "chat_result.h"
#include "proc_watch.h"
#include "raw_http.h"
/* clang-format on */

/* A server with one model "m" (emulator args, extra manifest members, extra env). */
static void start(h_server *s, const char *const *emu_args, const char *extra, const char *const *env)
{
    h_server_dir(s);
    h_write_manifest(s->dir, "m", emu_args, extra);
    bool started = h_server_start(s, env);
    current = *s;
    if (!started) {
        char *log = h_server_log(s);
        fprintf(stderr, "server did not start:\n%s\n", log);
        free(log);
        fail();
    }
}

static void load(h_server *s)
{
    chat_result r = post(s, "/api/generate", "{\"model\":\"m\"}");
    assert_int_equal(r.http.status, 200);
    chat_free(&r);
}

/* A short chat that must succeed; returns how long it took. */
static double chat_ok(h_server *s, const char *text)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":8},\"messages\":[{\"role\":\"user\","
             "\"content\":\"%s\"}]}",
             text);
    double t0 = h_now();
    chat_result r = post(s, "/api/chat", body);
    double took = h_now() - t0;
    if (r.http.status != 200 || !r.last || !json_is_true(json_object_get(r.last, "done"))) {
        char *log = h_server_log(s);
        fprintf(stderr, "chat failed: %ld %s\nserver log:\n%s\n", r.http.status, r.http.body.data, log);
        free(log);
        fail();
    }
    chat_free(&r);
    return took;
}

static const char *ps_state(h_server *s, char *out, size_t n)
{
    h_http ps = h_srv(s, "GET", "/api/ps", NULL);
    json_t *v = json_loads(ps.body.data, 0, NULL);
    json_t *m = json_array_get(json_object_get(v, "models"), 0);
    snprintf(out, n, "%s", m ? json_string_value(json_object_get(json_object_get(m, "axllama"), "state")) : "none");
    json_decref(v);
    h_http_free(&ps);
    return out;
}

/* ================================================================== 1-3: the fixed defects */

static void test_num_predict_zero_and_fractions_end_with_done(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    const char *bodies[] = {
        "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":0},\"messages\":[{\"role\":\"user\","
        "\"content\":\"hello there\"}]}",
        "{\"model\":\"m\",\"stream\":false,\"options\":{\"num_predict\":0.5},\"messages\":[{\"role\":\"user\","
        "\"content\":\"hello there\"}]}",
        "{\"model\":\"m\",\"options\":{\"num_predict\":0},\"prompt\":\"hello there\"}",
        "{\"model\":\"m\",\"options\":{\"num_predict\":0.5},\"prompt\":\"hello there\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        chat_result r = post(&s, strstr(bodies[i], "messages") ? "/api/chat" : "/api/generate", bodies[i]);
        if (r.http.status != 200 || !r.last || !json_is_true(json_object_get(r.last, "done")))
            fail_msg("%s: %ld %s", bodies[i], r.http.status, r.http.body.data);
        chat_free(&r);
        h_http v = h_srv(&s, "GET", "/api/version", NULL); /* still answering */
        assert_int_equal(v.status, 200);
        h_http_free(&v);
    }
    chat_ok(&s, "after");
    h_server_stop(&s);
}

static const char *const fast_probe_env[] = {"AXLLAMA_RUNTIME_PROBE=0.2s", NULL};

static void test_a_runtime_stopped_while_idle_is_restarted(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, fast_probe_env);
    load(&s);
    pid_t rt = h_runtime_pid(&s);
    assert_true(rt > 0);
    kill(rt, SIGSTOP);
    double t0 = h_now();
    bool saw_restart = false, ready_again = false;
    char st[32];
    while (!ready_again && h_now() - t0 < 20) {
        ps_state(&s, st, sizeof st);
        saw_restart |= !strcmp(st, "restarting") || !strcmp(st, "loading");
        pid_t now = h_runtime_pid(&s);
        ready_again = saw_restart && !strcmp(st, "ready") && now > 0 && now != rt;
        h_sleep(0.05);
    }
    double recovered = h_now() - t0;
    kill(rt, SIGCONT); /* reaped already if it was killed */
    assert_true(saw_restart);
    assert_true(ready_again);
    printf("a runtime stopped while idle: ready again after %.1f s\n", recovered);
    assert_true(recovered < 15);
    chat_ok(&s, "next");
    assert_int_equal(pw_zombies(s.pid), 0);
    h_server_stop(&s);
}

static void test_a_runtime_stopped_mid_stream_ends_the_stream_with_an_error_line(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "3000", NULL}; /* ~6 s of reply */
    start(&s, args, NULL, fast_probe_env);
    load(&s);
    pid_t rt = h_runtime_pid(&s);
    pw_stream st;
    pw_stream_start(&st, s.port, "/api/chat",
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a long reply\"}]}", 60);
    assert_true(pw_stream_wait_first(&st, 10));
    kill(rt, SIGSTOP);
    double stopped = h_now();
    pw_stream_join(&st);
    kill(rt, SIGCONT);
    double ended_after = st.t_end - stopped;
    printf("a runtime stopped mid-stream: the stream ended %.1f s later\n", ended_after);
    assert_int_equal(st.status, 200);
    json_t *last = pw_last_line(&st.got);
    assert_non_null(last);
    assert_non_null(json_object_get(last, "error"));
    json_decref(last);
    assert_true(ended_after < 10);
    pw_stream_free(&st);
    chat_ok(&s, "next");
    h_server_stop(&s);
}

/* The runtime aborts at the first reply token of every start: crash after crash the back-off doubles
 * (1, 2, 4, 8 s); a request that finds the next start more than a few seconds away gets a retryable 503
 * instead of waiting for it. */
static void test_a_crash_loop_answers_503_with_when_to_retry(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-crash-at", "2", NULL};
    start(&s, args, NULL, NULL);
    load(&s);
    bool got_503 = false;
    for (int i = 0; i < 8 && !got_503; i++) {
        double t0 = h_now();
        chat_result r = post(&s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"crash\",\"stream\":false}");
        double took = h_now() - t0;
        if (r.http.status == 503) {
            got_503 = true;
            assert_non_null(strstr(r.http.body.data, "restarting after a failure"));
            assert_non_null(strstr(r.http.body.data, "try again"));
            assert_true(took < 2.0); /* answered at once, not after the back-off */
        } else {
            assert_int_equal(r.http.status, 500); /* the crash */
        }
        chat_free(&r);
    }
    assert_true(got_503);
    h_server_stop(&s);
}

/* ================================================================== 4: the tokenizer service */

/* count GET /get_uid calls on one kept-alive connection; returns how many answered 200. */
static int flood_get_uid(int port, int count)
{
    CURL *c = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/get_uid", port);
    strbuf sink = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    int ok = 0;
    for (int i = 0; i < count; i++) {
        long status = 0;
        sb_clear(&sink);
        if (curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status == 200)
            ok++;
    }
    curl_easy_cleanup(c);
    sb_free(&sink);
    return ok;
}

static void test_a_get_uid_flood_leaves_the_runtimes_uid_alone(void **state)
{
    (void)state;
    h_server s;
    const char *env[] = {"AXLLAMA_STALL_TIMEOUT=30", NULL};
    start(&s, NULL, NULL, env);
    chat_ok(&s, "before");
    int port = pw_tokenizer_port(h_runtime_pid(&s));
    assert_true(port > 0);
    assert_int_equal(flood_get_uid(port, 4097 + 100), 4097 + 100); /* more than the service keeps */
    double took = chat_ok(&s, "after the flood");
    printf("after 4,197 GET /get_uid: the next chat took %.2f s\n", took);
    assert_true(took < 5);
    h_server_stop(&s);
}

static void test_the_tokenizer_service_refuses_web_pages_and_other_hosts(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    load(&s);
    int port = pw_tokenizer_port(h_runtime_pid(&s));
    char req[256];
    snprintf(req, sizeof req, "GET /get_uid HTTP/1.1\r\nHost: evil.example:%d\r\nConnection: close\r\n\r\n", port);
    char *a = raw_exchange_from(NULL, port, req);
    assert_int_equal(raw_status(a), 403);
    free(a);
    snprintf(req, sizeof req,
             "GET /get_uid HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
             port);
    a = raw_exchange_from(NULL, port, req);
    assert_int_equal(raw_status(a), 403);
    free(a);
    chat_ok(&s, "the runtime itself is served");
    h_server_stop(&s);
}

/* A runtime started through this script waits a second before it runs axllama-emu, after writing
 * its arguments where the test reads them: the test takes the first uid of that start itself (the
 * engine pins it as the runtime's), so the runtime's real uid is an ordinary one that a flood evicts.
 * The runtime's next turn meets an unknown uid: the turn fails at once and the model is reloaded. */
static void write_slow_start_manifest(h_server *s, char *args_file, size_t n)
{
    snprintf(args_file, n, "%s/runtime-args", s->dir);
    char script[256], path[256];
    snprintf(script, sizeof script, "%s/slow-start.sh", s->dir);
    FILE *f = fopen(script, "w");
    fprintf(f, "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s.tmp && mv %s.tmp %s\nsleep 1\nexec %s/axllama-emu \"$@\"\n",
            args_file, args_file, args_file, h_build_dir());
    fclose(f);
    chmod(script, 0755);
    snprintf(path, sizeof path, "%s/m.json", s->dir);
    f = fopen(path, "w");
    fprintf(f,
            "{\"name\": \"m\", \"runtime\": {\"binary\": \"%s\", \"args\": [\"--emu-profile\", \"fast\", "
            "\"--emu-port\", \"{port}\"], \"port\": 0, \"devices\": \"0\", \"load_timeout\": 20}, \"tokenizer\": "
            "\"%s\", \"tokenizer_port\": 0}\n",
            script, getenv("AXLLAMA_TOKENIZER_DIR"));
    fclose(f);
}

/* The tokenizer port from the arguments the slow-start script wrote (0 until it wrote them). */
static int slow_start_tokenizer_port(const char *args_file)
{
    FILE *f = fopen(args_file, "r");
    if (!f)
        return 0;
    char line[512];
    int port = 0;
    bool next = false;
    while (fgets(line, sizeof line, f)) {
        if (next) {
            const char *colon = strrchr(line, ':');
            port = colon ? atoi(colon + 1) : 0;
            break;
        }
        next = !strncmp(line, "--url_tokenizer_model", 21);
    }
    fclose(f);
    return port;
}

typedef struct {
    h_server *s;
    chat_result r;
} load_thread;

static void *load_main(void *arg)
{
    load_thread *t = arg;
    t->r = post(t->s, "/api/generate", "{\"model\":\"m\"}");
    return NULL;
}

static void test_a_runtime_whose_uid_is_unknown_fails_fast_and_reloads(void **state)
{
    (void)state;
    h_server s;
    h_server_dir(&s);
    char args_file[128];
    write_slow_start_manifest(&s, args_file, sizeof args_file);
    const char *env[] = {"AXLLAMA_STALL_TIMEOUT=60", NULL};
    bool started = h_server_start(&s, env);
    current = s;
    assert_true(started);
    load_thread lt = {.s = &s};
    pthread_t th;
    pthread_create(&th, NULL, load_main, &lt);
    int port = 0;
    for (double end = h_now() + 10; !port && h_now() < end; h_sleep(0.01))
        port = slow_start_tokenizer_port(args_file);
    assert_true(port > 0);
    assert_int_equal(flood_get_uid(port, 1), 1); /* before the runtime's own: taken as the runtime's */
    pthread_join(th, NULL);
    assert_int_equal(lt.r.http.status, 200);
    chat_free(&lt.r);
    assert_int_equal(flood_get_uid(port, 4200), 4200); /* the runtime's real uid is evicted */
    double t0 = h_now();
    chat_result r = post(&s, "/api/chat",
                         "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    double took = h_now() - t0;
    printf("a turn on an unknown uid failed after %.2f s\n", took);
    if (r.http.status != 500 || !strstr(r.http.body.data, "tokenizer service lost")) {
        char *log = h_server_log(&s);
        fail_msg("expected the lost-uid failure, got %ld %s\n%s", r.http.status, r.http.body.data, log);
    }
    assert_true(took < 5); /* not the 60 s stall timeout */
    chat_free(&r);
    double reload = chat_ok(&s, "reloaded"); /* a new runtime, a new uid */
    printf("the next chat (with the reload) took %.2f s\n", reload);
    h_server_stop(&s);
}

/* ================================================================== 5: connections */

static void test_the_per_address_connection_limit_is_configurable(void **state)
{
    (void)state;
    h_server s;
    const char *env[] = {"AXLLAMA_MAX_CONNECTIONS_PER_IP=3", NULL};
    start(&s, NULL, NULL, env);
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = raw_connect_from("127.0.0.2", s.port);
    h_sleep(0.2);
    int extra = raw_connect_from("127.0.0.2", s.port);
    assert_true(raw_closed_within(extra, 2.0));
    close(extra);
    chat_ok(&s, "another address is served");
    for (int i = 0; i < 3; i++)
        close(held[i]);
    h_server_stop(&s);
}

#define SLOWLORIS 3000

typedef struct {
    int port;
    atomic_int opened;
    int fds[SLOWLORIS];
} slowloris;

static void *slowloris_main(void *arg)
{
    slowloris *sl = arg;
    for (int i = 0; i < SLOWLORIS; i++) {
        sl->fds[i] = raw_connect_from("127.0.0.2", sl->port);
        if (sl->fds[i] >= 0)
            raw_send(sl->fds[i], "POST /api/chat HTTP/1.1\r\nHost: localhost\r\n", 42);
        atomic_fetch_add(&sl->opened, 1);
    }
    return NULL;
}

static void test_a_slowloris_of_3000_connections_leaves_a_client_served(void **state)
{
    (void)state;
    raw_allow_fds(SLOWLORIS + 1024);
    h_server s;
    start(&s, NULL, NULL, NULL);
    load(&s);
    double quiet = chat_ok(&s, "before");
    slowloris *sl = xcalloc(1, sizeof *sl);
    sl->port = s.port;
    pthread_t th;
    pthread_create(&th, NULL, slowloris_main, sl);
    double worst = 0, sum = 0;
    int served = 0;
    while (atomic_load(&sl->opened) < SLOWLORIS || served < 10) {
        double took = chat_ok(&s, "during");
        sum += took;
        served++;
        if (took > worst)
            worst = took;
    }
    pthread_join(th, NULL);
    size_t threads = pw_threads(s.pid);
    long rss = pw_status_kb(s.pid, "VmRSS");
    printf("slowloris of %d connections from one address: %d chats served, mean %.0f ms, slowest %.0f ms (%.0f ms "
           "before); server threads %zu, RSS %ld kB\n",
           SLOWLORIS, served, sum / served * 1e3, worst * 1e3, quiet * 1e3, threads, rss);
    assert_true(worst < 5);
    assert_true(threads < 400); /* the per-address limit (128) holds the connection threads down */
    for (int i = 0; i < SLOWLORIS; i++)
        if (sl->fds[i] >= 0)
            close(sl->fds[i]);
    free(sl);
    h_server_stop(&s);
}

/* ================================================================== 6: limits */

static void test_the_body_limit_is_configurable(void **state)
{
    (void)state;
    h_server s;
    const char *env[] = {"AXLLAMA_MAX_BODY=1K", NULL};
    start(&s, NULL, NULL, env);
    strbuf body = {0};
    sb_puts(&body, "{\"model\":\"m\",\"prompt\":\"");
    for (int i = 0; i < 300; i++)
        sb_puts(&body, "word ");
    sb_puts(&body, "\"}");
    chat_result r = post(&s, "/api/generate", body.data);
    assert_int_equal(r.http.status, 413);
    assert_non_null(strstr(r.http.body.data, "limit 1024 bytes"));
    chat_free(&r);
    sb_free(&body);
    h_server_stop(&s);
}

/* "word word ... end": about bytes long. */
static char *words_text(size_t bytes)
{
    strbuf b = {0};
    while (b.len < bytes)
        sb_puts(&b, "word ");
    sb_puts(&b, "end");
    return sb_steal(&b);
}

/* An /api/generate body with extra members (each starting with a comma) and a prompt of about bytes. */
static char *prompt_of(size_t bytes, const char *extra_members)
{
    char *words = words_text(bytes);
    strbuf b = {0};
    sb_printf(&b, "{\"model\":\"m\"%s,\"prompt\":\"%s\"}", extra_members, words);
    free(words);
    return sb_steal(&b);
}

/* The bytes of the requests in progress are bounded: a large request that arrives while others hold
 * the budget is refused with 503 before its body is read; a small one still goes through. */
static void test_the_bytes_held_by_requests_in_progress_are_bounded(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-reply-tokens", "2000", NULL}; /* ~4 s of reply */
    const char *env[] = {"AXLLAMA_MAX_QUEUED_BYTES=1M", "AXLLAMA_MAX_BODY=1M", NULL};
    start(&s, args, NULL, env);
    load(&s);
    char *big = prompt_of(700 * 1024, ""); /* streamed: its first bytes come long before its end */
    pw_stream first;
    pw_stream_start(&first, s.port, "/api/generate", big, 60);
    assert_true(pw_stream_wait_first(&first, 20)); /* it holds 700 KiB until its answer is complete */
    chat_result second = post(&s, "/api/generate", big);
    if (second.http.status != 503)
        fail_msg("expected 503, got %ld %s", second.http.status, second.http.body.data);
    assert_int_equal(second.http.status, 503);
    assert_non_null(strstr(second.http.body.data, "server busy"));
    chat_free(&second);
    chat_result small = post(&s, "/api/generate", "{\"model\":\"m\",\"stream\":false,\"prompt\":\"small\"}");
    assert_int_equal(small.http.status, 200);
    chat_free(&small);
    pw_stream_join(&first);
    assert_int_equal(first.status, 200);
    pw_stream_free(&first);
    free(big);
    h_server_stop(&s);
}

static void test_stop_sequences_and_tools_are_limited(void **state)
{
    (void)state;
    h_server s;
    const char *env[] = {"AXLLAMA_MAX_STOP=2", "AXLLAMA_MAX_TOOLS=1", NULL};
    start(&s, NULL, NULL, env);
    static const char tool[] = "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}";
    char body[1024];
    chat_result r =
        post(&s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"x\",\"options\":{\"stop\":[\"a\",\"b\",\"c\"]}}");
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "too many stop sequences: 3 (at most 2"));
    chat_free(&r);
    r = post(&s, "/v1/chat/completions",
             "{\"model\":\"m\",\"stop\":[\"a\",\"b\",\"c\"],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "\"param\":\"stop\""));
    chat_free(&r);
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"tools\":[%s,%s],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", tool, tool);
    r = post(&s, "/api/chat", body);
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "too many tools: 2 (at most 1"));
    chat_free(&r);
    r = post(&s, "/v1/chat/completions", body);
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "\"param\":\"tools\""));
    chat_free(&r);
    static const char response_tool[] = "{\"type\":\"function\",\"name\":\"f\",\"parameters\":{}}";
    snprintf(body, sizeof body, "{\"model\":\"m\",\"tools\":[%s,%s],\"input\":\"x\"}", response_tool, response_tool);
    r = post(&s, "/v1/responses", body);
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "too many tools: 2 (at most 1"));
    chat_free(&r);
    /* at the limits: served */
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"stream\":false,\"tools\":[%s],\"options\":{\"stop\":[\"zz\",\"yy\"]},\"messages\":"
             "[{\"role\":\"user\",\"content\":\"x\"}]}",
             tool);
    r = post(&s, "/api/chat", body);
    assert_int_equal(r.http.status, 200);
    chat_free(&r);
    h_server_stop(&s);
}

/* A prompt of megabytes costs the budget, not its length: truncated (the default) it is answered; with
 * truncate false it is refused with "more than N tokens". */
static void test_a_huge_prompt_is_truncated_or_refused_quickly(void **state)
{
    (void)state;
    h_server s;
    const char *env[] = {"AXLLAMA_MAX_BODY=16M", "AXLLAMA_MAX_QUEUED_BYTES=64M", NULL};
    start(&s, NULL, NULL, env);
    load(&s);
    char *huge = prompt_of(12u << 20, ",\"stream\":false,\"options\":{\"num_predict\":4}");
    double t0 = h_now();
    chat_result r = post(&s, "/api/generate", huge);
    double truncated_in = h_now() - t0;
    assert_int_equal(r.http.status, 200);
    assert_done(&r, "length");
    assert_int_equal(num(r.last, "eval_count"), 4);
    chat_free(&r);
    free(huge);
    huge = prompt_of(12u << 20, ",\"stream\":false,\"truncate\":false");
    t0 = h_now();
    r = post(&s, "/api/generate", huge);
    double refused_in = h_now() - t0;
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "the prompt is too long: more than"));
    chat_free(&r);
    free(huge);
    /* a system prompt is never truncated */
    huge = words_text(12u << 20);
    strbuf chat = {0};
    sb_printf(&chat,
              "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"system\",\"content\":\"%s\"},{\"role\":"
              "\"user\",\"content\":\"q\"}]}",
              huge);
    t0 = h_now();
    r = post(&s, "/api/chat", chat.data);
    double system_refused_in = h_now() - t0;
    assert_int_equal(r.http.status, 400);
    assert_non_null(strstr(r.http.body.data, "the system prompt is too long: more than"));
    chat_free(&r);
    sb_free(&chat);
    free(huge);
    printf("a 12 MB prompt: truncated and answered in %.2f s, refused with truncate false in %.2f s; a 12 MB system "
           "prompt refused in %.2f s\n",
           truncated_in, refused_in, system_refused_in);
    assert_true(truncated_in < 20 && refused_in < 20 && system_refused_in < 20);
    char *log = h_server_log(&s);
    assert_non_null(strstr(log, "cut at least"));
    free(log);
    h_server_stop(&s);
}

/* ================================================================== 7-9: what Go accepts and refuses */

static void test_an_escaped_nul_and_lone_surrogates_are_accepted(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    /* the emulator echoes the message: each odd character comes back as U+FFFD */
    static const struct {
        const char *content, *echo;
    } cases[] = {
        {"a\\u0000b", "a\xEF\xBF\xBD"
                      "b"},
        {"cut \\ud83d", "cut \xEF\xBF\xBD"},
        {"\\udc00 low", "\xEF\xBF\xBD low"},
        {"pair \\ud83d\\ude00 ok", "pair \xF0\x9F\x98\x80 ok"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                 cases[i].content);
        chat_result r = post(&s, "/api/chat", body);
        if (r.http.status != 200)
            fail_msg("%s: %ld %s", cases[i].content, r.http.status, r.http.body.data);
        assert_string_equal(str(json_object_get(r.last, "message"), "content"), cases[i].echo);
        chat_free(&r);
        r = post(&s, "/v1/chat/completions", body);
        assert_int_equal(r.http.status, 200);
        chat_free(&r);
    }
    h_server_stop(&s);
}

static void test_v1_message_fields_of_the_wrong_type_are_refused(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    static const struct {
        const char *message, *param;
    } cases[] = {
        {"{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":\"str\"}", "messages[0].tool_calls"},
        {"{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":42}", "messages[0].tool_calls"},
        {"{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":{}}", "messages[0].tool_calls"},
        {"{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":\"str\"}", "messages[0].tool_calls"},
        {"{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":[42]}", "messages[0].tool_calls[0]"},
        {"{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":42}", "messages[0].tool_call_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"name\":42}", "messages[0].name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[%s,{\"role\":\"user\",\"content\":\"q\"}]}",
                 cases[i].message);
        chat_result r = post(&s, "/v1/chat/completions", body);
        if (r.http.status != 400)
            fail_msg("%s: %ld %s", cases[i].message, r.http.status, r.http.body.data);
        json_t *v = json_loads(r.http.body.data, 0, NULL);
        json_t *err = json_object_get(v, "error");
        assert_true(json_is_object(err));
        assert_string_equal(json_string_value(json_object_get(err, "type")), "invalid_request_error");
        assert_string_equal(json_string_value(json_object_get(err, "param")), cases[i].param);
        json_decref(v);
        chat_free(&r);
    }
    /* the right types pass */
    chat_result r = post(&s, "/v1/chat/completions",
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":\"ann\"},"
                         "{\"role\":\"assistant\",\"content\":\"y\",\"tool_calls\":[]},{\"role\":\"user\","
                         "\"content\":\"q\"}]}");
    assert_int_equal(r.http.status, 200);
    chat_free(&r);
    h_server_stop(&s);
}

static void test_the_api_answers_gos_400_to_bad_host_headers(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL, NULL, NULL);
    char req[256];
    snprintf(req, sizeof req,
             "GET /api/version HTTP/1.1\r\nHost: localhost:%d evil.example\r\nConnection: close\r\n\r\n", s.port);
    char *a = raw_exchange_from(NULL, s.port, req);
    assert_int_equal(raw_status(a), 400);
    assert_string_equal(raw_body(a), "400 Bad Request: malformed Host header");
    free(a);
    snprintf(req, sizeof req,
             "GET /api/version HTTP/1.1\r\nHost: localhost:%d\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
             s.port);
    a = raw_exchange_from(NULL, s.port, req);
    assert_int_equal(raw_status(a), 400);
    assert_string_equal(raw_body(a), "400 Bad Request: too many Host headers");
    free(a);
    h_server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_num_predict_zero_and_fractions_end_with_done, stop_current),
        cmocka_unit_test_teardown(test_a_runtime_stopped_while_idle_is_restarted, stop_current),
        cmocka_unit_test_teardown(test_a_runtime_stopped_mid_stream_ends_the_stream_with_an_error_line, stop_current),
        cmocka_unit_test_teardown(test_a_crash_loop_answers_503_with_when_to_retry, stop_current),
        cmocka_unit_test_teardown(test_a_get_uid_flood_leaves_the_runtimes_uid_alone, stop_current),
        cmocka_unit_test_teardown(test_the_tokenizer_service_refuses_web_pages_and_other_hosts, stop_current),
        cmocka_unit_test_teardown(test_a_runtime_whose_uid_is_unknown_fails_fast_and_reloads, stop_current),
        cmocka_unit_test_teardown(test_the_per_address_connection_limit_is_configurable, stop_current),
        cmocka_unit_test_teardown(test_a_slowloris_of_3000_connections_leaves_a_client_served, stop_current),
        cmocka_unit_test_teardown(test_the_body_limit_is_configurable, stop_current),
        cmocka_unit_test_teardown(test_the_bytes_held_by_requests_in_progress_are_bounded, stop_current),
        cmocka_unit_test_teardown(test_stop_sequences_and_tools_are_limited, stop_current),
        cmocka_unit_test_teardown(test_a_huge_prompt_is_truncated_or_refused_quickly, stop_current),
        cmocka_unit_test_teardown(test_an_escaped_nul_and_lone_surrogates_are_accepted, stop_current),
        cmocka_unit_test_teardown(test_v1_message_fields_of_the_wrong_type_are_refused, stop_current),
        cmocka_unit_test_teardown(test_the_api_answers_gos_400_to_bad_host_headers, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
