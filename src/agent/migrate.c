/*
 * migrate.c - `ferry migrate`, `ferry sync` and `ferry import`: the
 * options, then the run in order - sources probed, destination reached,
 * plan agreed, passes with reconnects, incremental passes and cutover,
 * verify, finish - and its summary. Each phase lives in its own file
 * (see mig.h); this one owns the run's buffers and never touches the wire
 * itself except to connect. The source is only ever read.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/check.h"
#include "agent/mig.h"
#include "agent/opts.h"
#include "common/common.h"
#include "image/image.h"
#include "track/track.h"

#define FLUSH_EVERY_DEFAULT (256ull << 20)

static struct src srcs[PROTO_MAX_DISKS];
static struct agent_conn conn;
static struct shared shared;
/* Stream 0's buffers; the other streams allocate theirs. Aligned for
 * O_DIRECT reads of block devices. */
static uint8_t rbuf0[READ_MAX] __attribute__((aligned(4096)));
static uint8_t zout0[ZOUT_MAX];
static uint64_t diffs0[CMP_WINDOW * PROTO_HASH_MAX];

int mig_fail(struct mig *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->err, sizeof(m->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int inspect_images(const char *const *specs, size_t n, const char *format, int json)
{
	char err[AGENT_ERR_MAX], a[32], b[32], c[32], path[SRC_PATH_MAX];
	int rc = AGENT_EXIT_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *eq = strrchr(specs[i], '=');
		size_t l = eq ? (size_t)(eq - specs[i]) : strlen(specs[i]);
		struct img_info info;
		struct img *im;

		snprintf(path, sizeof(path), "%.*s", (int)l, specs[i]);
		if (img_open(path, format, &im, err, sizeof(err))) {
			fprintf(stderr, "ferry: error: %s\n", err);
			rc = AGENT_EXIT_FAIL;
			continue;
		}
		img_info(im, &info);
		if (json) {
			char j1[600], j2[400], j3[600];

			printf("{\"event\":\"image\",\"path\":%s,\"format\":\"%s\",\"subformat\":\"%s\","
			       "\"virtual_size\":%llu,\"file_size\":%llu,\"allocated\":%llu,"
			       "\"features\":%s,\"warnings\":%s}\n",
			       json_str(path, j1, sizeof(j1)), info.format, info.subformat,
			       (unsigned long long)info.virtual_size, (unsigned long long)info.file_size,
			       (unsigned long long)info.allocated,
			       json_str(info.features, j2, sizeof(j2)),
			       json_str(info.warnings, j3, sizeof(j3)));
		} else {
			printf("%s: %s%s%s, virtual size %s (%llu bytes), file %s, allocated %s%s%s%s%s\n",
			       path, info.format, info.subformat[0] ? " " : "", info.subformat,
			       fmt_bytes(info.virtual_size, a, sizeof(a)),
			       (unsigned long long)info.virtual_size,
			       fmt_bytes(info.file_size, b, sizeof(b)),
			       fmt_bytes(info.allocated, c, sizeof(c)),
			       info.features[0] ? "; " : "", info.features,
			       info.warnings[0] ? "; warning: " : "", info.warnings);
		}
		img_close(im);
	}
	return rc;
}

static int run(int argc, char **argv, int sync_mode, int import_mode)
{
	static struct mig m;
	static struct proto_report rep;
	static struct agent_opts o;
	struct agent_target t;
	struct proto_inventory inv;
	const char *specs[PROTO_MAX_DISKS];
	char paths[PROTO_MAX_DISKS][SRC_PATH_MAX], err[AGENT_ERR_MAX];
	uint64_t t0, total_size = 0, unused = 0, send_total = 0, chunk;
	int rc = AGENT_EXIT_FAIL, planned = 0;
	unsigned retries, sync_interval, freeze_timeout;
	size_t nspec, i;

	/* Before anything slow (the checks, the probes, a destination still
	 * booting): SIGUSR1 then only asks for the cutover after the first
	 * pass, SIGINT/SIGTERM stop at the next safe point. */
	mig_catch_signals();
	if ((rc = agent_opts_parse(sync_mode ? AGENT_CMD_SYNC : import_mode ? AGENT_CMD_IMPORT :
				   AGENT_CMD_MIGRATE, argc, argv, &o)))
		return rc > 0 ? AGENT_EXIT_OK : AGENT_EXIT_USAGE;
	rc = AGENT_EXIT_FAIL;
	if (sync_mode && (o.sync_interval || o.freeze || o.grow)) {
		fprintf(stderr, "ferry: sync runs one pass: --sync-interval, --freeze and --grow "
				"belong to ferry migrate\n");
		return AGENT_EXIT_USAGE;
	}
	memset(&t, 0, sizeof(t));
	memset(&m, 0, sizeof(m));
	memset(&shared, 0, sizeof(shared));
	pthread_mutex_init(&shared.lock, NULL);
	m.sh = &shared;
	m.rbuf = rbuf0;
	m.zout = zout0;
	m.diffs = diffs0;
	m.t = &t;
	m.json = o.json;
	m.skip_bad = o.skip_bad;
	m.flush_every = o.flush_mib << 20;
	m.zlevel = (int)o.zlevel;
	m.sh->bw_rate = o.bw_rate;
	t.wait_s = (int)o.wait;
	chunk = o.chunk_kib * 1024;
	retries = (unsigned)o.retries;
	sync_interval = (unsigned)o.sync_interval;
	freeze_timeout = o.freeze_timeout ? (unsigned)o.freeze_timeout : 1;
	nspec = o.ndisks;
	memcpy(specs, o.disks, nspec * sizeof(*specs));
	if (import_mode) {
		/* ferry import IMAGE[=DST]... [--disk DST]...: the images are the
		 * sources; each --disk names the destination of the next image
		 * that has no =DST. */
		static char joined[PROTO_MAX_DISKS][SRC_PATH_MAX + PROTO_NAME_MAX + 2];
		size_t nd = o.ndisks, k = 0;
		int a;

		nspec = 0;
		for (a = o.argi; a < argc; a++) {
			if (nspec == PROTO_MAX_DISKS) {
				fprintf(stderr, "ferry: at most %d images\n", PROTO_MAX_DISKS);
				return AGENT_EXIT_USAGE;
			}
			specs[nspec++] = argv[a];
		}
		if (nspec == 0) {
			fprintf(stderr, "ferry: import: name an image file\n");
			agent_opts_usage(AGENT_CMD_IMPORT, stderr);
			return AGENT_EXIT_USAGE;
		}
		for (i = 0; i < nspec && k < nd; i++) {
			if (strchr(specs[i], '='))
				continue;
			snprintf(joined[i], sizeof(joined[i]), "%s=%s", specs[i], o.disks[k++]);
			specs[i] = joined[i];
		}
		if (k < nd) {
			fprintf(stderr, "ferry: import: more --disk destinations than images\n");
			return AGENT_EXIT_USAGE;
		}
		if (o.inspect)
			return inspect_images(specs, nspec, o.format, m.json);
	}
	if (agent_parse_target(o.to, o.listen, o.proxy, &t, err, sizeof(err)) ||
	    agent_load_token(o.token, o.token_file, &t.token, err, sizeof(err))) {
		fprintf(stderr, "ferry: %s\n", err);
		return AGENT_EXIT_USAGE;
	}
	t0 = time_now_ms();
	/* A session of ours that just died may still hold the destination:
	 * the checks and the migration wait for it to let go. */
	t.busy_s = 30;
	if (!sync_mode && !import_mode) {
		/* The checks of `ferry check` first (the seed tool's --check):
		 * a FAIL stops here, before anything is sent. */
		static struct check_result cres;
		struct check_opts co = { .target = &t, .disks = specs, .ndisks = nspec,
					 .chunk = (uint32_t)chunk, .out = stdout, .json = m.json };

		progress_init(&m.sh->pg, m.json, 0);
		if (check_run(&co, &cres) == 0 && cres.count[CHECK_FAIL] && !mig_got_stop) {
			if (!o.ignore_check) {
				fprintf(stderr, "ferry: error: %u check(s) failed (above): fix them, or "
						"run with --ignore-check\n", cres.count[CHECK_FAIL]);
				mem_wipe(&t.token, sizeof(t.token));
				return AGENT_EXIT_CHECK;
			}
			log_info("%u check(s) failed; going on (--ignore-check)",
				 cres.count[CHECK_FAIL]);
		}
	}
	if (mig_got_stop)
		goto out;
	progress_set_interval(o.progress_s ? (unsigned)o.progress_s * 1000u : 0);
	m.t_start_ms = t0;
	m.sh->bw_burst = (uint32_t)chunk;
	m.sh->bw_tokens = (double)chunk;
	m.sh->bw_last_ns = mig_now_ns();
	m.s = srcs;
	m.ac = &conn;
	progress_init(&m.sh->pg, m.json, 0);

	/* 1. The sources, probed before anything goes on the wire; what the
	 * running system has in its page cache goes to the disks first. */
	if (nspec == 0) {
		if (!mig_got_stop && src_discover(paths, PROTO_MAX_DISKS, &nspec, err, sizeof(err))) {
			mig_fail(&m, "%s", err);
			goto out;
		}
		for (i = 0; i < nspec; i++)
			srcs[i].dst[0] = 0, snprintf(srcs[i].path, SRC_PATH_MAX, "%s", paths[i]);
	} else {
		for (i = 0; i < nspec; i++) {
			const char *eq = strrchr(specs[i], '=');
			size_t l = eq ? (size_t)(eq - specs[i]) : strlen(specs[i]);

			if (l == 0 || l >= SRC_PATH_MAX || (eq && (!eq[1] || strlen(eq + 1) >= PROTO_NAME_MAX))) {
				fprintf(stderr, "ferry: --disk %s: want SRC or SRC=DST\n", specs[i]);
				return AGENT_EXIT_USAGE;
			}
			memcpy(srcs[i].path, specs[i], l);
			srcs[i].path[l] = 0;
			snprintf(srcs[i].dst, sizeof(srcs[i].dst), "%s", eq ? eq + 1 : "");
		}
	}
	m.n = (uint32_t)nspec;
	/* Change tracking starts before the sync and anything read: a block
	 * allocated before it is on its bitmap once synced, so the first pass
	 * sends it; one written after it is in the first dirty map. */
	if (!sync_mode && !import_mode && (sync_interval || o.freeze) && !o.no_track)
		mig_track_start(&m);
	sync();
	for (i = 0; i < m.n; i++) {
		char whole[SRC_PATH_MAX];

		srcs[i].fd = -1;
		srcs[i].dfd = -1;
		srcs[i].img = NULL;
		pthread_mutex_init(&srcs[i].img_lock, NULL);
		whole[0] = 0;
		if (mig_got_stop) {
			m.n = (uint32_t)i;
			goto out;
		}
		if (!import_mode && src_is_partition(srcs[i].path, whole, sizeof(whole))) {
			mig_fail(&m, "%s is a partition, not a disk: give the whole disk%s%s", srcs[i].path,
				 whole[0] ? " " : "", whole);
			goto out;
		}
		if (import_mode) {
			snprintf(srcs[i].format, sizeof(srcs[i].format), "%s", o.format ? o.format : "");
			if (mig_image_probe(&srcs[i], (uint32_t)chunk, rbuf0, err, sizeof(err))) {
				mig_fail(&m, "%s", err);
				goto out;
			}
		} else {
			if (bm_probe(srcs[i].path, (uint32_t)chunk, &srcs[i].bm, err, sizeof(err))) {
				mig_fail(&m, "%s", err);
				goto out;
			}
			srcs[i].fd = open(srcs[i].path, O_RDONLY | O_CLOEXEC);
			if (srcs[i].fd < 0) {
				mig_fail(&m, "%s: %s", srcs[i].path, strerror(errno));
				goto out;
			}
			{
				struct stat st;

				if (fstat(srcs[i].fd, &st) == 0 && S_ISBLK(st.st_mode))
					srcs[i].dfd = open(srcs[i].path,
							   O_RDONLY | O_DIRECT | O_CLOEXEC);
			}
		}
		total_size += srcs[i].bm.size;
		unused += srcs[i].bm.size - srcs[i].bm.map_bytes;
		send_total += srcs[i].bm.map_bytes;
	}

	/* 2. The destination, the mapping, the state of an earlier run. */
	if (agent_connect(&t, &conn, &inv, err, sizeof(err))) {
		mig_fail(&m, "%s", err);
		goto out;
	}
	if (mig_map_disks(&m, &inv))
		goto out_conn;
	mig_print_plan(&m, conn.peer);
	m.plan.chunk = (uint32_t)chunk;
	m.nstreams = mig_streams_for(&m, (uint32_t)o.streams);
	m.plan.streams = (uint8_t)m.nstreams;
	if (m.nstreams > 1)
		log_info("%u streams", m.nstreams);
	m.plan.flags = (uint8_t)((o.checksum ? PROTO_PLAN_CHECKSUM : 0) | (o.grow ? PROTO_PLAN_GROW : 0));
	m.plan.ndisks = m.n;
	for (i = 0; i < m.n; i++) {
		struct proto_plan_disk *d = &m.plan.disks[i];
		const struct bm_disk *b = &srcs[i].bm;

		snprintf(d->dst, sizeof(d->dst), "%s", srcs[i].dst);
		snprintf(d->src, sizeof(d->src), "%.*s", (int)sizeof(d->src) - 1, b->path);
		d->src_size = b->size;
		d->lsec = b->lsec;
		d->table = !strcmp(b->table, "gpt") ? PROTO_TABLE_GPT :
			   !strcmp(b->table, "dos") ? PROTO_TABLE_MBR : PROTO_TABLE_NONE;
		d->send_bytes = b->map_bytes;
	}
	if (mig_load_or_start_state(&m, &t, o.state_dir, o.restart))
		goto out_conn;

	/* 3. The passes: the destination checks the plan before opening a
	 * disk; a lost connection is retried with backoff and resumed. */
	for (unsigned attempt = 0, backoff = 1;; attempt++) {
		if (!conn.tls && agent_connect(&t, &conn, &inv, err, sizeof(err))) {
			mig_fail(&m, "%s", err);
			m.lost = 1;
		} else if (mig_send_plan(&m, sync_mode) == 0) {
			if (!planned++)
				mig_track_planned(&m);
			progress_init(&m.sh->pg, m.json, sync_mode ? send_total : send_total);
			m.sh->pg.phase = sync_mode ? "comparing" : "sending";
			if (mig_transfer(&m) == 0)
				break;
		}
		if (!m.lost || attempt >= retries || mig_got_stop)
			goto out_conn;
		if (conn.tls) {
			tls_close(conn.tls, 500);
			conn.tls = NULL;
		}
		progress_break(&m.sh->pg);
		log_info("%s; reconnecting in %u s (attempt %u of %u)", m.err, backoff,
			 attempt + 1, retries);
		if (m.json) {
			char a1[16], e1[AGENT_ERR_MAX + 64];

			snprintf(a1, sizeof(a1), "%u", attempt + 1);
			progress_event(&m.sh->pg, "reconnect", "attempt", a1, "reason",
				       json_str(m.err, e1, sizeof(e1)), NULL);
		}
		/* A stop during the wait ends it: nothing is in flight. */
		for (unsigned w = 0; w < backoff * 10 && !mig_got_stop; w++)
			usleep(100000);
		if (mig_got_stop)
			goto out_conn;
		backoff = backoff < 16 ? backoff * 2 : 30;
		m.lost = 0;
		m.err[0] = 0;
	}
	progress_tick(&m.sh->pg, 1);
	progress_break(&m.sh->pg);
	if (m.json) {
		char a1[32];

		snprintf(a1, sizeof(a1), "%llu", (unsigned long long)m.sh->pg.done);
		progress_event(&m.sh->pg, sync_mode ? "synced" : "done", "sent", a1, NULL);
	}
	if (sync_mode) {
		m.nhashed = m.n;
		mig_report_pass(&m, 1, t0);
		agent_bye(&conn);
		rc = AGENT_EXIT_OK;
		mig_summary(&m, "synced", t0, total_size, unused);
		goto out;
	}

	/* 4. Incremental passes while the source runs, then the cutover. */
	if (sync_interval && mig_sync_loop(&m, sync_interval) < 0)
		goto out_conn;
	if (mig_got_stop) {
		agent_bye(&conn);
		rc = AGENT_EXIT_OK;
		mig_summary(&m, "interrupted: the destination stays in migration mode; run "
			    "ferry migrate again to continue", t0, total_size, unused);
		goto out;
	}
	if (o.freeze && mig_final_pass(&m, freeze_timeout))
		goto out_conn;

	/* 5. Verify, finish, hand off. */
	if (o.checksum && mig_verify(&m))
		goto out_conn;
	if (mig_finish(&m, o.handoff, (uint8_t)((o.grow ? PROTO_PLAN_GROW : 0) | o.adapt), &o.adapt_ip,
		       &rep))
		goto out_conn;
	tls_close(conn.tls, 2000);
	conn.tls = NULL;
	if (m.sh->state_file[0])
		state_remove(m.sh->state_file);
	if (o.adapt && rep.verdict == PROTO_FAIL) {
		/* Asked to adapt: a FAIL left the destination in migration mode. */
		snprintf(m.err, sizeof(m.err), "migrated, but the report after adapting has FAIL "
			 "lines: the destination stays in migration mode (ferry adapt)");
		goto out;
	}
	rc = AGENT_EXIT_OK;
	mig_summary(&m, rep.verdict == PROTO_FAIL ? "migrated, but the destination may not boot" :
		    "migrated", t0, total_size, unused);
	goto out;
out_conn:
	if (conn.tls) {
		tls_close(conn.tls, 1000);
		conn.tls = NULL;
	}
out:
	progress_break(&m.sh->pg);
	if (rc != AGENT_EXIT_OK && mig_got_stop) {
		/* Stopped inside a pass (or before the first): what the
		 * destination acknowledged as durable is in the state file. */
		if (m.sh->state_file[0])
			mig_save_state(&m);
		snprintf(m.err, sizeof(m.err), "interrupted by %s; %s%.400s: run the same command "
			 "again to resume", mig_got_stop == SIGINT ? "SIGINT" : "SIGTERM",
			 m.sh->state_file[0] ? "what the destination made durable is kept in " :
			 "nothing was sent in this run", m.sh->state_file);
	}
	if (rc != AGENT_EXIT_OK) {
		char e[AGENT_ERR_MAX + 64];

		if (m.json)
			progress_event(&m.sh->pg, "error", "message",
				       json_str(m.err, e, sizeof(e)), NULL);
		fprintf(stderr, "ferry: error: %s\n", m.err);
		mig_summary(&m, !mig_got_stop ? "failed" : m.sh->state_file[0] ?
			    "interrupted: the pass was cut; run again to resume" :
			    "interrupted before anything was sent", t0, total_size, unused);
	}
	track_stop(m.trk);
	for (i = 0; i < m.n; i++)
		mig_src_free(&srcs[i]);
	mem_wipe(&t.token, sizeof(t.token));
	return rc;
}

int cmd_migrate(int argc, char **argv)
{
	return run(argc, argv, 0, 0);
}

int cmd_sync(int argc, char **argv)
{
	return run(argc, argv, 1, 0);
}

int cmd_import(int argc, char **argv)
{
	return run(argc, argv, 0, 1);
}

