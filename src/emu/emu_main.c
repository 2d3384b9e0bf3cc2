/* emu_main: axllama-emu, a drop-in for the vendor runtime binary (main_api_axcl_aarch64 /
 * main_api_ax650): the same flags, start-up sequence and log lines (docs/spec/runtime-protocol.md §4),
 * then the same HTTP API until SIGINT (finish running and queued tasks, exit 0) or SIGTERM (no
 * handler: immediate death, as the vendor). No model files are read; the timing comes from a
 * profile. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "emu/emu_http.h"
#include "emu/emu_log.h"
#include "emu/emu_options.h"
#include "emu/emu_profile.h"
#include "emu/emu_runtime.h"
#include "emu/emu_tokclient.h"
#include "net/http_client.h"

#define TOKENIZER_TIMEOUT_S 10.0
#define CONNECT_TRIES 10

static void progress(int step, int total, double started, const char *what)
{
    double elapsed = clock_mono() - started;
    double rate = elapsed > 0 ? step / elapsed : 0;
    char bar[3 * 32 + 1] = "";
    int filled = step * 32 / total;
    for (int i = 0; i < 32; i++)
        strcat(bar, i < filled ? "\xE2\x96\x88" : " ");
    printf("\r%3d%% | %s | %3d / %3d [%.2fs<%.2fs, %.2f count/s] %s", step * 100 / total, bar, step, total, elapsed,
           rate > 0 ? (total - step) / rate : 0.0, rate, what);
    if (step == total)
        printf("\n");
    fflush(stdout);
}

/* post_config.json from the working directory, as the vendor reads it (all nine keys required). */
static bool load_post_config(emu_sampler *s)
{
    static const char *keys[] = {"enable_temperature",
                                 "temperature",
                                 "enable_repetition_penalty",
                                 "repetition_penalty",
                                 "penalty_window",
                                 "enable_top_p_sampling",
                                 "top_p",
                                 "enable_top_k_sampling",
                                 "top_k"};
    memset(s, 0, sizeof *s);
    json_error_t je;
    json_t *cfg = json_load_file("post_config.json", 0, &je);
    if (!cfg) {
        EMU_LOGE("load_config", 267, "config file(post_config.json) open failed");
        EMU_LOGE("Init", 204, "load postprocess config(post_config.json) failed");
        return false;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!json_object_get(cfg, keys[i])) {
            EMU_LOGE("load_config", 275, "post_config.json has no \"%s\"", keys[i]);
            json_decref(cfg);
            return false;
        }
    }
    s->temperature_on = json_is_true(json_object_get(cfg, "enable_temperature"));
    s->temperature = (float)json_number_value(json_object_get(cfg, "temperature"));
    s->repetition_on = json_is_true(json_object_get(cfg, "enable_repetition_penalty"));
    s->repetition_penalty = (float)json_number_value(json_object_get(cfg, "repetition_penalty"));
    s->penalty_window = (int)json_integer_value(json_object_get(cfg, "penalty_window"));
    s->top_p_on = json_is_true(json_object_get(cfg, "enable_top_p_sampling"));
    s->top_p = (float)json_number_value(json_object_get(cfg, "top_p"));
    s->top_k_on = json_is_true(json_object_get(cfg, "enable_top_k_sampling"));
    s->top_k = (int)json_integer_value(json_object_get(cfg, "top_k"));
    if (s->top_p_on)
        s->top_k_on = false; /* both enabled in the file: top-p is used */
    /* nlohmann's dump(4): shortest round-trip numbers (0.9, not jansson's default 0.90000000000000002);
     * 15 significant digits give that for every value a config file holds. */
    char *pretty = json_dumps(cfg, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    EMU_LOGI("load_config", 282, "load config: \n%s\n", pretty);
    free(pretty);
    json_decref(cfg);
    return true;
}

/* The vendor parses --devices with std::stoi: anything but integers terminates the process. */
static void log_devices(const char *devices)
{
    char *copy = xstrdup(devices), *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *end;
        long id = strtol(item, &end, 10);
        if (end == item) {
            fprintf(stderr,
                    "terminate called after throwing an instance of 'std::invalid_argument'\n  what():  stoi\n");
            abort();
        }
        EMU_LOGI("AXCLWorker", 38, "AXCLWorker start with devid %ld", id);
    }
    free(copy);
}

