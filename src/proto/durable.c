/*
 * durable.c - the record both ends keep of what a migration has made
 * durable: per disk a prefix, and past the prefixes a sorted list of
 * ranges. The destination keeps it from the FLUSHes it carried out, the
 * agent from the FLUSHED answers it got; a resume skips (or compares)
 * exactly what it holds. Pure: no I/O, no locks, no malloc.
 */
#include <string.h>

#include "proto/proto.h"

int proto_durable_add(struct proto_range *list, uint32_t *n, uint32_t max, uint64_t *prefix,
		      const struct proto_range *r)
{
	uint64_t off = r->off, end = r->end;
	uint32_t i, j;
	int dropped = 0;

	if (off >= end || (prefix && end <= *prefix))
		return 0;
	/* The first range of r's disk that reaches r, and past the last one
	 * r reaches (touching counts): r swallows [i, j). */
	for (i = 0;
	     i < *n && (list[i].disk < r->disk || (list[i].disk == r->disk && list[i].end < off));
	     i++)
		;
	for (j = i; j < *n && list[j].disk == r->disk && list[j].off <= end; j++) {
		off = list[j].off < off ? list[j].off : off;
		end = list[j].end > end ? list[j].end : end;
	}
	if (prefix && off <= *prefix) {
		*prefix = end;
		memmove(&list[i], &list[j], (*n - j) * sizeof(*list));
		*n -= j - i;
		return 0;
	}
	if (i == j) {
		/* Full: the highest range goes (or r, when it is the highest). */
		if (*n == max) {
			if (i == *n)
				return -1;
			(*n)--;
			dropped = -1;
		}
		memmove(&list[i + 1], &list[i], (*n - i) * sizeof(*list));
		(*n)++;
	} else if (j > i + 1) {
		memmove(&list[i + 1], &list[j], (*n - j) * sizeof(*list));
		*n -= j - i - 1;
	}
	list[i].disk = r->disk;
	list[i].off = off;
	list[i].end = end;
	return dropped;
}

int proto_durable_check(const struct proto_range *list, uint32_t n, const uint64_t *size,
			uint32_t ndisks)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (list[i].disk >= ndisks || list[i].off >= list[i].end ||
		    list[i].end > size[list[i].disk])
			return -1;
		if (i && (list[i - 1].disk > list[i].disk ||
			  (list[i - 1].disk == list[i].disk && list[i - 1].end >= list[i].off)))
			return -1;
	}
	return 0;
}
