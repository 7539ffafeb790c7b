/*
 * probe: what a process of a vrid container sees, one line per value.
 *
 *   probe pid            its pid
 *   probe sem KEY [hold] creates semaphore KEY with IPC_EXCL and prints
 *                        the keys of every semaphore it can see; with
 *                        hold it then sleeps until killed
 *   probe sleep [TAG]    prints its pid, then sleeps until killed (TAG
 *                        only tells processes apart in their cmdlines)
 *   probe peer PID       what it sees of process PID: the errno of
 *                        kill(PID, 0), and /proc/PID/cmdline
 *   probe attack VICTIM  turns on its table file ($VRID_TABLE): tries to
 *                        replace it with a symlink to VICTIM, rename it,
 *                        unlink it and add a file beside it, printing the
 *                        errno of each, then prints its pid
 *   probe truncate       cuts its table file to nothing; prints the errno
 *   probe fill           writes up to 64 MiB past its table file's end;
 *                        prints the errno that stopped it
 *   probe ipc            makes a private semaphore set, segment and
 *                        queue, prints ipc=ok, then sleeps until killed
 *
 * The same binary runs under io.containerd.runc.v2, to compare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

static int sem(key_t key)
{
	struct seminfo info;
	struct semid_ds ds;
	int id, max;

	id = semget(key, 1, IPC_CREAT | IPC_EXCL | 0600);
	if (id < 0) {
		printf("semget=%s\n", strerrorname_np(errno));
		return 1;
	}
	printf("semget=ok\n");
	max = semctl(0, 0, SEM_INFO, (struct seminfo *)&info);
	for (int i = 0; i <= max; i++) {
		if (semctl(i, 0, SEM_STAT, &ds) >= 0)
			printf("seen.key=%d\n", (int)ds.sem_perm.__key);
	}
	return 0;
}

static void report(const char *what, int ret)
{
	printf("%s=%s\n", what, ret < 0 ? strerrorname_np(errno) : "ok");
}

/* Every change of the table's path fails; the host's chain directory is out of reach. */
static int attack(const char *victim)
{
	const char *table = getenv("VRID_TABLE");
	char dir[256], path[300];

	if (!table || strlen(table) >= sizeof(dir))
		return 2;
	strcpy(dir, table);
	*strrchr(dir, '/') = 0;
	snprintf(path, sizeof(path), "%s/evil", dir);
	report("symlink", symlink(victim, path));
	report("replace", rename(path, table));
	snprintf(path, sizeof(path), "%s/moved", dir);
	report("rename", rename(table, path));
	report("unlink", unlink(table));
	snprintf(path, sizeof(path), "%s/new", dir);
	report("create", open(path, O_WRONLY | O_CREAT | O_EXCL, 0644));
	printf("pid=%d\n", getpid());
	return 0;
}

static int ipc(void)
{
	if (semget(IPC_PRIVATE, 1, IPC_CREAT | 0600) < 0 || shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600) < 0 ||
	    msgget(IPC_PRIVATE, IPC_CREAT | 0600) < 0) {
		printf("ipc=%s\n", strerrorname_np(errno));
		return 1;
	}
	printf("ipc=ok\n");
	for (;;)
		pause();
}

static int peer(const char *pid)
{
	char path[64], cmd[256];
	ssize_t n;
	int fd;

	report("kill", kill(atoi(pid), 0));
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, cmd, sizeof(cmd) - 1);
	if (n < 0) {
		printf("cmdline=%s\n", strerrorname_np(errno));
		return 1;
	}
	for (ssize_t i = 0; i < n; i++)
		cmd[i] = cmd[i] ? cmd[i] : ' ';
	while (n > 0 && cmd[n - 1] == ' ')
		n--;
	cmd[n] = 0;
	printf("cmdline=%s\n", cmd);
	return 0;
}

/* Real pages past the end of the table, as a chain filling the host's memory would write them. */
static int fill(void)
{
	static char chunk[1 << 20];
	int fd = open(getenv("VRID_TABLE"), O_RDWR);
	off_t off = fd < 0 ? 0 : lseek(fd, 0, SEEK_END), end = off;
	ssize_t n = 0;

	memset(chunk, 'x', sizeof(chunk));
	while (fd >= 0 && off >= 0 && off < end + (64 << 20) && (n = pwrite(fd, chunk, sizeof(chunk), off)) >= 0)
		off += n;
	report("fill", fd < 0 || off < 0 || n < 0 ? -1 : 0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "pid")) {
		printf("pid=%d\n", getpid());
		return 0;
	}
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "sem")) {
		int ret = sem((key_t)strtol(argv[2], NULL, 0));

		if (ret || argc == 3 || strcmp(argv[3], "hold"))
			return ret;
		printf("holding\n");
		for (;;)
			pause();
	}
	if (argc == 2 && !strcmp(argv[1], "ipc"))
		return ipc();
	if ((argc == 2 || argc == 3) && !strcmp(argv[1], "sleep")) {
		printf("pid=%d\n", getpid());
		for (;;)
			pause();
	}
	if (argc == 3 && !strcmp(argv[1], "peer"))
		return peer(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "attack"))
		return attack(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "fill"))
		return fill();
	if (argc == 2 && !strcmp(argv[1], "truncate")) {
		int fd = open(getenv("VRID_TABLE"), O_RDWR);

		report("truncate", fd < 0 ? fd : ftruncate(fd, 0));
		return 0;
	}
	fprintf(stderr, "usage: probe pid | probe sem KEY [hold] | probe sleep [TAG] | probe peer PID | probe attack VICTIM | probe truncate | probe fill | probe ipc\n");
	return 2;
}
