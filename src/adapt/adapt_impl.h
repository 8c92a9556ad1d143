/*
 * adapt_impl.h - private to src/adapt: the line walker and output
 * helpers the rewrites share. Nothing outside src/adapt includes it.
 */
#ifndef FERRY_ADAPT_IMPL_H
#define FERRY_ADAPT_IMPL_H

#include <stddef.h>

#include "adapt/adapt.h"
#include "common/common.h"

/* The prefix of a line the rewrites comment out: greppable, and a
 * comment in every format they edit (shell, YAML, INI, udev). */
#define ADAPT_MARK "# ferry-adapt: "

void adapt_put(struct adapt_buf *b, const char *s, size_t n);
void adapt_puts(struct adapt_buf *b, const char *s);
void adapt_put_line_end(struct adapt_buf *b, const struct adapt_line *l);
void adapt_note(struct adapt_notes *nt, const char *fmt, ...) FERRY_ATTR_PRINTF(2, 3);
/* The reason a rewrite refuses its input, into nt->why; returns err. */
int adapt_refuse(struct adapt_notes *nt, int err, const char *fmt, ...) FERRY_ATTR_PRINTF(3, 4);
/* Arguments and size of an input; 0 or -EINVAL / -EFBIG. */
int adapt_check_in(const char *in, size_t len, const struct adapt_buf *out);
int adapt_is_blank(char c);
/* s (n bytes) as a device word, mapped: dev gets the word, to the new
 * name; 1 when it is to be replaced. */
int adapt_map_dev(adapt_dev_fn map, void *arg, const char *s, size_t n, char *dev, char *to,
		  size_t tocap);

/* Records an interface a file configures (once per name; "lo" and
 * names that are not interface names are ignored). */
void adapt_learn(struct adapt_net *n, const char *name, size_t len, int gw, int is_static);

#endif
