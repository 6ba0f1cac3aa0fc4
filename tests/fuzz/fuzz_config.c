/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer harness: ternd's config loader. The input is the config file
 * (Lua, run in the config sandbox with its memory and instruction
 * budgets); it is either refused with a message or gives a config that
 * prints. Read through a memfd: no files on disk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/util.h"
#include "lua/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char path[64], err[512];
	struct config *cfg;
	int fd = memfd_create("config", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	err[0] = '\0';
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		TERN_ASSERT(err[0] != '\0');
	} else {
		config_print(cfg, devnull);
		config_free(cfg);
	}
	close(fd);
	return 0;
}
