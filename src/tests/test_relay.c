/*
 * test_relay.c - the relay's parsers (src/net/relay.c), table-driven:
 * allow-lists (what is accepted and its canonical form, what is refused
 * and why), matching (prefix edges, port ranges, IPv4-mapped IPv6, names
 * never match), and CONNECT heads (complete, split, malformed, oversized,
 * other methods, names kept unresolved); and the kernel command line's
 * ferry.mode=relay and ferry.relay.allow=.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "init.h"
#include "net/net.h"
#include "tests/tap.h"

struct allow_case {
	const char *in;
	int rc;
	const char *text; /* canonical form, or a part of the error */
};

static const struct allow_case allow_cases[] = {
    {"10.0.0.0/24:443", 0, "10.0.0.0/24:443"},
    {"10.0.0.77/24:443", 0, "10.0.0.0/24:443"}, /* host bits cleared */
    {"10.0.0.5:443", 0, "10.0.0.5/32:443"},
    {"10.0.0.5:7000-7010,10.1.0.0/16:*", 0, "10.0.0.5/32:7000-7010,10.1.0.0/16:*"},
    {"0.0.0.0/0:443", 0, "0.0.0.0/0:443"},
    {"[fd00::1/64]:443", 0, "[fd00::/64]:443"},
    {"[fd00::1]/64:443", 0, "[fd00::/64]:443"},
    {"[fd00::1]:443", 0, "[fd00::1/128]:443"},
    {"[::ffff:10.0.0.1/120]:443", 0, "10.0.0.0/24:443"},
    {"", -EINVAL, "empty allow-list"},
    {"10.0.0.0/24", -EINVAL, "want ADDR[/N]:PORT"},
    {"10.0.0.0/33:443", -EINVAL, "longer than /32"},
    {"[fd00::/129]:443", -EINVAL, "longer than /128"},
    {"10.0.0.0/:443", -EINVAL, "bad prefix"},
    {"10.0.0.0/2x:443", -EINVAL, "bad prefix"},
    {"10.0.0.0/24:0", -EINVAL, "want PORT"},
    {"10.0.0.0/24:65536", -EINVAL, "want PORT"},
    {"10.0.0.0/24:+443", -EINVAL, "want PORT"},
    {"10.0.0.0/24:500-400", -EINVAL, "LOW-HIGH"},
    {"10.0.0.0/24:443,", -EINVAL, "empty entry"},
    {",10.0.0.0/24:443", -EINVAL, "empty entry"},
    {"dest.example.com:443", -EINVAL, "names are not allowed"},
    {"fd00::1:443", -EINVAL, "IPv6 in brackets"},
    {"10.0.0.256:443", -EINVAL, "not an IP address"},
    {"[fd00::1:443", -EINVAL, "want [IPV6"},
    {"[::ffff:10.0.0.1/64]:443", -EINVAL, "/96 or more"},
    {"10.0.0.1:44\x01"
     "3",
     -EINVAL, "'10.0.0.1:44?3'"},
};

static void test_allow_parse(void)
{
	char err[256], text[NET_ALLOW_TEXT_MAX];
	struct net_allow_list l;
	size_t i;

	for (i = 0; i < FERRY_ARRAY_LEN(allow_cases); i++) {
		const struct allow_case *c = &allow_cases[i];
		int r;

		err[0] = 0;
		r = net_allow_parse(c->in, &l, err, sizeof(err));
		if (c->rc == 0) {
			net_allow_text(&l, text, sizeof(text));
			ok(r == 0 && !strcmp(text, c->text), "allow '%s' -> '%s' (%d, '%s' %s)",
			   c->in, c->text, r, text, err);
		} else {
			ok(r == c->rc && l.n == 0 && strstr(err, c->text), "allow '%s' refused: %s",
			   c->in, err);
		}
	}
}

static void test_allow_limits(void)
{
	char s[NET_ALLOW_TEXT_MAX + 64], err[256], text[64];
	struct net_allow_list l;
	size_t i, o = 0;

	for (i = 0; i < NET_ALLOW_MAX; i++)
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%s10.0.%zu.0/24:443", i ? "," : "", i);
	is_int(net_allow_parse(s, &l, err, sizeof(err)), 0, "32 entries accepted");
	is_int((int)l.n, NET_ALLOW_MAX, "all of them kept");
	net_allow_text(&l, text, sizeof(text));
	ok(strlen(text) < sizeof(text) && strstr(text, "...") &&
	       !strncmp(text, "10.0.0.0/24:443,", 16),
	   "a long list is cut with '...' (%s)", text);
	snprintf(s + o, sizeof(s) - o, ",10.9.9.0/24:443");
	ok(net_allow_parse(s, &l, err, sizeof(err)) == -EINVAL && strstr(err, "more than 32"),
	   "entry %d refused: %s", NET_ALLOW_MAX + 1, err);
	memset(s, '1', sizeof(s) - 1);
	s[sizeof(s) - 1] = 0;
	ok(net_allow_parse(s, &l, err, sizeof(err)) == -EINVAL && strstr(err, "longer than"),
	   "an over-long list refused: %s", err);
	memset(&l, 0, sizeof(l));
	net_allow_text(&l, text, sizeof(text));
	ok(strstr(text, "empty") != NULL, "an empty list says so: %s", text);
}

