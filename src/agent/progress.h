/*
 * progress.h - what the agent tells people and programs while it works:
 * a live bar on a terminal, a line every few seconds otherwise, NDJSON
 * events with --json, and the summary at the end.
 */
#ifndef FERRY_PROGRESS_H
#define FERRY_PROGRESS_H

#include <stdint.h>

struct progress {
	int json, tty;
	const char *disk;	/* the disk being sent */
	uint64_t total;		/* bytes to send in all */
	uint64_t done;		/* bytes handled (sent or zeroed) */
	uint64_t t0_ms, last_ms, last_done;
	double rate;		/* smoothed bytes per second */
	const char *phase;	/* "sending", "verifying", ... */
};

void progress_init(struct progress *p, int json, uint64_t total);
/* How often a line or a --json progress event goes out (ms); 0: the
 * default, 5 s for lines, 1 s for --json. */
void progress_set_interval(unsigned ms);
/* Shows progress if enough time has passed since the last update. */
void progress_tick(struct progress *p, int force);
/* Ends a live bar line before other output. */
void progress_break(struct progress *p);
/* One NDJSON event: pairs of key, value strings already JSON-encoded
 * ("\"vda\"", "123"); NULL ends the list. */
void progress_event(const struct progress *p, const char *event, ...);

#endif
