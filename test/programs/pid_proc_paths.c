/*
 * /proc/<vpid>[/task/<vtid>] paths: open, openat, fopen, stat, lstat,
 * fstatat, access, faccessat, readlink, readlinkat, opendir and their
 * 64-bit names go to the system pid; /proc/self and /proc/thread-self
 * read back virtual.  proc_view.c covers listings, file contents and
 * paths relative to a directory.
 */
#define _LARGEFILE64_SOURCE
#include "vt.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

/* The first field of a /proc/<pid>/stat file: the pid, virtual for the chain. */
static long stat_pid_of(const char *path)
{
	char buf[64] = "";
	long pid = -1;
	int fd = open(path, O_RDONLY);

	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			pid = strtol(buf, NULL, 10);
		close(fd);
	}
	return pid;
}

static void out_link(const char *name, const char *path)
{
	char buf[256];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0) {
		OUT_ERR(name, -1);
		return;
	}
	buf[n] = '\0';
	OUT_STR(name, buf);
}

static char thread_link[256];

static void *thread_main(void *arg)
{
	ssize_t n;

	(void)arg;
	gettid();
	n = readlink("/proc/thread-self", thread_link, sizeof(thread_link) - 1);
	if (n >= 0)
		thread_link[n] = '\0';
	return NULL;
}

