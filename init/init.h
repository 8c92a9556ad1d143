/*
 * init.h - ferry-init: the live environment's PID 1 and the block
 * receiver it forks (also runnable as `ferry-init serve` on a host).
 * One file per boot phase; this header is what they share.
 */
#ifndef FERRY_INIT_H
#define FERRY_INIT_H

#include <stddef.h>
#include <stdint.h>

#include "disk/disk.h"
#include "net/net.h"
#include "proto/proto.h"
#include "tls/tls.h"

#define INIT_CMDLINE_MAX 4096	/* x86 COMMAND_LINE_SIZE is 2048 */
#define INIT_WARN_MAX 2048
#define INIT_IP_TEXT 46
#define INIT_IFNAME 16

enum init_mode {
	INIT_MODE_SERVE,
	INIT_MODE_CLEAN,
	INIT_MODE_RESCUE,
	INIT_MODE_ADAPT,
	INIT_MODE_RELAY,
};
/* ferry.adapt=: when ferry.mode=adapt adapts (PROTO_ADAPT_* flags). */
enum init_handoff {
	INIT_HANDOFF_REBOOT,
	INIT_HANDOFF_KEXEC,
	INIT_HANDOFF_POWEROFF,
	INIT_HANDOFF_SHELL,
};

/* ip= in the kernel's syntax, IPv4 only for static addresses. */
struct init_ip {
	int given;	/* ip= was on the command line */
	int dhcp;	/* ip=dhcp (or given without a client address) */
	int off;	/* ip=off / ip=none: no automatic configuration */
	char client[INIT_IP_TEXT], server[INIT_IP_TEXT], gw[INIT_IP_TEXT];
	char mask[INIT_IP_TEXT], dns0[INIT_IP_TEXT], dns1[INIT_IP_TEXT];
	char hostname[64];
	char dev[INIT_IFNAME];
};

struct init_config {
	int have_token;
	struct tls_token token;
	char listen_host[NET_ADDR_MAX];
	uint16_t listen_port;
	char connect[NET_ADDR_MAX];	/* reverse mode target, "" = off */
	enum init_mode mode;
	enum init_handoff handoff;
	char result[64];		/* result port device, "" = off */
	int loglevel;
	struct init_ip ip;
	uint8_t adapt;		/* ferry.adapt=: PROTO_ADAPT_ON [| DRY | FORCE] */
	struct net_allow_list relay_allow;	/* ferry.relay.allow= (empty: refuse all) */
	struct proto_adapt_ip adapt_ip;	/* ferry.adapt.ip= (prefix 0: none) */
};

void init_config_defaults(struct init_config *c);
/*
 * Parses a kernel command line (at most INIT_CMDLINE_MAX bytes). Unknown
 * words are ignored (they belong to the kernel); a bad ferry.* or ip=
 * value keeps the safe default and appends a sentence naming the
 * parameter to warn. Returns the number of warnings.
 */
int init_parse_cmdline(const char *cmdline, struct init_config *c, char *warn,
		       size_t warncap);
const char *init_mode_name(enum init_mode m);
const char *init_handoff_name(enum init_handoff h);
int init_handoff_parse(const char *s, enum init_handoff *h);


/* ---- the boot phases (PID 1) -------------------------------------------- */
int mount_pseudofs(void);
void open_console(void);
int seed_entropy(void);
int bring_up_network(const struct init_config *c);
int find_disks(struct disk_info *out, size_t cap, size_t *n);
struct serve_config;
/* kexec needs the disks to find the migrated kernel; sc may be NULL. */
void hand_off(enum init_handoff h, const struct serve_config *sc);
void rescue_shell(const char *why);

/* The result port: one machine-readable line per event (test mode). */
void result_open(const char *dev);
void result_set_fd(int fd);
void result_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int result_enabled(void);
/* Test mode powers off instead of dropping to a shell. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- the receiver ------------------------------------------------------- */
struct serve_config {
	char listen_host[NET_ADDR_MAX];
	uint16_t listen_port;
	/* Reverse mode (ferry.connect=, --connect): dial the agent at
	 * connect_host:connect_port instead of listening; "" = listen. */
	char connect[NET_ADDR_MAX];
	char connect_host[NET_ADDR_MAX];
	uint16_t connect_port;
	struct tls_token token;
	int token_generated;	/* show it: nobody else knows it */
	struct disk_info disks[DISK_MAX];
	size_t ndisks;
	int banner;		/* print the console banner */
	int once;		/* host mode: exit after one migration session */
	int live;		/* PID 1 of the live environment (not host mode) */
};

#define SERVE_HANDOFF_BASE 10

/* Listens (or, in reverse mode, dials the agent again and again) and
 * serves sessions until a migration finished (returns
 * SERVE_HANDOFF_BASE + the requested INIT_HANDOFF_*), or a fatal error
 * (-errno); 0 after one migration session (PLAN or CLEAN) with
 * cfg->once. */
int serve_run(const struct serve_config *cfg);
/* Fills sc->connect* from "HOST[:PORT]" (port 443 by default). */
int serve_set_connect(struct serve_config *sc, const char *hostport);

struct recv_state;
struct proto_report;
/* Aborts a failed migration's disks (see serve.c); wipe blanks them. */
void clean_disks(const struct serve_config *cfg, const struct recv_state *held,
		 int wipe, struct proto_report *r);

/* ---- the adapt phase (adapt.c) ------------------------------------------ */
struct adapt_req {
	int dry;	/* say what would change; mount read-only, run nothing */
	int force;	/* adapt even when the readiness report has no FAIL */
	int keep_ip;	/* static IPv4 setups stay (default: the primary's becomes DHCP) */
	struct proto_adapt_ip ip; /* the primary's static setup instead (prefix 0: none) */
	int live;	/* the live environment: block devices, this machine's NIC */
	size_t n;
	struct {
		char name[PROTO_NAME_MAX];	/* "vda" */
		char path[256];			/* "/dev/vda", or an image (host mode) */
		char old[PROTO_LABEL_MAX];	/* its source's name ("/dev/sda"), or "" */
	} d[DISK_MAX];
};
/*
 * The boot-readiness report of the disks; unless it has no FAIL (and
 * neither force nor dry is asked), the migrated system on them adapted
 * to this machine and the report made again. Every line goes to r: the
 * report before (its problems), one per change, the report after. The
 * verdict is that of the changes and the report after (in a dry run, of
 * the report before). Returns r->verdict, or -errno for bad arguments.
 */
int adapt_run(const struct adapt_req *q, struct proto_report *r);

/* ---- the relay (relay.c) ----------------------------------------------- */
struct relay_config {
	char listen_host[NET_ADDR_MAX];
	uint16_t listen_port;		/* 0: any free port (host mode, tests) */
	struct net_allow_list allow;	/* empty: every CONNECT is refused */
};
/* Listens and tunnels CONNECTs to allowed destinations; returns only on
 * a listen failure (-errno). */
int relay_run(const struct relay_config *cfg);

/* Prints the console banner for the current state to every console. */
void banner_show(const struct serve_config *cfg, uint16_t port,
		 const char *state);

#endif
