/*
 * plan.c - before any data moves: the sources mapped (an image by its
 * allocation map and partition table), each source given its destination
 * disk, the plan shown and agreed with the destination, and the session's
 * identity (new, or continued from the state file). It decides per disk
 * what a pass compares and where it sends from; it never sends data.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent/mig.h"
#include "common/common.h"
#include "disk/ptable.h"
#include "image/image.h"

static const char *table_name(const struct bm_disk *d)
{
	return !strcmp(d->table, "gpt") ? "GPT" : !strcmp(d->table, "dos") ? "MBR" : "none";
}

/* ---- mapping ------------------------------------------------------------ */

int mig_map_disks(struct mig *m, const struct proto_inventory *inv)
{
	char have[400];
	size_t o = 0;
	uint32_t i, j, k, next = 0;

	for (k = 0; k < inv->ndisks && o < sizeof(have); k++) {
		char sz[32];

		o += (size_t)snprintf(have + o, sizeof(have) - o, "%s%s (%s)", k ? ", " : "",
				      inv->disks[k].name,
				      fmt_bytes(inv->disks[k].size, sz, sizeof(sz)));
	}
	if (inv->ndisks == 0)
		snprintf(have, sizeof(have), "no disks at all");
	for (i = 0; i < m->n; i++) {
		struct src *s = &m->s[i];
		int found = 0;

		if (!s->dst[0]) {
			/* The next destination disk not named explicitly. */
			for (; next < inv->ndisks; next++) {
				int taken = 0;

				for (j = 0; j < m->n; j++)
					if (!strcmp(m->s[j].dst, inv->disks[next].name))
						taken = 1;
				if (!taken)
					break;
			}
			if (next >= inv->ndisks)
				return mig_fail(m, "no destination disk left for %s: the destination has %s",
						s->path, have);
			snprintf(s->dst, sizeof(s->dst), "%s", inv->disks[next++].name);
		}
		for (k = 0; k < inv->ndisks; k++)
			if (!strcmp(inv->disks[k].name, s->dst))
				found = 1;
		if (!found) {
			size_t l = strlen(s->dst);

			if (l > 1 && s->dst[l - 1] >= '0' && s->dst[l - 1] <= '9')
				return mig_fail(m, "destination %s looks like a partition; name a whole "
					       "disk: the destination has %s", s->dst, have);
			return mig_fail(m, "destination disk %s does not exist: the destination has %s",
					s->dst, have);
		}
		for (j = 0; j < i; j++)
			if (!strcmp(m->s[j].dst, s->dst))
				return mig_fail(m, "destination disk %s is named for both %s and %s",
						s->dst, m->s[j].path, s->path);
	}
	return 0;
}

/* ---- the plan ------------------------------------------------------------ */

/* Appends to a JSON text being built in buf; clipped (and so invalid)
 * only past cap, which the callers size for their worst case. */
static void jcat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	*len = n < 0 ? cap : *len + (size_t)n;
}

/* The plan event's "parts" and "lvs": what the text plan prints, one
 * object per partition and per logical volume. NULL if out of memory. */