struct req_case {
	const char *in;
	int rc;
	const char *text; /* target text, or a part of why */
	int family;
};

static const struct req_case req_cases[] = {
    {"CONNECT 10.0.0.5:443 HTTP/1.1\r\nHost: 10.0.0.5:443\r\nUser-Agent: ferry/x\r\n\r\n", 0,
     "10.0.0.5:443", 4},
    {"CONNECT 10.0.0.5:443 HTTP/1.0\n\n", 0, "10.0.0.5:443", 4},
    {"CONNECT [fd00::5]:7000 HTTP/1.1\r\n\r\n", 0, "[fd00::5]:7000", 6},
    {"CONNECT [::ffff:10.0.0.5]:443 HTTP/1.1\r\n\r\n", 0, "10.0.0.5:443", 4},
    {"CONNECT dest.example.com:443 HTTP/1.1\r\n\r\n", 0, "dest.example.com:443", 0},
    {"CONNECT 10.0.0.5:443 HTTP/1.1\r\nHost: x\r\n", -EAGAIN, "", 0},
    {"CONNECT 10.0.0.5:443 HTTP/1.1\r\n", -EAGAIN, "", 0},
    {"CONN", -EAGAIN, "", 0},
    {"GET / HTTP/1.1\r\n\r\n", -EOPNOTSUPP, "method 'GET'", 0},
    {"CONNECTX 1.2.3.4:1 HTTP/1.1\r\n\r\n", -EOPNOTSUPP, "method 'CONNECTX'", 0},
    {"\x16\x03\x01\x02\x00", -EBADMSG, "a TLS client", 0},
    {"CONNECT 10.0.0.5 HTTP/1.1\r\n\r\n", -EBADMSG, "want HOST:PORT", 0},
    {"CONNECT 10.0.0.5:0 HTTP/1.1\r\n\r\n", -EBADMSG, "bad port", 0},
    {"CONNECT 10.0.0.5:99999 HTTP/1.1\r\n\r\n", -EBADMSG, "bad port", 0},
    {"CONNECT fd00::5:443 HTTP/1.1\r\n\r\n", -EBADMSG, "want HOST:PORT", 0},
    {"CONNECT [fd00::5]443 HTTP/1.1\r\n\r\n", -EBADMSG, "want [IPV6]:PORT", 0},
    {"CONNECT [dest]:443 HTTP/1.1\r\n\r\n", -EBADMSG, "not an IP address", 0},
    {"CONNECT a/b:443 HTTP/1.1\r\n\r\n", -EBADMSG, "not an IP address", 0},
    {"CONNECT 10.0.0.5:443 HTTP/2.0\r\n\r\n", -EBADMSG, "bad request line", 0},
    {"CONNECT 10.0.0.5:443\r\n\r\n", -EBADMSG, "bad request line", 0},
    {"CONNECT 10.0.0.5:443 HTTP/1.1 x\r\n\r\n", -EBADMSG, "bad request line", 0},
    {"CONNECT 10.0.0.5:443 HTTP/1.1\r\nno colon\r\n\r\n", -EBADMSG, "bad header line", 0},
    {"CONNECT 10.0.0.5:443 HTTP/1.1\r\n folded: x\r\n\r\n", -EBADMSG, "bad header line", 0},
    {"CONNECT 10.0.0.5:443 HTTP/1.1\r\n: x\r\n\r\n", -EBADMSG, "bad header line", 0},
};

static void test_request(void)
{
	struct net_relay_target t;
	char why[256];
	size_t i, head;

	for (i = 0; i < FERRY_ARRAY_LEN(req_cases); i++) {
		const struct req_case *c = &req_cases[i];
		size_t n = strlen(c->in);
		int r;

		head = 0;
		r = net_relay_request(c->in, n, &head, &t, why, sizeof(why));
		if (c->rc == 0)
			ok(r == 0 && head == n && !strcmp(t.text, c->text) && t.family == c->family,
			   "request %zu: %s (family %d, head %zu of %zu, %s)", i, t.text, t.family,
			   head, n, why);
		else if (c->rc == -EAGAIN)
			ok(r == -EAGAIN, "request %zu incomplete (%d)", i, r);
		else
			ok(r == c->rc && strstr(why, c->text) && t.text[0] == 0,
			   "request %zu refused (%d): %s", i, r, why);
	}
}

