/* fake_engine: the scripted engine of the API tests (see fake_engine.h). */
#include "fake_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

/* How often the waits below look at the counters. */
#define FAKE_POLL_S 0.002

struct engine {
    int unused;
};

struct job {
    fake_script script;
    size_t pos;
    double last; /* clock_mono() when the previous event was handed out */
};

fake_state fake = {.lock = PTHREAD_MUTEX_INITIALIZER, .submit_status = 200};

void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    memset(&fake.script, 0, sizeof fake.script);
    fake.submit_status = 200;
    fake.submit_err[0] = '\0';
    fake.submits = fake.cancels = fake.releases = fake.unloads = 0;
    fake.last_cancel_at = 0;
    fake.unloaded[0] = fake.model[0] = fake.raw_prompt[0] = '\0';
    fake.n_msgs = 0;
    fake.n_ps = 0;
    fake.n_tools = 0;
    fake.system_suffix[0] = '\0';
    fake.has_system_suffix = false;
    pthread_mutex_unlock(&fake.lock);
}

void fake_script_set(const fake_step *steps, size_t n)
{
    pthread_mutex_lock(&fake.lock);
    memset(&fake.script, 0, sizeof fake.script);
    for (size_t i = 0; i < n && i < FAKE_MAX_STEPS; i++)
        fake.script.steps[i] = steps[i];
    fake.script.n = n;
    pthread_mutex_unlock(&fake.lock);
}

fake_state fake_snapshot(void)
{
    fake_state copy;
    pthread_mutex_lock(&fake.lock);
    memcpy(&copy, &fake, sizeof copy);
    pthread_mutex_unlock(&fake.lock);
    return copy;
}

int fake_count(const int *counter)
{
    pthread_mutex_lock(&fake.lock);
    int v = *counter;
    pthread_mutex_unlock(&fake.lock);
    return v;
}

int fake_wait_count(const int *counter, int want)
{
    double deadline = deadline_in(2);
    while (fake_count(counter) < want && !deadline_passed(deadline))
        clock_sleep(FAKE_POLL_S);
    return fake_count(counter);
}

void fake_wait_idle(void)
{
    double deadline = deadline_in(5);
    while (fake_count(&fake.live_jobs) > 0 && !deadline_passed(deadline))
        clock_sleep(FAKE_POLL_S);
}

double fake_wait_cancel(int before)
{
    double deadline = deadline_in(3);
    while (!deadline_passed(deadline)) {
        pthread_mutex_lock(&fake.lock);
        bool done = fake.cancels > before;
        double at = fake.last_cancel_at;
        pthread_mutex_unlock(&fake.lock);
        if (done)
            return at;
        clock_sleep(FAKE_POLL_S);
    }
    return -1;
}

/* ------------------------------------------------------------------------------------ engine.h */

engine *engine_new(const engine_config *cfg)
{
    (void)cfg;
    return calloc(1, sizeof(engine));
}

void engine_free(engine *e)
{
    free(e);
}

/* Records the request's conversation (under the lock). */
static void fake_record_messages(const job_request *req)
{
    fake.n_msgs = 0;
    for (size_t i = 0; i < req->n_messages && i < 8; i++) {
        const chat_message *in = &req->messages[i];
        fake_message *m = &fake.msgs[fake.n_msgs++];
        memset(m, 0, sizeof *m);
        snprintf(m->role, sizeof m->role, "%s", in->role);
        snprintf(m->content, sizeof m->content, "%s", in->content ? in->content : "");
        m->has_reasoning = in->reasoning_content != NULL;
        snprintf(m->reasoning, sizeof m->reasoning, "%s", m->has_reasoning ? in->reasoning_content : "");
        m->n_tool_calls = in->n_tool_calls;
        if (m->n_tool_calls) {
            snprintf(m->tool_name, sizeof m->tool_name, "%s", in->tool_calls[0].name);
            snprintf(m->tool_args, sizeof m->tool_args, "%s", in->tool_calls[0].arguments_json);
        }
    }
}