static char *plan_json_lists(const struct bm_disk *d, char **lvs)
{
	const size_t cap_p = d->nparts * 1024 + 3, cap_l = d->nlvs * 1536 + 3;
	char *p = malloc(cap_p), *l = malloc(cap_l), s1[200], s2[200], s3[200], s4[200];
	size_t i, np = 0, nl = 0;

	if (!p || !l) {
		free(p);
		free(l);
		return NULL;
	}
	jcat(p, cap_p, &np, "[");
	for (i = 0; i < d->nparts; i++) {
		const struct bm_part *x = &d->parts[i];

		jcat(p, cap_p, &np,
		     "%s{\"number\":%d,\"fstype\":%s,\"size\":%llu,\"method\":%s,"
		     "\"send\":%llu,\"uuid\":%s,\"note\":%s}",
		     i ? "," : "", x->number, json_str(x->fstype, s1, sizeof(s1)),
		     (unsigned long long)x->size, json_str(bm_method_name(x->method), s2, sizeof(s2)),
		     (unsigned long long)x->used_bytes, json_str(x->uuid, s3, sizeof(s3)),
		     json_str(x->note, s4, sizeof(s4)));
	}
	jcat(p, cap_p, &np, "]");
	jcat(l, cap_l, &nl, "[");
	for (i = 0; i < d->nlvs && i < BM_MAX_LVS; i++) {
		const struct bm_lv *x = &d->lvs[i];
		char s5[200], s6[200];

		jcat(l, cap_l, &nl,
		     "%s{\"vg\":%s,\"name\":%s,\"part\":%d,\"fstype\":%s,\"size\":%llu,"
		     "\"send\":%llu,\"method\":%s,\"note\":%s}",
		     i ? "," : "", json_str(x->vg, s5, sizeof(s5)), json_str(x->name, s6, sizeof(s6)),
		     x->part, json_str(x->fstype, s1, sizeof(s1)), (unsigned long long)x->size,
		     (unsigned long long)x->used_bytes,
		     json_str(bm_method_name(x->method), s2, sizeof(s2)),
		     json_str(x->note, s4, sizeof(s4)));
	}
	jcat(l, cap_l, &nl, "]");
	*lvs = l;
	return p;
}

void mig_print_plan(struct mig *m, const char *to)
{
	char a[32], b[32], c[32], j1[300], j2[300], how[BM_NOTE_MAX + 48];
	uint32_t i;
	size_t p;

	for (i = 0; i < m->n; i++) {
		const struct bm_disk *d = &m->s[i].bm;

		if (m->json) {
			char sz[32], snd[32], nparts[16], tbl[16];

			snprintf(sz, sizeof(sz), "%llu", (unsigned long long)d->size);
			snprintf(snd, sizeof(snd), "%llu", (unsigned long long)d->map_bytes);
			snprintf(nparts, sizeof(nparts), "%zu", d->nparts);
			char *parts, *lvs = NULL;

			snprintf(tbl, sizeof(tbl), "\"%s\"", d->table[0] ? d->table : "none");
			parts = plan_json_lists(d, &lvs);
			progress_event(&m->sh->pg, "plan", "source", json_str(d->path, j1, sizeof(j1)),
				       "destination", json_str(m->s[i].dst, j2, sizeof(j2)),
				       "size", sz, "table", tbl, "partitions", nparts, "send", snd,
				       parts ? "parts" : NULL, parts, "lvs", lvs, NULL);
			free(parts);
			free(lvs);
			continue;
		}
		printf("%s -> %s:%s   %s (%llu bytes), table %s%s%s, send %s\n", d->path, to,
		       m->s[i].dst, fmt_bytes(d->size, a, sizeof(a)), (unsigned long long)d->size,
		       table_name(d), d->fstype[0] ? (m->s[i].img ? ", image " : ", filesystem ") : "",
		       d->fstype, fmt_bytes(d->map_bytes, b, sizeof(b)));
		for (p = 0; p < d->nparts; p++) {
			const struct bm_part *x = &d->parts[p];

			printf("   part %-3d %-6s %10s  %-12s send %10s%s%s\n", x->number,
			       x->fstype[0] ? x->fstype : "-", fmt_bytes(x->size, a, sizeof(a)),
			       bm_method_name(x->method), fmt_bytes(x->used_bytes, c, sizeof(c)),
			       x->uuid[0] ? "  UUID " : "", x->uuid);
			if (x->note[0]) {
				bm_describe(x->method, x->note, how, sizeof(how));
				printf("            %s\n", how);
			}
		}
		/* The logical volumes inside a PV, each by its own filesystem. */
		for (p = 0; p < d->nlvs && p < BM_MAX_LVS; p++) {
			const struct bm_lv *l = &d->lvs[p];

			bm_describe(l->method, l->note, how, sizeof(how));
			printf("     LV %s/%s (part %d) %-6s %10s  send %10s  %s\n", l->vg, l->name,
			       l->part, l->fstype[0] ? l->fstype : "-", fmt_bytes(l->size, a, sizeof(a)),
			       fmt_bytes(l->used_bytes, c, sizeof(c)), how);
		}
	}
	fflush(stdout);
}