static int init_failed(void)
{
    EMU_LOGE("main", 511, "lLaMa.Init failed");
    fflush(stdout);
    return 255; /* main returns -1 */
}

/* LLM::Init up to the model load. Returns 0 or the exit status. */
static int connect_tokenizer(const emu_options *o, emu_tokclient **tc_out, int *eos_id, idvec *think_ids)
{
    char err[256];
    emu_tokclient *tc = emu_tokclient_new(o->url_tokenizer_model, TOKENIZER_TIMEOUT_S, err, sizeof err);
    if (!tc) {
        EMU_LOGE("Init", 30, "%s", err);
        return init_failed();
    }
    *tc_out = tc;
    bool connected = false;
    for (int i = 1; i <= CONNECT_TRIES && !connected; i++) {
        connected = !o->tokenizer_unreachable && emu_tokclient_probe(tc);
        if (!connected) {
            EMU_LOGE("Init", 36, "connect failed %s, try again in %d/%d", emu_tokclient_url(tc), i, CONNECT_TRIES);
            emu_sleep(1.0 * o->time_scale, NULL);
        }
    }
    if (!connected) {
        EMU_LOGE("Init", 40, "connect %s failed", emu_tokclient_url(tc));
        return init_failed();
    }
    EMU_LOGI("Init", 34, "connect %s ok", emu_tokclient_url(tc));
    tokc_status st = TOKC_FAILED;
    for (int i = 0; i < CONNECT_TRIES && st != TOKC_OK; i++) {
        st = emu_tokclient_get_uid(tc);
        if (st != TOKC_OK)
            emu_sleep(1.0 * o->time_scale, NULL);
    }
    if (st != TOKC_OK) {
        EMU_LOGE("Init", 55, "get uid failed");
        return init_failed();
    }
    EMU_LOGI("Init", 57, "uid: %s", emu_tokclient_uid(tc));
    int bos = -1;
    if (emu_tokclient_get_id(tc, "bos_id", &bos) != TOKC_OK || emu_tokclient_get_id(tc, "eos_id", eos_id) != TOKC_OK) {
        EMU_LOGE("Init", 70, "get bos_id/eos_id failed");
        return init_failed();
    }
    printf("bos_id: %d, eos_id: %d\n", bos, *eos_id);
    /* --emu-think-text: tokenized by the service before the reset, which clears what this encode
     * left in the uid's conversation (not a vendor step; without the option the traffic is the
     * vendor's) */
    if (*o->think_text && emu_runtime_tokenize_think_text(tc, o->think_text, think_ids) != TOKC_OK) {
        EMU_LOGE("Init", 75, "axllama-emu: cannot tokenize --emu-think-text");
        return init_failed();
    }
    idvec ids = {0};
    st = emu_tokclient_reset(tc, o->system_prompt, &ids);
    iv_free(&ids);
    if (st != TOKC_OK) {
        EMU_LOGE("Init", 80, "tokenizer reset failed");
        return init_failed();
    }
    return 0;
}

/* The model load: axmodel_num + 3 progress steps over the init time. */
static int emu_load_model(const emu_options *o, const emu_profile *p)
{
    int total = o->axmodel_num + 3;
    double init_s = (o->init_seconds >= 0 ? o->init_seconds : p->init_s) * o->time_scale;
    double per_step = init_s / total, started = clock_mono();
    int remain_cmm = 7040;
    EMU_LOGW("Init", 90, "axllama-emu: model files are not read (emulated: %s, %s, %s)", o->template_filename_axmodel,
             o->filename_post_axmodel, o->filename_tokens_embed);
    for (int step = 1; step <= total; step++) {
        if (o->exit_init_step == step) {
            printf("\n");
            EMU_LOGE("Init", 95, "axllama-emu: fault: exit during init at step %d", step);
            fflush(stdout);
            exit(o->exit_init_code);
        }
        emu_sleep(per_step, NULL);
        char what[96];
        if (step == 1)
            snprintf(what, sizeof what, "tokenizer init ok");
        else if (step == 2)
            snprintf(what, sizeof what, "embed_selector init ok");
        else if (step < total)
            snprintf(what, sizeof what, "init %d axmodel ok,remain_cmm(%d MB)", step - 3, remain_cmm -= 150);
        else
            snprintf(what, sizeof what, "init post axmodel ok,remain_cmm(%d MB)", remain_cmm -= 250);
        progress(step, total, started, what);
    }
    return 0;
}

