/*
 * /proc as the chain sees it: the listings of /proc and task/ (readdir,
 * readdir64, getdents64), the text of stat and status, paths relative to
 * a directory fd or a cwd on /proc, statx, and a process outside the
 * chain (pid 1, the host's or the pid namespace's init).
 */
#define _LARGEFILE64_SOURCE
#include "vt.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

static int ready[2];

/* A thread that never asks its own id: the task listing gives it one. */
static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static long sys_pid;

/*
 * The entries of a listing that a test knows (pid 1, the chain's 1000 to
 * 1002, and the system pid of this process, as "sys"), in listing order.
 */
static const char *known(const char *name, char *buf, size_t len)
{
	long v = strtol(name, NULL, 10);

	if (v == sys_pid)
		return "sys";
	if (v == 1 || (v >= 1000 && v <= 1002)) {
		snprintf(buf, len, "%ld", v);
		return buf;
	}
	return NULL;
}

static void add(char *line, size_t len, const char *name)
{
	char buf[16];
	const char *k = known(name, buf, sizeof(buf));
	size_t n = strlen(line);

	if (k)
		snprintf(line + n, len - n, "%s%s", n ? "," : "", k);
}

/* Reads and closes dir. */
static void out_listing(const char *name, DIR *dir)
{
	char line[256] = "";
	struct dirent64 *e;

	MUST(dir != NULL);
	while ((e = readdir64(dir)) != NULL)
		add(line, sizeof(line), e->d_name);
	closedir(dir);
	OUT_STR(name, line);
}

/* The same through getdents64 with a small buffer, to cross refills. */
static void out_getdents(const char *name, int fd)
{
	char buf[128] __attribute__((aligned(8))), line[256] = "";
	ssize_t got;

	while ((got = getdents64(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < got;) {
			struct dirent64 *e = (struct dirent64 *)(buf + i);

			i += e->d_reclen;
			add(line, sizeof(line), e->d_name);
		}
	}
	CHECK(got == 0);
	OUT_STR(name, line);
}

/* The first number in a file opened by fd. */
static void out_first(const char *name, int fd)
{
	char buf[64] = "";
	ssize_t n;

	if (fd < 0) {
		OUT_ERR(name, -1);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	OUT_INT(name, strtol(buf, NULL, 10));
}

/*
 * Fields 1 to 8 of a stat line: pid, comm, state, ppid, pgrp, session,
 * tty, tpgid.  tpgid is printed for processes of a session without a
 * terminal only: the test may run on one.
 */
static void out_stat_of(const char *name, int fd, int own_session)
{
	char buf[512] = "", comm[64] = "";
	int pid = -1, ppid = -1, pgrp = -1, sid = -1, tpgid = 0;
	char state = '?';
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(sscanf(buf, "%d (%63[^)]) %c %d %d %d %*d %d", &pid, comm, &state, &ppid, &pgrp,
		     &sid, &tpgid) == 7);
	snprintf(buf, sizeof(buf), "pid=%d comm=%s ppid=%d pgrp=%d session=%d", pid, comm, ppid,
		 pgrp, sid);
	if (own_session)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " tpgid=%d", tpgid);
	OUT_STR(name, buf);
}

static void out_stat(const char *name, int fd)
{
	out_stat_of(name, fd, 0);
}

static void out_child_stat(const char *name, int fd)
{
	out_stat_of(name, fd, 1);
}

/* The id lines of a status file, on one line. */
static void out_status(const char *name, const char *path)
{
	static const char *const keys[] = { "Tgid:", "Pid:", "PPid:", "TracerPid:", "NStgid:",
					    "NSpid:", "NSpgid:", "NSsid:" };
	char line[256], all[512] = "";
	FILE *f = fopen(path, "r");

	if (!f) {
		OUT_ERR(name, -1);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t k = strlen(keys[i]), n = strlen(all);

			if (strncmp(line, keys[i], k) != 0)
				continue;
			line[strcspn(line, "\n")] = '\0';
			for (char *p = line; *p; p++)
				if (*p == '\t')
					*p = ' ';
			snprintf(all + n, sizeof(all) - n, "%s%s", n ? " " : "", line);
		}
	}
	fclose(f);
	OUT_STR(name, all);
}

static void child_main(void)
{
	pthread_t t;

	close(ready[0]);
	/* A session of its own: a session id to translate, and no terminal's group in tpgid. */
	MUST(setsid() == 1001);
	MUST(pthread_create(&t, NULL, idle_thread, NULL) == 0);
	MUST(write(ready[1], "x", 1) == 1);
	for (;;)
		pause();
}