/* The pass's known ranges: each disk's prefix, then the list. */
static void set_known(struct shared *sh, const uint64_t *prefix, const struct proto_range *list,
		      uint32_t nlist, uint32_t n, int cmp)
{
	uint32_t i, j, k = 0;

	for (i = 0; i < n; i++) {
		if (prefix[i]) {
			sh->known[k].disk = i;
			sh->known[k].off = 0;
			sh->known[k].end = prefix[i];
			k++;
		}
		for (j = 0; j < nlist; j++)
			if (list[j].disk == i && list[j].off > prefix[i] && k < KNOWN_MAX)
				sh->known[k++] = list[j];
	}
	sh->nknown = k;
	sh->known_cmp = cmp;
}

/*
 * Sends PLAN; from PLAN_OK decides what the pass skips, compares and
 * sends: a destination that still holds our session is trusted with
 * what it says is durable (prefixes and ranges) and the rest is sent;
 * one that lost it (rebooted, receiver restarted) is compared by hashes
 * over what we recorded as durable. A list from the destination that
 * breaks its rules is not trusted: everything past the prefixes is sent.
 */
int mig_send_plan(struct mig *m, int sync_all)
{
	static struct proto_plan_ok ok;
	struct shared *sh = m->sh;
	uint64_t prefix[PROTO_MAX_DISKS], size[PROTO_MAX_DISKS], known = 0;
	struct proto_frame f;
	struct wbuf w;
	uint32_t i;
	int r;

	wbuf_init(&w, m->ac->txbuf, sizeof(m->ac->txbuf));
	if ((r = proto_enc_plan(&w, &m->plan)) || (r = agent_send(m->ac, &w))) {
		m->lost = 1;
		return mig_fail(m, "sending the plan: %s", strerror(-r));
	}
	r = agent_recv(m->ac, &f, 60000);
	if (r != 1) {
		m->lost = 1;
		return mig_fail(m, "no answer to the plan from the destination");
	}
	if (f.type == PROTO_ERROR) {
		agent_error_frame(&f, m->err, sizeof(m->err));
		return -1;
	}
	if (proto_dec_plan_ok(&f, &ok) || ok.n != m->plan.ndisks)
		return mig_fail(m, "unexpected %s in answer to the plan", proto_type_name(f.type));
	for (i = 0; i < ok.n; i++) {
		m->plan.disks[i].dst_size = ok.dst_size[i];
		size[i] = m->s[i].bm.size;
		/* From the destination, so bounded by its disk, and by ours. */
		prefix[i] = ok.committed[i] < size[i] ? ok.committed[i] : size[i];
	}
	pthread_mutex_lock(&sh->lock);
	if (sync_all) {
		sh->nknown = 0;
		sh->known_cmp = 1;
	} else if (ok.resumed) {
		if (ok.ndone && proto_durable_check(ok.done, ok.ndone, size, ok.n)) {
			log_error("the destination's list of durable ranges is not in order or "
				  "outside the disks; sending everything past its prefixes again");
			ok.ndone = 0;
		}
		set_known(sh, prefix, ok.done, ok.ndone, ok.n, 0);
		/* What is durable is what the destination holds. */
		for (i = 0; i < ok.n; i++)
			sh->st.d[i].acked = prefix[i];
		sh->st.ndone = ok.ndone;
		memcpy(sh->st.done, ok.done, ok.ndone * sizeof(ok.done[0]));
	} else {
		for (i = 0; i < ok.n; i++)
			prefix[i] = sh->st.d[i].acked;
		set_known(sh, prefix, sh->st.done, sh->st.ndone, ok.n, 1);
	}
	for (i = 0; i < sh->nknown; i++)
		known += sh->known[i].end - sh->known[i].off;
	pthread_mutex_unlock(&sh->lock);
	if (sync_all)
		mig_known_all(m);
	m->flush_seq = m->flush_acked = 0;
	m->ring_head = m->ring_tail = 0;
	m->since_flush = 0;
	m->npend = 0;
	if (!sync_all && known) {
		char sz[32];

		log_info("resuming session %016llx: %s, %s %s", (unsigned long long)m->plan.session,
			 ok.resumed ? "trusting what the destination committed" : "session lost",
			 fmt_bytes(known, sz, sizeof(sz)),
			 ok.resumed ? "skipped" : "to compare by hashes");
	}
	return 0;
}