int main(void)
{
	long sys = vt_sys_pid();
	struct stat st, st_self;
	struct stat64 st64;
	char path[128], exe[256], exe_self[256];
	struct dirent *de;
	pthread_t t;
	DIR *dir;
	FILE *f;
	pid_t child;
	ssize_t n;
	int fd, rc, tasks;

	MUST(sys > 0);
	out_link("readlink.self", "/proc/self");
	out_link("readlink.thread_self", "/proc/thread-self");
	/* a short buffer gets the start of the virtual text, as readlink truncates */
	memset(path, 0, sizeof(path));
	n = readlink("/proc/self", path, 2);
	OUT_INT("readlink.self.size2.len", n);
	OUT_STR("readlink.self.size2", path);
	memset(path, 0, sizeof(path));
	n = readlink("/proc/thread-self", path, 6);
	OUT_INT("readlink.thread_self.size6.len", n);
	OUT_STR("readlink.thread_self.size6", path);
	n = readlinkat(AT_FDCWD, "/proc/self", path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = '\0';
	OUT_STR("readlinkat.self", path);
	MUST(pthread_create(&t, NULL, thread_main, NULL) == 0);
	pthread_join(t, NULL);
	OUT_STR("readlink.thread_self.in_thread", thread_link);

	OUT_INT("open.vpid_stat.pid", stat_pid_of("/proc/1000/stat"));
	fd = openat(AT_FDCWD, "/proc/1000/status", O_RDONLY);
	OUT_INT("openat.vpid.ok", fd >= 0);
	if (fd >= 0)
		close(fd);
	fd = open64("/proc/1000/stat", O_RDONLY);
	OUT_INT("open64.vpid.ok", fd >= 0);
	if (fd >= 0)
		close(fd);
	fd = openat64(AT_FDCWD, "/proc/1000/stat", O_RDONLY);
	OUT_INT("openat64.vpid.ok", fd >= 0);
	if (fd >= 0)
		close(fd);
	f = fopen("/proc/1000/cmdline", "r");
	OUT_INT("fopen.vpid.ok", f != NULL);
	if (f) {
		char cmd[256] = "";

		CHECK(fread(cmd, 1, sizeof(cmd) - 1, f) > 0);
		CHECK(strstr(cmd, "pid_proc_paths") != NULL);
		fclose(f);
	}
	f = fopen64("/proc/1000/stat", "r");
	OUT_INT("fopen64.vpid.ok", f != NULL);
	if (f)
		fclose(f);

	/* stat of /proc/<vpid> is stat of /proc/self */
	MUST(stat("/proc/self", &st_self) == 0);
	rc = stat("/proc/1000", &st);
	OUT_INT("stat.vpid", rc);
	OUT_INT("stat.vpid.same_inode", rc == 0 && st.st_ino == st_self.st_ino);
	rc = stat64("/proc/1000", &st64);
	OUT_INT("stat64.vpid.same_inode", rc == 0 && st64.st_ino == st_self.st_ino);
	MUST(lstat("/proc/self/exe", &st_self) == 0);
	rc = lstat("/proc/1000/exe", &st);
	OUT_INT("lstat.vpid_exe.same_inode", rc == 0 && st.st_ino == st_self.st_ino);
	rc = lstat64("/proc/1000/exe", &st64);
	OUT_INT("lstat64.vpid_exe.same_inode", rc == 0 && st64.st_ino == st_self.st_ino);
	MUST(stat("/proc/self/stat", &st_self) == 0);
	rc = fstatat(AT_FDCWD, "/proc/1000/stat", &st, 0);
	OUT_INT("fstatat.vpid.same_inode", rc == 0 && st.st_ino == st_self.st_ino);
	rc = fstatat64(AT_FDCWD, "/proc/1000/stat", &st64, 0);
	OUT_INT("fstatat64.vpid.same_inode", rc == 0 && st64.st_ino == st_self.st_ino);
	OUT_INT("access.vpid", access("/proc/1000/stat", R_OK));
	OUT_INT("faccessat.vpid", faccessat(AT_FDCWD, "/proc/1000/stat", R_OK, 0));
	n = readlink("/proc/1000/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	n = readlink("/proc/self/exe", exe_self, sizeof(exe_self) - 1);
	exe_self[n > 0 ? n : 0] = '\0';
	OUT_INT("readlink.vpid_exe.same_as_self", strcmp(exe, exe_self) == 0 && exe[0] == '/');
	n = readlinkat(AT_FDCWD, "/proc/1000/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	OUT_INT("readlinkat.vpid_exe.same_as_self", strcmp(exe, exe_self) == 0);

	/* the task directory lists the one thread, by virtual tid */
	dir = opendir("/proc/1000/task");
	OUT_INT("opendir.vpid_task.ok", dir != NULL);
	tasks = 0;
	while (dir && (de = readdir(dir)))
		tasks += de->d_name[0] != '.';
	if (dir)
		closedir(dir);
	OUT_INT("opendir.vpid_task.entries", tasks);
	OUT_INT("stat.vpid_task_vtid", stat("/proc/1000/task/1000", &st));
	OUT_INT("stat.vpid_task_vtid_stat", stat("/proc/1000/task/1000/stat", &st));

	/* unknown virtual pids are no such file */
	rc = open("/proc/4242/stat", O_RDONLY);
	OUT_ERR("open.unknown", rc);
	rc = openat(AT_FDCWD, "/proc/4242/stat", O_RDONLY);
	OUT_ERR("openat.unknown", rc);
	f = fopen("/proc/4242/stat", "r");
	OUT_ERR("fopen.unknown", f ? 0 : -1);
	rc = stat("/proc/4242", &st);
	OUT_ERR("stat.unknown", rc);
	rc = lstat("/proc/4242/exe", &st);
	OUT_ERR("lstat.unknown", rc);
	rc = access("/proc/4242", F_OK);
	OUT_ERR("access.unknown", rc);
	rc = faccessat(AT_FDCWD, "/proc/4242", F_OK, 0);
	OUT_ERR("faccessat.unknown", rc);
	rc = fstatat(AT_FDCWD, "/proc/4242", &st, 0);
	OUT_ERR("fstatat.unknown", rc);
	rc = (int)readlink("/proc/4242/exe", exe, sizeof(exe));
	OUT_ERR("readlink.unknown", rc);
	dir = opendir("/proc/4242");
	OUT_ERR("opendir.unknown", dir ? 0 : -1);
	rc = stat("/proc/1000/task/4242", &st);
	OUT_ERR("stat.unknown_task", rc);
	/* the kernel reads no pid with a leading zero: such a path is no pid's */
	rc = stat("/proc/01000", &st);
	OUT_ERR("stat.leading_zero", rc);
	/* the system pid is no virtual pid of the chain (unless it happens to be one) */
	if (sys < 1000 || sys > 1100) {
		snprintf(path, sizeof(path), "/proc/%ld/stat", sys);
		CHECK(open(path, O_RDONLY) == -1 && errno == ENOENT);
	}
	/* other /proc paths pass */
	OUT_INT("stat.proc_self_status", stat("/proc/self/status", &st));
	OUT_INT("stat.proc_meminfo", stat("/proc/meminfo", &st));

	/* a child's directory, while it lives and after it is reaped */
	child = vt_fork();
	MUST(child >= 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	snprintf(path, sizeof(path), "/proc/%d", child);
	OUT_STR("child.path", path);
	OUT_INT("stat.child", stat(path, &st));
	snprintf(path, sizeof(path), "/proc/%d/stat", child);
	OUT_INT("open.child_stat.pid", stat_pid_of(path));
	kill(child, SIGKILL);
	vt_wait(child);
	snprintf(path, sizeof(path), "/proc/%d", child);
	rc = stat(path, &st);
	OUT_ERR("stat.child_reaped", rc);
	return vt_done();
}
