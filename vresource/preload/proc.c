/*
 * /proc paths, as a pid namespace would show them: the application names
 * the chain's processes by virtual pid, the kernel's /proc by system pid.
 *
 * A pid in a path is read this way (the listing, procdir.c, agrees):
 *   - a virtual pid of the chain names that process;
 *   - the system pid of a chain process whose virtual pid differs names
 *     nothing (ENOENT): the chain sees that process under its virtual pid;
 *   - any other pid names the system's process of that pid, which is
 *     outside the chain, or no process.
 * The same holds for <tid> in /proc/<pid>/task/<tid> of a chain process.
 * Paths relative to a directory fd on /proc (or a cwd there) are read
 * the same way: the directory's own path is the kernel's, the rest is the
 * caller's.  /proc/self and /proc/thread-self are the kernel's links; only
 * readlink of them is rewritten.
 *
 * Files whose text holds pids (procstat.c, sysvipc.c) are served from a
 * rewritten copy when opened for reading.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vrid.h"

#define PROC "/proc/"
#define PROC_LEN (sizeof(PROC) - 1)
#define PROC_SUPER_MAGIC 0x9fa0

const char *vrid_parse_pid(const char *s, pid_t *pid)
{
	long v = 0;

	/* The kernel names pids without leading zeros; /proc/01 is no process. */
	if (*s < '1' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (*s - '0');
		if (v > INT32_MAX)
			return NULL;
	}
	if (*s != '/' && *s != '\0')
		return NULL;
	*pid = (pid_t)v;
	return s;
}

/* The word w as a whole path component at s: what follows it, or NULL. */
static const char *component(const char *s, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(s, w, n) != 0 || (s[n] != '/' && s[n] != '\0'))
		return NULL;
	return s + n;
}

int vrid_proc_name_in(pid_t n, pid_t *sys, int *chain)
{
	pid_t virt;

	if (vrid_virt_to_sys(&vrid.tab, VRID_PID, n, sys) == 0) {
		*chain = 1;
		return 0;
	}
	if (vrid_sys_to_virt(&vrid.tab, VRID_PID, n, &virt) == 0)
		return -ENOENT;
	*sys = n;
	*chain = 0;
	return 0;
}

/*
 * A pid component at s: system-side when it lies in the first sys_len
 * bytes of path (a directory fd's own path), else the caller's.
 */
static int pid_component(const char *path, size_t sys_len, const char *s, pid_t n,
			 pid_t *sys, int *chain)
{
	pid_t virt;

	if ((size_t)(s - path) < sys_len) {
		*sys = n;
		*chain = vrid_sys_to_virt(&vrid.tab, VRID_PID, n, &virt) == 0;
		return 0;
	}
	return vrid_proc_name_in(n, sys, chain);
}

/*
 * Reads path (absolute) into ref and writes the system path into buf.
 * Returns path itself when it is not a /proc/<pid> path, buf, or NULL
 * with *err set.
 */
static const char *proc_resolve(const char *path, size_t sys_len, struct vrid_proc_ref *ref,
				char *buf, size_t len, int *err)
{
	const char *s = path + PROC_LEN, *rest, *tail;
	char pid_text[16];
	pid_t n, t;
	int unused, m;

	memset(ref, 0, sizeof(*ref));
	if (likely(strncmp(path, PROC, PROC_LEN) != 0))
		return path;
	if ((rest = component(s, "thread-self"))) {
		ref->spid = (pid_t)vrid_sys0(SYS_getpid);
		ref->stid = (pid_t)vrid_sys0(SYS_gettid);
		ref->chain = 1;
		strcpy(pid_text, "thread-self");
	} else if ((rest = component(s, "self"))) {
		ref->spid = (pid_t)vrid_sys0(SYS_getpid);
		ref->chain = 1;
		strcpy(pid_text, "self");
	} else if ((rest = vrid_parse_pid(s, &n))) {
		if ((*err = pid_component(path, sys_len, s, n, &ref->spid, &ref->chain)) < 0)
			return NULL;
		snprintf(pid_text, sizeof(pid_text), "%d", ref->spid);
	} else {
		return path;
	}
	ref->tail = rest;
	if (ref->chain && !ref->stid && strncmp(rest, "/task/", 6) == 0 &&
	    (tail = vrid_parse_pid(rest + 6, &t))) {
		if ((*err = pid_component(path, sys_len, rest + 6, t, &ref->stid, &unused)) < 0)
			return NULL;
		ref->tail = tail;
		m = snprintf(buf, len, PROC "%s/task/%d%s", pid_text, ref->stid, tail);
	} else {
		m = snprintf(buf, len, PROC "%s%s", pid_text, rest);
	}
	if (m < 0 || (size_t)m >= len) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	ref->tail = buf + m - strlen(ref->tail);
	return buf;
}

/*
 * Relative names that may need their directory's path: a pid, or a name
 * found in /proc/<pid> that the layer rewrites or follows.
 */
