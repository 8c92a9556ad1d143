/*
 * freeze.h - crash-consistent cutover: every mounted filesystem on the
 * source disks frozen (FIFREEZE) for the final pass, and always thawed
 * (FITHAW) - when the pass ends, fails, times out, or the agent gets
 * SIGINT/SIGTERM/SIGHUP.
 */
#ifndef FERRY_FREEZE_H
#define FERRY_FREEZE_H

#include <stddef.h>
#include <stdint.h>

#define FREEZE_MAX 32

/* Freezes the filesystems mounted from the given block devices (disks or
 * their partitions); image files have none. timeout_s bounds the freeze:
 * when it passes, everything is thawed and freeze_expired() turns true.
 * err lists what was frozen, or why not. */
int freeze_begin(const char *const *disks, size_t n, unsigned timeout_s, char *err,
		 size_t errcap);
/* Thaws everything still frozen; returns how long the freeze lasted (ms). */
uint64_t freeze_end(void);
int freeze_expired(void);
/* True while a freeze is held: nothing may be written to those
 * filesystems (state file, log file). */
int freeze_active(void);
/* How many filesystems the last freeze_begin froze. */
size_t freeze_count(void);

#endif