int engine_submit(engine *e, const job_request *req, job **out, char *err, size_t errlen)
{
    (void)e;
    pthread_mutex_lock(&fake.lock);
    fake.submits++;
    fake.kind = req->kind;
    snprintf(fake.model, sizeof fake.model, "%s", req->model);
    snprintf(fake.raw_prompt, sizeof fake.raw_prompt, "%s", req->raw_prompt ? req->raw_prompt : "");
    fake.think = req->think;
    fake.options = req->options;
    fake.options.stop = NULL;
    for (size_t i = 0; i < req->options.n_stop && i < 4; i++)
        snprintf(fake.stop[i], sizeof fake.stop[i], "%s", req->options.stop[i]);
    fake.has_keep_alive = req->has_keep_alive;
    fake.keep_alive_s = req->keep_alive_s;
    fake.no_truncate = req->no_truncate;
    fake.n_tools = 0;
    for (size_t i = 0; i < req->n_tools && i < 4; i++)
        snprintf(fake.tools[fake.n_tools++], sizeof fake.tools[0], "%s", req->tools_json[i]);
    fake.has_system_suffix = req->system_suffix != NULL;
    snprintf(fake.system_suffix, sizeof fake.system_suffix, "%s", req->system_suffix ? req->system_suffix : "");
    fake_record_messages(req);
    int status = fake.submit_status;
    if (status != 200) {
        snprintf(err, errlen, "%s", fake.submit_err);
        pthread_mutex_unlock(&fake.lock);
        return status;
    }
    job *j = calloc(1, sizeof *j);
    fake.live_jobs++;
    j->script = fake.script;
    j->last = clock_mono();
    pthread_mutex_unlock(&fake.lock);
    *out = j;
    return 200;
}

/* The next scripted event once its delay has passed (waiting at most timeout_s, as the engine's
 * job_next does); after the script, nothing ever comes. */
bool job_next(job *j, job_event *ev, double timeout_s)
{
    if (j->pos >= j->script.n) {
        clock_sleep(timeout_s);
        return false;
    }
    const fake_step *s = &j->script.steps[j->pos];
    double wait = j->last + s->delay_s - clock_mono();
    if (wait > 0) {
        clock_sleep(wait < timeout_s ? wait : timeout_s);
        if (wait > timeout_s)
            return false;
    }
    memset(ev, 0, sizeof *ev);
    ev->kind = s->kind;
    ev->text = s->text ? strdup(s->text) : NULL;
    ev->http_status = s->http_status;
    ev->done_reason = s->done_reason;
    ev->tool_name = s->tool_name ? strdup(s->tool_name) : NULL;
    ev->tool_arguments = s->tool_arguments ? strdup(s->tool_arguments) : NULL;
    if (s->kind == JOB_EV_DONE)
        ev->metrics = (job_metrics){.total_ns = 5000000,
                                    .load_ns = 1000,
                                    .prompt_eval_ns = 2000000,
                                    .eval_ns = 3000000,
                                    .prompt_eval_count = 7,
                                    .eval_count = 3};
    j->pos++;
    j->last = clock_mono();
    return true;
}

void job_event_free(job_event *ev)
{
    free(ev->text);
    free(ev->tool_name);
    free(ev->tool_arguments);
    ev->text = ev->tool_name = ev->tool_arguments = NULL;
}

void job_cancel(job *j)
{
    (void)j;
    pthread_mutex_lock(&fake.lock);
    fake.cancels++;
    fake.last_cancel_at = clock_mono();
    pthread_mutex_unlock(&fake.lock);
}

void job_release(job *j)
{
    pthread_mutex_lock(&fake.lock);
    fake.releases++;
    fake.live_jobs--;
    pthread_mutex_unlock(&fake.lock);
    free(j);
}

bool engine_unload(engine *e, const char *model)
{
    (void)e;
    pthread_mutex_lock(&fake.lock);
    fake.unloads++;
    snprintf(fake.unloaded, sizeof fake.unloaded, "%s", model);
    pthread_mutex_unlock(&fake.lock);
    return true;
}

size_t engine_ps(engine *e, engine_loaded_model *out, size_t max)
{
    (void)e;
    pthread_mutex_lock(&fake.lock);
    size_t n = fake.n_ps < max ? fake.n_ps : max;
    memcpy(out, fake.ps, n * sizeof *out);
    pthread_mutex_unlock(&fake.lock);
    return n;
}