static int rel_may_name_pid(const char *path)
{
	static const char *const names[] = { "self", "thread-self", "task", "stat", "status", "sysvipc" };
	pid_t unused;

	if (path[0] == '/' || path[0] == '\0')
		return 0;
	if (path[0] >= '1' && path[0] <= '9')
		return vrid_parse_pid(path, &unused) != NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (component(path, names[i]))
			return 1;
	return 0;
}

/* The kernel's path of dirfd (or of the cwd) when it is on a procfs, in buf. */
static int proc_dir_path(int dirfd, char *buf, size_t len)
{
	struct statfs sfs;
	char link[40];
	long n;

	if (dirfd == AT_FDCWD) {
		if (vrid_sys2(SYS_statfs, ".", &sfs) < 0)
			return -1;
		strcpy(link, "/proc/self/cwd");
	} else {
		if (vrid_sys2(SYS_fstatfs, dirfd, &sfs) < 0)
			return -1;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	}
	if (sfs.f_type != PROC_SUPER_MAGIC)
		return -1;
	n = vrid_sys(SYS_readlinkat, AT_FDCWD, (long)link, (long)buf, (long)len - 1, 0, 0);
	if (n <= 0 || (size_t)n >= len - 1)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

int vrid_proc_in(int dirfd, const char *path, struct vrid_proc_call *c)
{
	char dir[PATH_MAX];
	const char *full = path;
	size_t sys_len = 0;
	int n, err = 0;

	c->dirfd = dirfd;
	c->path = path;
	memset(&c->ref, 0, sizeof(c->ref));
	if (!path)
		return 0;
	if (unlikely(rel_may_name_pid(path))) {
		n = proc_dir_path(dirfd, dir, sizeof(dir));
		if (n < 0 || (size_t)n + 1 + strlen(path) >= sizeof(dir))
			return 0;
		dir[n] = '/';
		strcpy(dir + n + 1, path);
		full = dir;
		sys_len = (size_t)n + 1;
	}
	c->path = proc_resolve(full, sys_len, &c->ref, c->buf, sizeof(c->buf), &err);
	if (!c->path)
		return err;
	if (c->path == dir) {
		/* Not a /proc/<pid> path after all: the caller's own serves. */
		c->path = path;
	} else if (full == dir) {
		c->dirfd = AT_FDCWD;
	}
	return 0;
}

/*
 * readlink of /proc/self and /proc/thread-self: the kernel's full text,
 * "<spid>" or "<spid>/task/<stid>", rewritten, then cut to the caller's
 * buffer as readlink cuts.
 */
static ssize_t self_link(const char *path, char *buf, size_t size)
{
	char text[64], out[64];
	pid_t spid, stid;
	const char *rest;
	ssize_t n;
	int m;

	n = real.readlink(path, text, sizeof(text) - 1);
	if (n < 0)
		return n;
	text[n] = '\0';
	rest = vrid_parse_pid(text, &spid);
	if (rest && strncmp(rest, "/task/", 6) == 0 && vrid_parse_pid(rest + 6, &stid))
		m = snprintf(out, sizeof(out), "%d/task/%d", vrid_pid_out(spid), vrid_pid_out(stid));
	else if (rest && *rest == '\0')
		m = snprintf(out, sizeof(out), "%d", vrid_pid_out(spid));
	else
		m = snprintf(out, sizeof(out), "%s", text);
	if (m < 0)
		return -1;
	if ((size_t)m > size)
		m = (int)size;
	memcpy(buf, out, m);
	return m;
}

/* /proc/self or /proc/thread-self itself, which the kernel names by system ids. */
static int is_self_link(const struct vrid_proc_call *c)
{
	return strcmp(c->path, PROC "self") == 0 || strcmp(c->path, PROC "thread-self") == 0;
}

int vrid_proc_names_pid(const char *path)
{
	pid_t unused;

	return path && strncmp(path, PROC, PROC_LEN) == 0 && vrid_parse_pid(path + PROC_LEN, &unused);
}

/* VRID_GUARD for paths: with broken tables, only /proc/<pid> paths fail. */
#define PROC_GUARD(path, fail, passthrough)				\
	do {								\
		if (unlikely(!vrid_on())) {				\
			if (vrid_broken() && vrid_proc_names_pid(path)) {		\
				errno = ENOTRECOVERABLE;		\
				return fail;				\
			}						\
			return passthrough;				\
		}							\
	} while (0)

/* Declares c, the call's system path and directory, or fails. */
#define PATH_IN(dirfd, path, c, fail)					\
	struct vrid_proc_call c;					\
	do {								\
		int path_err_ = vrid_proc_in(dirfd, path, &c);		\
		if (path_err_ < 0) {					\
			errno = -path_err_;				\
			return fail;					\
		}							\
	} while (0)

static int open_mode_needed(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* open's third argument exists only when the flags create a file. */
#define OPEN_MODE(mode, flags)						\
	mode_t mode = 0;						\
	if (open_mode_needed(flags)) {					\
		va_list ap;						\
		va_start(ap, flags);					\
		mode = va_arg(ap, mode_t);				\
		va_end(ap);						\
	}

static int proc_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd;

	PATH_IN(dirfd, path, c, -1);
	fd = vrid_proc_open_view(&c, flags);
	if (fd != VRID_PROC_PASS)
		return fd;
	return real.openat(c.dirfd, c.path, flags, mode);
}

VRID_EXPORT int open(const char *path, int flags, ...)
{
	OPEN_MODE(mode, flags);
	PROC_GUARD(path, -1, real.open(path, flags, mode));
	return proc_openat(AT_FDCWD, path, flags, mode);
}

VRID_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(mode, flags);
	PROC_GUARD(path, -1, real.openat(dirfd, path, flags, mode));
	return proc_openat(dirfd, path, flags, mode);
}

