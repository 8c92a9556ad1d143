/*
 * finish.c - the end of a run: FINISH sent, the destination's report
 * read and shown, and the summary line (or NDJSON event) of what was read,
 * sent and skipped. It never sends data.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mig.h"
#include "common/common.h"

#define FINISH_MS (20 * 60 * 1000)	/* fsck + resize2fs of a big disk */

int mig_finish(struct mig *m, uint8_t handoff, uint8_t flags, const struct proto_adapt_ip *ip,
	       struct proto_report *rep)
{
	struct proto_finish fin = { flags, handoff, { 0, 0, 0, 0 }, 0, 0, { 0, 0, 0 } };
	struct proto_frame f;
	struct wbuf w;
	uint8_t b[64];
	uint32_t i;
	int r;

	/* What went as zeros for unreadable source blocks: the destination's
	 * report must not call this an exact copy. */
	pthread_mutex_lock(&m->sh->lock);
	for (i = 0; i < m->sh->st.nzeroed; i++)
		fin.zeroed += m->sh->st.zeroed[i].end - m->sh->st.zeroed[i].off;
	fin.nzeroed = m->sh->st.nzeroed;
	if (fin.nzeroed)
		fin.zfirst = m->sh->st.zeroed[0];
	pthread_mutex_unlock(&m->sh->lock);
	if (ip && ip->prefix) {
		fin.flags |= PROTO_ADAPT_IP;
		fin.ip = *ip;
	}
	wbuf_init(&w, b, sizeof(b));
	proto_enc_finish(&w, &fin);
	if (agent_send(m->ac, &w))
		return mig_fail(m, "connection lost before FINISH");
	for (;;) {
		/* Adapting runs initramfs tools: minutes per kernel under an
		   emulated CPU. */
		r = agent_recv(m->ac, &f, flags & PROTO_ADAPT_ON ? 3 * FINISH_MS : FINISH_MS);
		if (r != 1)
			return mig_fail(m, "no report from the destination after FINISH (%s)",
					r == 0 ? "connection closed" : strerror(-r));
		if (f.type == PROTO_FLUSHED)
			continue;
		break;
	}
	if (f.type == PROTO_ERROR) {
		agent_error_frame(&f, m->err, sizeof(m->err));
		return -1;
	}
	if (proto_dec_finished(&f, rep))
		return mig_fail(m, "unexpected %s after FINISH", proto_type_name(f.type));
	if (!m->json) {
		printf("destination report:\n");
		for (i = 0; i < rep->n; i++)
			printf("  %s  %s\n",
			       rep->line[i].level == PROTO_PASS ? "PASS" :
			       rep->line[i].level == PROTO_WARN ? "WARN" : "FAIL",
			       rep->line[i].text);
	} else {
		for (i = 0; i < rep->n; i++) {
			char t[600];

			progress_event(&m->sh->pg, "report",
				       "level", rep->line[i].level == PROTO_PASS ? "\"pass\"" :
				       rep->line[i].level == PROTO_WARN ? "\"warn\"" : "\"fail\"",
				       "text", json_str(rep->line[i].text, t, sizeof(t)), NULL);
		}
	}
	return 0;
}

/* Every source range that went as zeros, as a JSON array (malloc'd; NULL
 * when out of memory), and their bytes. */
static char *zeroed_json(struct mig *m, uint64_t *bytes)
{
	const struct mstate *st = &m->sh->st;
	size_t cap = 64 + (size_t)st->nzeroed * (SRC_PATH_MAX + 96), o = 0;
	char *j = malloc(cap), p[SRC_PATH_MAX + 16];
	uint32_t i;

	*bytes = 0;
	if (!j)
		return NULL;
	o += (size_t)snprintf(j + o, cap - o, "[");
	for (i = 0; i < st->nzeroed; i++) {
		const struct proto_range *r = &st->zeroed[i];

		*bytes += r->end - r->off;
		o += (size_t)snprintf(j + o, cap - o, "%s{\"source\":%s,\"offset\":%llu,\"length\":%llu}",
				      i ? "," : "",
				      json_str(r->disk < m->n ? m->s[r->disk].path : "?", p, sizeof(p)),
				      (unsigned long long)r->off, (unsigned long long)(r->end - r->off));
	}
	snprintf(j + o, cap - o, "]");
	return j;
}