/* Maps an image: its allocated chunks, its partition table for the plan. */
/* buf holds READ_MAX bytes, at least the partition table region. */
int mig_image_probe(struct src *s, uint32_t chunk, uint8_t *buf, char *err, size_t errcap)
{
	struct img_info info;
	struct bm_disk *d = &s->bm;
	enum ptable_kind kind = PTABLE_NONE;
	char perr[PTABLE_ERR_LEN];
	uint64_t c;
	int r;

	if (!s->img && (r = img_open(s->path, s->format[0] ? s->format : NULL, &s->img, err,
				     errcap)))
		return r;
	img_info(s->img, &info);
	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "%s", s->path);
	d->size = info.virtual_size;
	d->lsec = 512;
	if (d->size == 0 || d->size % 512) {
		snprintf(err, errcap, "%s: virtual size %llu is not a whole number of 512-byte "
			 "sectors", s->path, (unsigned long long)d->size);
		return -EINVAL;
	}
	d->chunk = chunk;
	d->nchunks = (d->size + chunk - 1) / chunk;
	d->map = calloc((size_t)((d->nchunks + 7) / 8), 1);
	if (!d->map) {
		snprintf(err, errcap, "%s: no memory for the allocation map", s->path);
		return -ENOMEM;
	}
	if ((r = img_alloc_map(s->img, chunk, d->map, d->nchunks, err, errcap)))
		return r;
	for (c = 0; c < d->nchunks; c++)
		if (bm_test(d, c))
			d->map_bytes += (c + 1) * chunk > d->size ? d->size - c * chunk : chunk;
	/* The first MiB holds the partition table, if any. */
	if (mig_src_read(s, buf, d->size < PTABLE_REGION_LEN ? (size_t)d->size : PTABLE_REGION_LEN,
			 0, err, errcap) == 0 &&
	    ptable_detect(buf, d->size < PTABLE_REGION_LEN ? (size_t)d->size : PTABLE_REGION_LEN,
			  512, &kind, perr, sizeof(perr)) == 0)
		snprintf(d->table, sizeof(d->table), "%s",
			 kind == PTABLE_GPT ? "gpt" : kind == PTABLE_MBR ? "dos" : "");
	snprintf(d->fstype, sizeof(d->fstype), "%s", info.format);
	log_info("%s: %s%s%s, virtual %llu bytes, %llu allocated%s%s", s->path, info.format,
		 info.subformat[0] ? " " : "", info.subformat, (unsigned long long)info.virtual_size,
		 (unsigned long long)info.allocated, info.warnings[0] ? "; " : "", info.warnings);
	return 0;
}

void mig_src_free(struct src *s)
{
	if (s->img) {
		free(s->bm.map);
		s->bm.map = NULL;
		img_close(s->img);
		s->img = NULL;
	} else {
		bm_free(&s->bm);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->dfd >= 0)
		close(s->dfd);
	s->fd = s->dfd = -1;
}

