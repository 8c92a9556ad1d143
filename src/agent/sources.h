/*
 * sources.h - finding and checking the source disks of a migration.
 */
#ifndef FERRY_SOURCES_H
#define FERRY_SOURCES_H

#include <stddef.h>

#define SRC_PATH_MAX 256

/* This machine's whole disks, the one holding / first. */
int src_discover(char paths[][SRC_PATH_MAX], size_t cap, size_t *n, char *err,
		 size_t errcap);
/* 1 if path is a partition block device (disk gets its whole disk). */
int src_is_partition(const char *path, char *disk, size_t cap);

#endif