void mig_summary(struct mig *m, const char *result, uint64_t t0, uint64_t total_size,
		 uint64_t unused)
{
	char a[32], b[32], c[32], d[32], e[32];
	double secs = (double)(time_now_ms() - t0) / 1000.0;
	uint64_t zbytes = 0;
	char *zj;
	uint32_t i;

	pthread_mutex_lock(&m->sh->lock);
	zj = zeroed_json(m, &zbytes);
	pthread_mutex_unlock(&m->sh->lock);

	if (m->json) {
		char r[512], s1[32], s2[32], s3[32], s4[32], s5[32], s6[32], s7[32], s8[32], s9[32],
			s10[32], f1[32], f2[32], f3[32], f4[32];

		/* Quoted and escaped whole: a result cut inside its quotes
		   ("interrupted: ...") made the line unparseable. */
		json_str(result, r, sizeof(r));
		snprintf(s1, sizeof(s1), "%llu", (unsigned long long)m->bytes_read);
		snprintf(s2, sizeof(s2), "%llu", (unsigned long long)m->bytes_sent);
		snprintf(s3, sizeof(s3), "%llu", (unsigned long long)unused);
		snprintf(s4, sizeof(s4), "%llu", (unsigned long long)m->zero_bytes);
		snprintf(s5, sizeof(s5), "%.3f", secs);
		snprintf(s6, sizeof(s6), "%llu", (unsigned long long)total_size);
		snprintf(s7, sizeof(s7), "%llu", (unsigned long long)m->resent);
		snprintf(s8, sizeof(s8), "%llu", (unsigned long long)m->z_total_in);
		snprintf(s9, sizeof(s9), "%llu", (unsigned long long)m->z_total_out);
		snprintf(s10, sizeof(s10), "%llu", (unsigned long long)zbytes);
		/* After a cutover: the freeze, and the final pass's cost (a NULL
		   key ends the list before them otherwise). */
		snprintf(f1, sizeof(f1), "%llu", (unsigned long long)m->freeze_ms);
		snprintf(f2, sizeof(f2), "%llu", (unsigned long long)m->final_read);
		snprintf(f3, sizeof(f3), "%llu", (unsigned long long)m->final_sent);
		snprintf(f4, sizeof(f4), "%.3f", (double)m->final_ms / 1000.0);
		progress_event(&m->sh->pg, "summary", "result", r, "disk_bytes", s6, "bytes_read", s1,
			       "bytes_sent", s2, "skipped_unused", s3, "skipped_zero", s4,
			       "resent", s7, "compressed_in", s8, "compressed_out", s9,
			       "unreadable_bytes", s10, "unreadable", zj ? zj : "[]", "exact",
			       zbytes ? "false" : "true", "seconds", s5,
			       m->have_final ? "freeze_ms" : NULL, f1, "final_bytes_read", f2,
			       "final_bytes_sent", f3, "final_seconds", f4, NULL);
	} else {
		fprintf(stderr,
			"ferry: %s: %u disk(s), %s in all; read %s, sent %s, skipped %s unused "
			"and %s of zeros; %.1f s\n",
			result, m->n, fmt_bytes(total_size, a, sizeof(a)),
			fmt_bytes(m->bytes_read, b, sizeof(b)), fmt_bytes(m->bytes_sent, c, sizeof(c)),
			fmt_bytes(unused, d, sizeof(d)), fmt_bytes(m->zero_bytes, e, sizeof(e)), secs);
	}
	if (m->have_final)
		fprintf(stderr, "ferry: cutover: frozen %.3f s; the final pass read %s and sent %s "
			"in %.3f s\n", (double)m->freeze_ms / 1000.0,
			fmt_bytes(m->final_read, a, sizeof(a)), fmt_bytes(m->final_sent, b, sizeof(b)),
			(double)m->final_ms / 1000.0);
	free(zj);
	if (!zbytes)
		return;
	/* Never to be mistaken for a copy: every range, also on stderr next
	 * to the log lines under --json. */
	pthread_mutex_lock(&m->sh->lock);
	fprintf(stderr, "ferry: the copy is not exact: %s in %u range(s) of the source could not "
		"be read and went as zeros (--skip-bad-sectors):\n",
		fmt_bytes(zbytes, a, sizeof(a)), m->sh->st.nzeroed);
	for (i = 0; i < m->sh->st.nzeroed; i++) {
		const struct proto_range *r = &m->sh->st.zeroed[i];

		fprintf(stderr, "ferry:   %s sectors %llu-%llu (bytes %llu to %llu)\n",
			r->disk < m->n ? m->s[r->disk].path : "?", (unsigned long long)(r->off / 512),
			(unsigned long long)((r->end - 1) / 512), (unsigned long long)r->off,
			(unsigned long long)r->end);
	}
	pthread_mutex_unlock(&m->sh->lock);
}
