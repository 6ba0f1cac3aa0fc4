/* SPDX-License-Identifier: ISC */
/*
 * fdcopy.c - layer 2: file to file copies (fdcopy.h).
 */
#include "base/fdcopy.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
fd_copy(int to, int from, off_t off, uint64_t len)
{
	off_t end = off + (off_t)len;
	bool kernel = true;
	char piece[65536];

	while (off < end) {
		uint64_t left = (uint64_t)(end - off);
		size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
		ssize_t n;
		if (kernel) {
			n = copy_file_range(from, &off, to, NULL, want, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS ||
			    errno == EINVAL || errno == EOPNOTSUPP)) {
				kernel = false;
				continue;
			}
		} else {
			n = pread(from, piece, want < sizeof(piece) ? want :
			    sizeof(piece), off);
			if (n > 0) {
				if (write_all(to, piece, (size_t)n) != 0)
					return -1;
				off += n;
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;      /* shorter than it was said to be */
			return -1;
		}
	}
	return 0;
}
