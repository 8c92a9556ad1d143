/*
 * progress.c - progress output. The bar is redrawn at most 5 times a
 * second on a terminal; a plain line goes out every 5 s otherwise, so a
 * log file stays readable; a --json event every second (a program draws
 * its own display from them). --progress-interval sets both. Rates are
 * smoothed so the ETA does not jump.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/progress.h"
#include "common/common.h"

#define TTY_MS 200
#define LINE_MS 5000
#define JSON_MS 1000

static unsigned every_ms; /* --progress-interval; 0: the defaults */

void progress_set_interval(unsigned ms)
{
	every_ms = ms;
}

void progress_init(struct progress *p, int json, uint64_t total)
{
	/* Event times count from the first use, across phases. */
	static uint64_t start_ms;

	if (!start_ms)
		start_ms = time_now_ms();
	memset(p, 0, sizeof(*p));
	p->json = json;
	p->tty = !json && isatty(STDERR_FILENO);
	p->total = total;
	p->t0_ms = start_ms;
	p->last_ms = time_now_ms();
	p->phase = "sending";
}

static void fmt_eta(double secs, char *buf, size_t cap)
{
	unsigned long s;

	if (secs < 0 || secs > 360000) {
		snprintf(buf, cap, "--:--");
		return;
	}
	s = (unsigned long)(secs + 0.5);
	if (s >= 3600)
		snprintf(buf, cap, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, cap, "%lu:%02lu", s / 60, s % 60);
}

void progress_tick(struct progress *p, int force)
{
	uint64_t now = time_now_ms();
	uint64_t dt = now - p->last_ms;
	char a[32], b[32], eta[32];
	double pct, inst;

	if (!force && dt < (uint64_t)(p->tty ? TTY_MS : every_ms ? every_ms :
				      p->json ? JSON_MS : LINE_MS))
		return;
	if (dt > 0) {
		inst = (double)(p->done - p->last_done) * 1000.0 / (double)dt;
		p->rate = p->rate == 0 ? inst : 0.7 * p->rate + 0.3 * inst;
	}
	p->last_ms = now;
	p->last_done = p->done;
	pct = p->total ? 100.0 * (double)p->done / (double)p->total : 100.0;
	fmt_eta(p->rate > 0 ? (double)(p->total - p->done) / p->rate : -1, eta, sizeof(eta));
	fmt_bytes(p->done, a, sizeof(a));
	fmt_bytes(p->total, b, sizeof(b));
	if (p->json) {
		char r[32], d[64], e[32];

		snprintf(r, sizeof(r), "%.0f", p->rate);
		snprintf(d, sizeof(d), "\"%s\"", p->disk ? p->disk : "");
		snprintf(e, sizeof(e), "%.0f",
			 p->rate > 0 ? (double)(p->total - p->done) / p->rate : -1.0);
		snprintf(a, sizeof(a), "%llu", (unsigned long long)p->done);
		snprintf(b, sizeof(b), "%llu", (unsigned long long)p->total);
		progress_event(p, "progress", "phase", p->phase[0] == 'v' ? "\"verifying\"" : "\"sending\"",
			       "disk", d, "done", a, "total", b, "rate", r, "eta", e, NULL);
	} else if (p->tty) {
		char bar[31];
		int i, n = (int)(pct * 30 / 100);

		for (i = 0; i < 30; i++)
			bar[i] = i < n ? '#' : '.';
		bar[30] = 0;
		fprintf(stderr, "\r%-9s %-6s [%s] %5.1f%%  %s / %s  %.1f MB/s  ETA %s \033[K",
			p->phase, p->disk ? p->disk : "", bar, pct, a, b, p->rate / 1e6, eta);
	} else {
		fprintf(stderr, "ferry: %s %s: %.1f%%, %s of %s, %.1f MB/s, ETA %s\n", p->phase,
			p->disk ? p->disk : "", pct, a, b, p->rate / 1e6, eta);
	}
}

void progress_break(struct progress *p)
{
	if (p->tty)
		fputc('\n', stderr);
}

void progress_event(const struct progress *p, const char *event, ...)
{
	va_list ap;
	const char *k, *v;

	if (!p->json)
		return;
	flockfile(stdout);	/* one line whichever stream writes it */
	printf("{\"event\":\"%s\",\"t\":%.3f", event,
	       (double)(time_now_ms() - p->t0_ms) / 1000.0);
	va_start(ap, event);
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		printf(",\"%s\":%s", k, v);
	}
	va_end(ap);
	printf("}\n");
	fflush(stdout);
	funlockfile(stdout);
}
