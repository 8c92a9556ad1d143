/*
 * entropy.c - phase 4: make sure getrandom() will not block forever.
 * Since Linux 5.4 a blocking getrandom() runs the jitter entropy loop
 * itself, and with RDRAND or virtio-rng the pool is ready at once; we
 * only wait for it (bounded by the kernel) and say how long it took.
 */
#include <errno.h>
#include <sys/random.h>

#include "common/common.h"
#include "init.h"

int seed_entropy(void)
{
	uint8_t b[32];
	uint64_t t0 = time_now_ms();
	ssize_t n;

	n = getrandom(b, sizeof(b), GRND_NONBLOCK);
	if (n == (ssize_t)sizeof(b)) {
		mem_wipe(b, sizeof(b));
		log_debug("random pool ready");
		return 0;
	}
	log_info("waiting for the kernel's random pool");
	do
		n = getrandom(b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	mem_wipe(b, sizeof(b));
	if (n != (ssize_t)sizeof(b))
		return -errno;
	log_info("random pool ready after %llu ms",
		 (unsigned long long)(time_now_ms() - t0));
	return 0;
}