static void test_request_edges(void)
{
	static char big[NET_RELAY_HEAD_MAX + 100];
	static const char req[] = "CONNECT 10.1.2.3:8443 HTTP/1.1\r\nHost: 10.1.2.3:8443\r\n\r\n"
				  "\x16\x03\x01tunnel bytes";
	struct net_relay_target t;
	char why[256];
	size_t head = 0, i, n, o;
	int r;

	/* Bytes after the head are the tunnel's, not the head's. */
	r = net_relay_request(req, sizeof(req) - 1, &head, &t, why, sizeof(why));
	ok(r == 0 && head == sizeof(req) - 1 - 15 && t.port == 8443 && !strcmp(t.host, "10.1.2.3"),
	   "head ends at the blank line (%zu)", head);
	/* Split anywhere: incomplete until the last byte of the head. */
	for (n = 1, r = -EAGAIN; n < head && r == -EAGAIN; n++)
		r = net_relay_request(req, n, &head, &t, why, sizeof(why));
	is_int(r, -EAGAIN, "every prefix of the head is incomplete");

	memset(big, 'a', sizeof(big));
	memcpy(big, "CONNECT 1.2.3.4:1 HTTP/1.1\r\nX: ", 31);
	ok(net_relay_request(big, sizeof(big), &head, &t, why, sizeof(why)) == -EMSGSIZE &&
	       strstr(why, "longer than 4096"),
	   "no end within 4096 bytes: %s", why);
	ok(net_relay_request(big, 4095, &head, &t, why, sizeof(why)) == -EAGAIN,
	   "4095 bytes without an end: read more");
	o = (size_t)snprintf(big, sizeof(big), "CONNECT 1.2.3.4:1 HTTP/1.1\r\n");
	for (i = 0; i < NET_RELAY_HEADERS_MAX + 1; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "X-%zu: y\r\n", i);
	o += (size_t)snprintf(big + o, sizeof(big) - o, "\r\n");
	ok(net_relay_request(big, o, &head, &t, why, sizeof(why)) == -EBADMSG &&
	       strstr(why, "header lines"),
	   "33 header lines refused: %s", why);
	memcpy(big, "CONNECT 1.2.3.4:1 HTTP/1.1\r\nA\0: b\r\n\r\n", 38);
	ok(net_relay_request(big, 38, &head, &t, why, sizeof(why)) == -EBADMSG &&
	       strstr(why, "NUL"),
	   "a NUL byte refused: %s", why);
}

static void test_match(void)
{
	struct net_allow_list l;
	struct net_relay_target t;
	char err[256], why[256];
	size_t head;
	static const struct {
		const char *target;
		int want;
	} cases[] = {
	    {"10.0.0.0:443", 1},      {"10.0.0.255:443", 1},	 {"10.0.1.0:443", 0},
	    {"9.255.255.255:443", 0}, {"10.0.0.9:444", 0},	 {"10.0.0.9:442", 0},
	    {"10.2.0.1:7000", 1},     {"10.2.0.1:7010", 1},	 {"10.2.0.1:7011", 0},
	    {"10.2.0.1:6999", 0},     {"10.2.0.2:7000", 0},	 {"[::ffff:10.0.0.8]:443", 1},
	    {"[fd00::ffff]:22", 1},   {"[fd00:0:0:1::1]:22", 0}, {"[::10.0.0.1]:443", 0},
	    {"localhost:443", 0},
	};
	size_t i;

	is_int(net_allow_parse("10.0.0.0/24:443,10.2.0.1:7000-7010,[fd00::/64]:*", &l, err,
			       sizeof(err)),
	       0, "list for matching");
	for (i = 0; i < FERRY_ARRAY_LEN(cases); i++) {
		char req[128];
		int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\n\r\n", cases[i].target);

		ok(net_relay_request(req, (size_t)n, &head, &t, why, sizeof(why)) == 0 &&
		       net_allow_match(&l, &t) == cases[i].want,
		   "%s %s", cases[i].target, cases[i].want ? "allowed" : "refused");
	}
	memset(&l, 0, sizeof(l));
	net_relay_request("CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n", 34, &head, &t, why, sizeof(why));
	ok(!net_allow_match(&l, &t), "an empty list allows nothing");
}

static void test_cmdline(void)
{
	struct init_config c;
	char w[INIT_WARN_MAX], text[256];

	init_config_defaults(&c);
	is_int(
	    init_parse_cmdline("ferry.mode=relay ferry.relay.allow=10.0.0.0/24:443,10.0.1.5:7000",
			       &c, w, sizeof(w)),
	    0, "relay mode: no warning");
	net_allow_text(&c.relay_allow, text, sizeof(text));
	ok(c.mode == INIT_MODE_RELAY && !strcmp(init_mode_name(c.mode), "relay") &&
	       !strcmp(text, "10.0.0.0/24:443,10.0.1.5/32:7000"),
	   "mode relay, allow %s", text);
	init_config_defaults(&c);
	is_int(
	    init_parse_cmdline("ferry.mode=relay ferry.relay.allow=10.0.0.0/24", &c, w, sizeof(w)),
	    1, "a bad allow-list warns");
	ok(c.relay_allow.n == 0 && strstr(w, "ferry.relay.allow: allow-list entry '10.0.0.0/24'") &&
	       strstr(w, "refuses every destination"),
	   "and leaves the list empty: %s", w);
}

int main(void)
{
	log_init("test_relay", LOG_LVL_ERROR);
	test_allow_parse();
	test_allow_limits();
	test_request();
	test_request_edges();
	test_match();
	test_cmdline();
	return tap_done();
}