static void log_geometry(const emu_options *o)
{
    EMU_LOGI("Init", 198, "max_token_len : %d", o->max_token_len);
    EMU_LOGI("Init", 203, "kv_cache_size : %d, kv_cache_num: %d", 1024, o->max_token_len);
    EMU_LOGI("Init", 211, "prefill_token_num : %d", 128);
    int grp = 1;
    EMU_LOGI("Init", 215, "grp: %d, prefill_max_token_num : %d", grp++, 1);
    EMU_LOGI("Init", 215, "grp: %d, prefill_max_token_num : %d", grp++, 256);
    for (int cap = 512; cap < o->prefill_max; cap += 512)
        EMU_LOGI("Init", 215, "grp: %d, prefill_max_token_num : %d", grp++, cap);
    if (o->prefill_max != 256)
        EMU_LOGI("Init", 215, "grp: %d, prefill_max_token_num : %d", grp++, o->prefill_max);
    EMU_LOGI("Init", 219, "prefill_max_token_num : %d", o->prefill_max);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* The vendor's printf output is block-buffered when stdout is a pipe (it appears in bursts);
     * the emulator line-buffers so its log can be read live. axllama depends on neither. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* SIGINT is taken by the main thread only (sigwait); SIGTERM keeps its default: death. */
    sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigint, NULL);
    http_client_global_init(); /* libcurl, once, before any thread starts */

    emu_options o;
    int rc = emu_options_parse(&o, argc, argv, stderr);
    if (rc >= 0) {
        emu_options_free(&o);
        return rc;
    }
    const emu_profile *profile = emu_profile_find(o.profile);

    if (o.mode == EMU_MODE_AXCL)
        log_devices(o.devices);
    EMU_LOGI("Init", 136, "LLM init start");
    emu_tokclient *tc = NULL;
    int eos_id = -1;
    idvec think_ids = {0};
    rc = connect_tokenizer(&o, &tc, &eos_id, &think_ids);
    if (rc == 0)
        rc = emu_load_model(&o, profile);
    if (rc != 0) {
        iv_free(&think_ids);
        emu_tokclient_free(tc);
        emu_options_free(&o);
        return rc;
    }
    log_geometry(&o);
    emu_sampler sampler;
    load_post_config(&sampler);
    EMU_LOGI("Init", 224, "LLM init ok");

    emu_runtime *rt = emu_runtime_new(&o, profile, tc, &sampler, eos_id);
    emu_runtime_set_think_ids(rt, think_ids.v, think_ids.len);
    iv_free(&think_ids);
    emu_runtime_start(rt);
    char err[256];
    emu_http *http;
    if (o.port != 0) {
        /* The vendor prints the line, then binds: nothing answers before the line, and a client
         * that connects the moment it reads it can still be refused (docs/spec/runtime-protocol.md §4.2). */
        printf("Server running on port %d...\n", o.port);
        fflush(stdout);
        http = emu_http_start(rt, o.host, o.port, err, sizeof err);
    } else {
        /* --emu-port 0: the line has to name the port the kernel picked, so bind first. */
        http = emu_http_start(rt, o.host, o.port, err, sizeof err);
        printf("Server running on port %d...\n", http ? emu_http_port(http) : o.port);
        fflush(stdout);
    }
    if (http) {
        int sig;
        while (sigwait(&sigint, &sig) != 0) {
        }
        emu_http_stop(http);
    } else {
        fprintf(stderr, "axllama-emu: %s\n", err); /* the vendor exits 0 here too */
    }
    emu_runtime_finish(rt); /* the running task and every queued one finish first */
    emu_runtime_log_calls(rt);
    fflush(stdout);
    emu_runtime_free(rt);
    emu_tokclient_free(tc);
    emu_options_free(&o);
    return 0;
}
