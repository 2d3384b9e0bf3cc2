/* fake_engine: a stand-in for the whole engine (every engine_* and job_* function of
 * engine/engine.h) for tests of the APIs over the real HTTP server: each submitted job plays the
 * scripted events (with delays), and what the API asked for is recorded (the request's fields and
 * messages, cancels, releases, unloads). A test binary that calls any fake_* function links this
 * object instead of src/engine/engine.c: libtesthelpers.a comes before libaxllama.a on the link
 * line, and the archive member is only pulled in by a test that uses it. (So a test that wants the
 * real engine must not call fake_*.) */
#ifndef AXLLAMA_TESTS_FAKE_ENGINE_H
#define AXLLAMA_TESTS_FAKE_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/engine.h"

typedef struct {
    job_event_kind kind;
    const char *text;
    int http_status;
    const char *done_reason;
    double delay_s;                         /* after the previous event (or the submit) */
    const char *tool_name, *tool_arguments; /* JOB_EV_TOOL_CALL */
} fake_step;

#define FAKE_MAX_STEPS 16

typedef struct {
    fake_step steps[FAKE_MAX_STEPS];
    size_t n;
} fake_script;

/* One message of the last submitted conversation. */
typedef struct {
    char role[16];
    char content[256];
    char reasoning[64];
    bool has_reasoning;
    size_t n_tool_calls;
    char tool_name[32];
    char tool_args[128];
} fake_message;

typedef struct {
    pthread_mutex_t lock;
    fake_script script; /* for every following submit */
    int submit_status;  /* 200, or the status engine_submit answers */
    char submit_err[256];
    /* what the API did */
    int submits, cancels, releases, unloads;
    int live_jobs;         /* submitted and not yet released (never reset: fake_wait_idle waits for 0) */
    double last_cancel_at; /* clock_mono() of the last job_cancel */
    char unloaded[128];
    /* the last submitted job_request */
    job_kind kind;
    char model[128];
    char raw_prompt[256];
    int think;
    gen_options options; /* without its stop array: see stop */
    char stop[4][32];
    bool has_keep_alive;
    double keep_alive_s;
    bool no_truncate;
    fake_message msgs[8];
    size_t n_msgs;
    char tools[4][512];
    size_t n_tools;
    char system_suffix[1024];
    bool has_system_suffix;
    /* what engine_ps answers */
    engine_loaded_model ps[4];
    size_t n_ps;
} fake_state;

/* The fake's state: lock it to change the script's inputs (submit_status, ps...); read what was
 * recorded through fake_snapshot or fake_count. */
extern fake_state fake;

/* Forgets what was recorded and the script; submits answer 200 again. */
void fake_reset(void);

/* The events of every following submit. */
void fake_script_set(const fake_step *steps, size_t n);
#define FAKE_SCRIPT(steps) fake_script_set(steps, sizeof steps / sizeof steps[0])

/* A copy of what the fake recorded (assert on the copy: an assertion must never fire while the
 * lock is held, or every later test would block on it). */
fake_state fake_snapshot(void);

/* One of fake's counters (e.g. &fake.releases), read under the lock. */
int fake_count(const int *counter);

/* Waits (up to 2 s) until *counter reaches want; returns its value. The server releases a job
 * after the last byte went out, so the client may see the end first. */
int fake_wait_count(const int *counter, int want);

/* Waits (up to 5 s) until no job is live: the previous test's jobs are released before the next
 * one counts. */
void fake_wait_idle(void);

/* Waits (up to 3 s) for a job_cancel after the first `before`; returns its clock_mono() time, or
 * -1 when none came. */
double fake_wait_cancel(int before);

#endif