int mig_load_or_start_state(struct mig *m, const struct agent_target *t, const char *dir,
			    int restart)
{
	static struct mstate old;
	char fp[TLS_FP_TEXT_MAX], err[400];
	uint32_t i;
	int r;

	tls_token_fingerprint(&t->token, fp, sizeof(fp));
	memset(&m->sh->st, 0, sizeof(m->sh->st));
	/* The destination is who holds the token, wherever it is reached
	 * (a proxy, a new address after a reboot). */
	snprintf(m->sh->st.dest, sizeof(m->sh->st.dest), "%s", fp);
	m->sh->st.chunk = m->plan.chunk;
	m->sh->st.n = m->n;
	for (i = 0; i < m->n; i++) {
		snprintf(m->sh->st.d[i].src, sizeof(m->sh->st.d[i].src), "%s", m->s[i].path);
		snprintf(m->sh->st.d[i].dst, sizeof(m->sh->st.d[i].dst), "%s", m->s[i].dst);
		m->sh->st.d[i].size = m->s[i].bm.size;
		m->sh->st.d[i].lsec = m->s[i].bm.lsec;
	}
	if (dir[0])
		state_path(dir, m->sh->st.dest, m->sh->state_file, sizeof(m->sh->state_file));
	r = m->sh->state_file[0] && !restart ? state_load(m->sh->state_file, &old, err, sizeof(err)) : -ENOENT;
	if (r == -EBADMSG)
		return mig_fail(m, "%s; move it away or run with --restart to start over", err);
	if (r == 0) {
		char why[400] = "";

		if (old.n != m->n || old.chunk != m->plan.chunk || strcmp(old.dest, m->sh->st.dest))
			snprintf(why, sizeof(why), "%u disk(s) at %u-byte chunks to %s", old.n,
				 old.chunk, old.dest);
		/* The same disk with another size: resized, or not the same
		 * disk at all; the destination holds a part of the old one. */
		for (i = 0; !why[0] && i < m->n; i++)
			if (!strcmp(old.d[i].src, m->sh->st.d[i].src) &&
			    old.d[i].size != m->sh->st.d[i].size)
				return mig_fail(m, "%s changed size since the unfinished migration "
					       "recorded in %s: %llu bytes now, %llu then; what the "
					       "destination holds is of the old disk: run with --restart "
					       "to start over", m->s[i].path, m->sh->state_file,
					       (unsigned long long)m->sh->st.d[i].size,
					       (unsigned long long)old.d[i].size);
		for (i = 0; !why[0] && i < m->n; i++)
			if (strcmp(old.d[i].src, m->sh->st.d[i].src) || strcmp(old.d[i].dst, m->sh->st.d[i].dst) ||
			    old.d[i].size != m->sh->st.d[i].size || old.d[i].lsec != m->sh->st.d[i].lsec)
				if (snprintf(why, sizeof(why), "%s (%llu bytes) -> %s", old.d[i].src,
					     (unsigned long long)old.d[i].size, old.d[i].dst) < 0)
					why[0] = '?';
		if (why[0])
			return mig_fail(m, "%s holds an unfinished migration of %s, not this one; "
				       "run with --restart to start over", m->sh->state_file, why);
		m->plan.session = old.session;
		m->plan.seed = old.seed;
		for (i = 0; i < m->n; i++)
			m->sh->st.d[i].acked = old.d[i].acked;
		m->sh->st.ndone = old.ndone;
		memcpy(m->sh->st.done, old.done, old.ndone * sizeof(old.done[0]));
		m->sh->st.nzeroed = old.nzeroed;
		memcpy(m->sh->st.zeroed, old.zeroed, old.nzeroed * sizeof(old.zeroed[0]));
		log_info("continuing the migration recorded in %s", m->sh->state_file);
	} else {
		if (getrandom(&m->plan.session, sizeof(m->plan.session), 0) < 0 ||
		    getrandom(&m->plan.seed, sizeof(m->plan.seed), 0) < 0)
			return mig_fail(m, "getrandom: %s", strerror(errno));
		if (!m->plan.session)
			m->plan.session = 1;
	}
	m->sh->st.session = m->plan.session;
	m->sh->st.seed = m->plan.seed;
	/* Without a state file nothing of this run could be resumed: the
	 * next run would start a new session and send everything again. */
	if ((r = mig_save_state(m)))
		return mig_fail(m, "cannot write the state file: %s; a migration that cannot record "
				   "its progress cannot resume: free space there or choose another "
				   "--state-dir", m->sh->state_err);
	return 0;
}
