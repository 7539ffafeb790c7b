/*
 * /proc/<pid> paths: the application names processes by virtual pid, the
 * kernel's /proc by system pid.  Absolute paths of the form
 * /proc/<pid>[/task/<tid>][/...] are rewritten on the way in, and the
 * /proc/self and /proc/thread-self links on the way out.
 *
 * Not rewritten: paths relative to an fd opened on /proc, and the contents
 * of files such as /proc/<pid>/stat, which hold system ids.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrid.h"

#define PROC "/proc/"
#define PROC_LEN (sizeof(PROC) - 1)

static const char *parse_pid(const char *s, pid_t *pid)
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

/*
 * The system path for path, in buf; path itself when it needs no change;
 * NULL when it names a pid outside the chain (the caller fails ENOENT).
 */
static const char *proc_path_in(const char *path, char *buf, size_t len)
{
	const char *rest, *tail;
	pid_t vpid, spid, vtid, stid;
	int n;

	if (likely(!path || strncmp(path, PROC, PROC_LEN) != 0))
		return path;
	rest = parse_pid(path + PROC_LEN, &vpid);
	if (!rest)
		return path;
	if (vrid_pid_in(vpid, &spid) < 0 || spid == 0)
		return NULL;
	if (strncmp(rest, "/task/", 6) == 0 && (tail = parse_pid(rest + 6, &vtid))) {
		if (vrid_pid_in(vtid, &stid) < 0 || stid == 0)
			return NULL;
		n = snprintf(buf, len, PROC "%d/task/%d%s", spid, stid, tail);
	} else {
		n = snprintf(buf, len, PROC "%d%s", spid, rest);
	}
	return n > 0 && (size_t)n < len ? buf : NULL;
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
	rest = parse_pid(text, &spid);
	if (rest && strncmp(rest, "/task/", 6) == 0 && parse_pid(rest + 6, &stid))
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

static int is_self_link(const char *path)
{
	return strcmp(path, "/proc/self") == 0 || strcmp(path, "/proc/thread-self") == 0;
}

/* Whether path names a process by number: only those need the tables. */
static int names_pid(const char *path)
{
	pid_t unused;

	return path && strncmp(path, PROC, PROC_LEN) == 0 && parse_pid(path + PROC_LEN, &unused);
}

/* VRID_GUARD for paths: with broken tables, only /proc/<pid> paths fail. */
#define PROC_GUARD(path, fail, passthrough)				\
	do {								\
		if (unlikely(!vrid_on())) {				\
			if (vrid_broken() && names_pid(path)) {		\
				errno = ENOTRECOVERABLE;		\
				return fail;				\
			}						\
			return passthrough;				\
		}							\
	} while (0)

#define PATH_IN(path, sys_path, fail)					\
	char sys_path##_buf[PATH_MAX];			\
	const char *sys_path = proc_path_in(path, sys_path##_buf, sizeof(sys_path##_buf)); \
	if (!sys_path) {						\
		errno = ENOENT;						\
		return fail;						\
	}

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

VRID_EXPORT int open(const char *path, int flags, ...)
{
	OPEN_MODE(mode, flags);
	PROC_GUARD(path, -1, real.open(path, flags, mode));
	PATH_IN(path, sys_path, -1);
	return real.open(sys_path, flags, mode);
}

VRID_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_MODE(mode, flags);
	PROC_GUARD(path, -1, real.openat(dirfd, path, flags, mode));
	PATH_IN(path, sys_path, -1);
	return real.openat(dirfd, sys_path, flags, mode);
}

VRID_EXPORT FILE *fopen(const char *path, const char *mode)
{
	PROC_GUARD(path, NULL, real.fopen(path, mode));
	PATH_IN(path, sys_path, NULL);
	return real.fopen(sys_path, mode);
}

VRID_EXPORT int stat(const char *path, struct stat *st)
{
	PROC_GUARD(path, -1, real.stat(path, st));
	PATH_IN(path, sys_path, -1);
	return real.stat(sys_path, st);
}

VRID_EXPORT int lstat(const char *path, struct stat *st)
{
	PROC_GUARD(path, -1, real.lstat(path, st));
	PATH_IN(path, sys_path, -1);
	return real.lstat(sys_path, st);
}

VRID_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	PROC_GUARD(path, -1, real.fstatat(dirfd, path, st, flags));
	PATH_IN(path, sys_path, -1);
	return real.fstatat(dirfd, sys_path, st, flags);
}

VRID_EXPORT int access(const char *path, int mode)
{
	PROC_GUARD(path, -1, real.access(path, mode));
	PATH_IN(path, sys_path, -1);
	return real.access(sys_path, mode);
}

VRID_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	PROC_GUARD(path, -1, real.faccessat(dirfd, path, mode, flags));
	PATH_IN(path, sys_path, -1);
	return real.faccessat(dirfd, sys_path, mode, flags);
}

VRID_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
	PROC_GUARD(path, -1, real.readlink(path, buf, size));
	if (is_self_link(path))
		return self_link(path, buf, size);
	PATH_IN(path, sys_path, -1);
	return real.readlink(sys_path, buf, size);
}

VRID_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	PROC_GUARD(path, -1, real.readlinkat(dirfd, path, buf, size));
	if (is_self_link(path))
		return self_link(path, buf, size);
	PATH_IN(path, sys_path, -1);
	return real.readlinkat(dirfd, sys_path, buf, size);
}

VRID_EXPORT DIR *opendir(const char *path)
{
	PROC_GUARD(path, NULL, real.opendir(path));
	PATH_IN(path, sys_path, NULL);
	return real.opendir(sys_path);
}

/*
 * The large-file names: on 64-bit glibc they take the same structures and
 * share the wrappers above.
 */
VRID_EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));
VRID_EXPORT int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
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
