/*
 * common.h - logging, bounded cursors and small helpers shared by every
 * module. Nothing here allocates or does I/O beyond writing log lines.
 */
#ifndef FERRY_COMMON_H
#define FERRY_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0-dev"
#endif

#define FERRY_ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define FERRY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging (OpenBSD log.c style) ---------------------------------- */

enum {
	LOG_LVL_ERROR = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* prog prefixes every line; level filters; lines go to stderr. */
void log_init(const char *prog, int level);
int log_level(void);
/* Also append every line (with a UTC timestamp) to fd; -1 turns it off. */
void log_set_file(int fd);
/* While paused, nothing is written to the log file (its filesystem may
 * be frozen); lines still go to stderr. */
void log_pause_file(int pause);
/* Also mirror every line to fd (e.g. /dev/kmsg); -1 turns it off. */
void log_set_mirror(int fd);

void log_error(const char *fmt, ...) FERRY_ATTR_PRINTF(1, 2);
void log_info(const char *fmt, ...) FERRY_ATTR_PRINTF(1, 2);
void log_debug(const char *fmt, ...) FERRY_ATTR_PRINTF(1, 2);
/* log_error + ": " + strerror(-err) */
void log_errno(int err, const char *fmt, ...) FERRY_ATTR_PRINTF(2, 3);

/* ---- bounded read cursor (big-endian) ------------------------------- */

/*
 * Every parse of untrusted bytes goes through a cursor. The first
 * failure is sticky: later reads return -EBADMSG and produce zeros, so a
 * parser can read a whole structure and check cur.err once.
 */
struct cur {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

void cur_init(struct cur *c, const void *p, size_t len);
size_t cur_left(const struct cur *c);
int cur_u8(struct cur *c, uint8_t *v);
int cur_u16(struct cur *c, uint16_t *v);
int cur_u32(struct cur *c, uint32_t *v);
int cur_u64(struct cur *c, uint64_t *v);
int cur_bytes(struct cur *c, void *dst, size_t n);
/* Little-endian (on-disk formats of FAT, LVM, btrfs). */
int cur_le16(struct cur *c, uint16_t *v);
int cur_le32(struct cur *c, uint32_t *v);
int cur_le64(struct cur *c, uint64_t *v);
/* Skips n bytes (fails like a read past the end). */
int cur_skip(struct cur *c, size_t n);
/* Moves to off (<= len) from the start; past the end is sticky -EBADMSG. */
int cur_seek(struct cur *c, size_t off);
/* Points *p at the next n bytes without copying. */
int cur_ref(struct cur *c, const uint8_t **p, size_t n);
/*
 * A u16 length-prefixed string copied into dst (cap bytes, NUL added).
 * Fails if the string is longer than cap-1 or holds a NUL or a control
 * character.
 */
int cur_str(struct cur *c, char *dst, size_t cap);

/* ---- bounded write buffer (big-endian) ------------------------------ */

struct wbuf {
	uint8_t *p;
	size_t cap;
	size_t len;
	int err; /* sticky -ENOSPC */
};

void wbuf_init(struct wbuf *w, void *p, size_t cap);
void wbuf_u8(struct wbuf *w, uint8_t v);
void wbuf_u16(struct wbuf *w, uint16_t v);
void wbuf_u32(struct wbuf *w, uint32_t v);
void wbuf_u64(struct wbuf *w, uint64_t v);
void wbuf_bytes(struct wbuf *w, const void *p, size_t n);
/* u16 length + bytes; strings longer than 65535 set -EOVERFLOW. */
void wbuf_str(struct wbuf *w, const char *s);

/* ---- helpers -------------------------------------------------------- */

/* "10.0 GiB" style, 1024-based, into buf (>= 16 bytes). Returns buf. */
const char *fmt_bytes(uint64_t n, char *buf, size_t cap);
/* s as a JSON string literal (quotes, escapes) into buf; clipped to cap.
 * Returns buf. */
const char *json_str(const char *s, char *buf, size_t cap);
/* Monotonic milliseconds. */
uint64_t time_now_ms(void);
/* Wipes secrets; the compiler may not drop it. */
void mem_wipe(void *p, size_t n);
/* Constant-time compare; 0 if equal. */
int mem_neq_ct(const void *a, const void *b, size_t n);
/* Reads a whole small file (procfs/sysfs) into buf, NUL-terminated and
 * with trailing newlines stripped. Returns length or -errno. */
int file_read_small(const char *path, char *buf, size_t cap);
/* Writes all of buf, retrying on EINTR/short writes. 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);
/* Parses a decimal u64 with an upper bound; 0 or -EINVAL/-ERANGE. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);
/* A positive errno as an operator reads and greps it: "Input/output
 * error (EIO)", "No space left on device (ENOSPC)", or the number when
 * it has no name here. Into buf (>= 64 bytes); returns buf. */
const char *err_text(int e, char *buf, size_t cap);

/* ---- compression (zstd) ---------------------------------------------- */

size_t zc_bound(size_t n);
/* -ENOSPC when the result would not fit cap. */
int zc_compress(const void *src, size_t n, void *dst, size_t cap, int level, size_t *out);
/* Exactly want bytes or -EBADMSG. */
int zc_decompress(const void *src, size_t n, void *dst, size_t want);
/* Each thread has its own contexts: a thread that used them frees them. */
void zc_thread_end(void);

/* ---- hashing -------------------------------------------------------- */

#define HASH_LEN 16
/* XXH3-128 of p with a per-session seed, big-endian into out. */
void hash128(const void *p, size_t n, uint64_t seed, uint8_t out[HASH_LEN]);
/* True if all n bytes are zero (fast path for whole chunks). */
int mem_is_zero(const void *p, size_t n);

#endif