/* The _FORTIFY_SOURCE entry points: open and openat without a mode. */
int __open_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);

VRID_EXPORT int __open_2(const char *path, int flags)
{
	PROC_GUARD(path, -1, real.__open_2(path, flags));
	if (open_mode_needed(flags))
		return real.__open_2(path, flags);	/* libc reports the missing mode */
	return proc_openat(AT_FDCWD, path, flags, 0);
}

VRID_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	PROC_GUARD(path, -1, real.__openat_2(dirfd, path, flags));
	if (open_mode_needed(flags))
		return real.__openat_2(dirfd, path, flags);
	return proc_openat(dirfd, path, flags, 0);
}

/* fopen's mode string as open flags, for the files the layer serves. */
static int fopen_flags(const char *mode)
{
	int flags = strchr(mode, '+') ? O_RDWR : (mode[0] == 'r' ? O_RDONLY : O_WRONLY);

	return flags | (strchr(mode, 'e') ? O_CLOEXEC : 0);
}

VRID_EXPORT FILE *fopen(const char *path, const char *mode)
{
	FILE *f;
	int fd;

	PROC_GUARD(path, NULL, real.fopen(path, mode));
	PATH_IN(AT_FDCWD, path, c, NULL);
	fd = vrid_proc_open_view(&c, fopen_flags(mode));
	if (fd == VRID_PROC_PASS)
		return real.fopen(c.path, mode);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (!f) {
		int saved = errno;

		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		errno = saved;
	}
	return f;
}

VRID_EXPORT int stat(const char *path, struct stat *st)
{
	PROC_GUARD(path, -1, real.stat(path, st));
	PATH_IN(AT_FDCWD, path, c, -1);
	return real.stat(c.path, st);
}

VRID_EXPORT int lstat(const char *path, struct stat *st)
{
	PROC_GUARD(path, -1, real.lstat(path, st));
	PATH_IN(AT_FDCWD, path, c, -1);
	return real.lstat(c.path, st);
}

VRID_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	PROC_GUARD(path, -1, real.fstatat(dirfd, path, st, flags));
	PATH_IN(dirfd, path, c, -1);
	return real.fstatat(c.dirfd, c.path, st, flags);
}

VRID_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
	PROC_GUARD(path, -1, real.statx(dirfd, path, flags, mask, stx));
	PATH_IN(dirfd, path, c, -1);
	return real.statx(c.dirfd, c.path, flags, mask, stx);
}

VRID_EXPORT int access(const char *path, int mode)
{
	PROC_GUARD(path, -1, real.access(path, mode));
	PATH_IN(AT_FDCWD, path, c, -1);
	return real.access(c.path, mode);
}

VRID_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	PROC_GUARD(path, -1, real.faccessat(dirfd, path, mode, flags));
	PATH_IN(dirfd, path, c, -1);
	return real.faccessat(c.dirfd, c.path, mode, flags);
}

VRID_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
	PROC_GUARD(path, -1, real.readlink(path, buf, size));
	PATH_IN(AT_FDCWD, path, c, -1);
	if (is_self_link(&c))
		return self_link(c.path, buf, size);
	return real.readlink(c.path, buf, size);
}

VRID_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	PROC_GUARD(path, -1, real.readlinkat(dirfd, path, buf, size));
	PATH_IN(dirfd, path, c, -1);
	if (is_self_link(&c))
		return self_link(c.path, buf, size);
	return real.readlinkat(c.dirfd, c.path, buf, size);
}

VRID_EXPORT int chdir(const char *path)
{
	PROC_GUARD(path, -1, real.chdir(path));
	PATH_IN(AT_FDCWD, path, c, -1);
	return real.chdir(c.path);
}

/*
 * The large-file names: on 64-bit glibc they take the same structures and
 * share the wrappers above.
 */
VRID_EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));
VRID_EXPORT int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
VRID_EXPORT int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
VRID_EXPORT int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));
VRID_EXPORT FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

_Static_assert(sizeof(struct stat64) == sizeof(struct stat), "stat64 differs from stat");

VRID_EXPORT int stat64(const char *path, struct stat64 *st)
{
	return stat(path, (struct stat *)st);
}

VRID_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return lstat(path, (struct stat *)st);
}

VRID_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat(dirfd, path, (struct stat *)st, flags);
}
