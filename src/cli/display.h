/* display: how the CLI shows numbers, times and tables, after the ollama CLI's format package and
 * its tablewriter settings: sizes ("4.7 GB"), relative times ("2 minutes ago", "4 minutes from
 * now", "Forever"), Go's time.Duration text ("1.234567s"), RFC 3339 parsing, aligned tables. */
#ifndef AXLLAMA_CLI_DISPLAY_H
#define AXLLAMA_CLI_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ollama's format.HumanBytes: 1024-based, labelled KB/MB/GB/TB; "%d" from 10 up, else one
 * decimal unless whole ("4.7 GB", "12 GB", "5 GB", "512 B"). */
void fmt_human_bytes(int64_t b, char *out, size_t outlen);

/* ollama's format.HumanTime: t relative to now (Unix seconds): "Less than a second ago",
 * "About a minute ago", "3 hours ago", "4 minutes from now", "Forever" beyond 20 years ahead. */
void fmt_human_time(double t, double now, char *out, size_t outlen);

/* Go's time.Duration.String() of a nanosecond count: "0s", "950ns", "12.5µs", "3.25ms",
 * "1.5s", "2m3.000000001s", "1h0m0s". */
void fmt_go_duration(uint64_t ns, char *out, size_t outlen);

/* RFC 3339 / ISO 8601 "2026-01-02T03:04:05[.frac](Z|+01:00)" to Unix seconds. */
bool fmt_parse_time(const char *s, double *out);

/* Rows of ncols cells (rows[r][c], NULL = ""), each column padded to its widest cell plus four
 * spaces, as `ollama list` prints them (tablewriter, NoWhiteSpace, padding "    "). indent is
 * printed before each row. */
void fmt_table(FILE *f, const char *indent, size_t ncols, const char *const *cells, size_t nrows);

#endif
