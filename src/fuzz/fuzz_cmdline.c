/*
 * fuzz_cmdline.c - libFuzzer target for the kernel command line parser:
 * any bytes, any length, must parse without reading or writing out of
 * bounds, and the result must stay within its documented ranges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "init.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[INIT_CMDLINE_MAX * 2 + 1];
	struct init_config c;
	char warn[256];

	if (size > sizeof(line) - 1)
		size = sizeof(line) - 1;
	memcpy(line, data, size);
	line[size] = 0;
	init_config_defaults(&c);
	init_parse_cmdline(line, &c, warn, sizeof(warn));
	if (c.loglevel < 1 || c.loglevel > 3 || (c.result[0] && strncmp(c.result, "/dev/", 5)) ||
	    c.mode > INIT_MODE_RELAY || c.handoff > INIT_HANDOFF_SHELL)
		abort();
	return 0;
}