int main(void)
{
	long sys = sys_pid = vt_sys_pid();
	struct statx stx;
	struct stat st;
	char path[64], c;
	pid_t child;
	int procfd, fd;

	MUST(sys > 0 && pipe(ready) == 0);
	child = vt_fork();
	MUST(child >= 0);
	if (child == 0)
		child_main();
	close(ready[1]);
	MUST(read(ready[0], &c, 1) == 1);
	OUT_INT("child", child);

	/* listings: the chain by virtual pid, pid 1 outside it by its own */
	out_listing("readdir.proc", opendir("/proc"));
	procfd = open("/proc", O_RDONLY | O_DIRECTORY);
	MUST(procfd >= 0);
	out_getdents("getdents64.proc", procfd);
	out_listing("readdir.child_task", opendir("/proc/1001/task"));
	fd = open("/proc/1001/task", O_RDONLY | O_DIRECTORY);
	out_listing("fdopendir.child_task", fd >= 0 ? fdopendir(fd) : NULL);

	/* stat and status text */
	out_stat("stat.self", open("/proc/self/stat", O_RDONLY));
	out_stat("stat.vpid", open("/proc/1000/stat", O_RDONLY));
	out_stat("stat.thread_self", open("/proc/thread-self/stat", O_RDONLY));
	out_child_stat("stat.child", open("/proc/1001/stat", O_RDONLY));
	out_child_stat("stat.child_task_main", open("/proc/1001/task/1001/stat", O_RDONLY));
	out_child_stat("stat.child_task_thread", open("/proc/1001/task/1002/stat", O_RDONLY));
	out_status("status.self", "/proc/self/status");
	out_status("status.child", "/proc/1001/status");
	out_status("status.child_thread", "/proc/1001/task/1002/status");
	out_status("status.tid", "/proc/1002/status");

	/* relative to a directory fd on /proc, and to a cwd there */
	out_child_stat("openat.procfd.child_stat", openat(procfd, "1001/stat", O_RDONLY));
	out_stat("openat.procfd.self_stat", openat(procfd, "self/stat", O_RDONLY));
	out_child_stat("openat.procfd.task_stat", openat(procfd, "1001/task/1002/stat", O_RDONLY));
	fd = openat(procfd, "1001", O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0);
	out_child_stat("openat.piddir.stat", openat(fd, "stat", O_RDONLY));
	out_child_stat("openat.piddir.task_stat", openat(fd, "task/1002/stat", O_RDONLY));
	close(fd);
	fd = openat(procfd, "1001/task", O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0);
	out_child_stat("openat.taskdir.stat", openat(fd, "1002/stat", O_RDONLY));
	close(fd);
	OUT_INT("fstatat.procfd.child", fstatat(procfd, "1001", &st, 0));
	OUT_INT("faccessat.procfd.child_stat", faccessat(procfd, "1001/stat", R_OK, 0));
	OUT_ERR("openat.procfd.unknown", openat(procfd, "4242/stat", O_RDONLY));
	snprintf(path, sizeof(path), "%ld/stat", sys);
	if (sys < 1000 || sys > 1002)
		CHECK(openat(procfd, path, O_RDONLY) == -1 && errno == ENOENT);
	MUST(chdir("/proc") == 0);
	out_child_stat("cwd.child_stat", open("1001/stat", O_RDONLY));
	MUST(chdir("/proc/1001") == 0);
	out_child_stat("cwd.piddir.stat", open("stat", O_RDONLY));
	MUST(chdir("/") == 0);

	/* statx, absolute and relative */
	OUT_INT("statx.child", statx(AT_FDCWD, "/proc/1001", 0, STATX_INO, &stx));
	OUT_INT("statx.procfd.child", statx(procfd, "1001", 0, STATX_INO, &stx));
	OUT_ERR("statx.unknown", statx(AT_FDCWD, "/proc/4242", 0, STATX_INO, &stx));

	/* pid 1 is outside the chain: as visible as the pid namespace makes it */
	OUT_INT("stat.outside_pid1", stat("/proc/1", &st));
	fd = open("/proc/1/comm", O_RDONLY);
	OUT_INT("open.outside_pid1_comm", fd >= 0);
	if (fd >= 0)
		close(fd);
	out_first("stat.outside_pid1.pid", open("/proc/1/stat", O_RDONLY));

	close(procfd);
	kill(child, SIGKILL);
	vt_wait(child);
	return vt_done();
}
