/*
 * A hostile process of a chain turns on its own table file, named by
 * VRID_TABLE: "truncate" cuts it to nothing, "grow" doubles it, "fill"
 * writes up to 64 MiB past its end, "sem"
 * first makes a semaphore set for teardown to remove.  It prints what
 * the kernel said, then ready=1, and waits for stdin to close.  The host
 * side, vrid run's supervisor, vrid ps and vrid tables, must live
 * through it.
 */
#include "vt.h"

#include <fcntl.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/stat.h>

/* Writes real pages past the end, as a chain filling the host's memory would. */
static int fill(int fd, off_t end)
{
	static char chunk[1 << 20];

	memset(chunk, 'x', sizeof(chunk));
	for (off_t off = end; off < end + (64 << 20);) {
		ssize_t n = pwrite(fd, chunk, sizeof(chunk), off);

		if (n < 0)
			return -1;
		off += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = getenv("VRID_TABLE");
	struct stat st;
	char buf[64];
	int fd, rc = 0;

	CHECK(path && argc >= 2);
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "sem") == 0)
			CHECK(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600) >= 0);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	if (strcmp(argv[1], "truncate") == 0)
		rc = ftruncate(fd, 0);
	else if (strcmp(argv[1], "grow") == 0)
		rc = ftruncate(fd, 2 * st.st_size);
	else if (strcmp(argv[1], "fill") == 0)
		rc = fill(fd, st.st_size);
	OUT_ERR(argv[1], rc);
	OUT_INT("ready", 1);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
