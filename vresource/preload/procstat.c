/*
 * The text of /proc/<pid>/stat and /proc/<pid>/status (and of task/<tid>/
 * and /proc/self and /proc/thread-self) of the chain's processes, with
 * virtual ids: an open for reading gets a memfd holding the kernel's
 * text, rewritten, seeked to 0.  It is a snapshot taken at open, as a
 * seq_file read in one go would be.
 *
 * Ids of processes outside the chain read as 0, as getppid() and the
 * kernel in a pid namespace give them.  Files of processes outside the
 * chain are the kernel's.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrid.h"

#define LOG_PREFIX "proc: "

#define READ_CHUNK 4096
#define LINE_MAX_OUT 1024

pid_t vrid_proc_subject_out(pid_t sys)
{
	pid_t virt = vrid_pid_out(sys);

	/* A thread that never asked its id has none yet: the listing shows it first. */
	if (virt == 0 && sys > 0) {
		virt = vrid_pid_bind(sys);
		if (virt < 0)
			virt = 0;
	}
	return virt;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		long w = vrid_sys3(SYS_write, fd, p, n);

		if (w == -EINTR)
			continue;
		if (w < 0)
			return (int)w;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int put_line(int out, const char *line, size_t len, vrid_line_fn fn, void *arg)
{
	char buf[LINE_MAX_OUT];
	int n = fn(line, len, buf, sizeof(buf), arg);

	if (n < 0)
		return write_all(out, line, len);
	return write_all(out, buf, (size_t)n);
}

/*
 * Lines longer than a chunk are copied as they are: no line the layer
 * rewrites is that long.
 */
static int copy_lines(int in, int out, vrid_line_fn fn, void *arg)
{
	char buf[READ_CHUNK];
	size_t have = 0;
	int verbatim = 0, err;

	for (;;) {
		long n = vrid_sys3(SYS_read, in, buf + have, sizeof(buf) - have);
		size_t start = 0;

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		have += (size_t)n;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			if (verbatim)
				err = write_all(out, buf + start, i + 1 - start);
			else
				err = put_line(out, buf + start, i + 1 - start, fn, arg);
			if (err < 0)
				return err;
			verbatim = 0;
			start = i + 1;
		}
		if (start == 0 && have == sizeof(buf)) {
			if ((err = write_all(out, buf, have)) < 0)
				return err;
			verbatim = 1;
			have = 0;
			continue;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	if (have == 0)
		return 0;
	return verbatim ? write_all(out, buf, have) : put_line(out, buf, have, fn, arg);
}

int vrid_proc_rewrite(const char *sys_path, int flags, vrid_line_fn fn, void *arg)
{
	long in, out;
	int err;

	in = vrid_sys(SYS_openat, AT_FDCWD, (long)sys_path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (in < 0)
		return vrid_fail((int)in);
	out = vrid_sys2(SYS_memfd_create, "vrid-proc", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (out < 0) {
		vrid_sys(SYS_close, in, 0, 0, 0, 0, 0);
		vrid_log(VRID_LOG_WARN, LOG_PREFIX "no memfd for %s: errno %ld", sys_path, -out);
		return vrid_fail((int)out);
	}
	err = copy_lines((int)in, (int)out, fn, arg);
	vrid_sys(SYS_close, in, 0, 0, 0, 0, 0);
	if (err == 0)
		err = (int)vrid_sys3(SYS_lseek, out, 0, SEEK_SET);
	if (err < 0) {
		vrid_sys(SYS_close, out, 0, 0, 0, 0, 0);
		return vrid_fail(err);
	}
	return (int)out;
}

/* ---- stat ------------------------------------------------------------- */

/* The process or thread a file describes. */
static pid_t subject_of(const struct vrid_proc_ref *ref)
{
	return ref->stid ? ref->stid : ref->spid;
}

/*
 * "pid (comm) state ppid pgrp session tty_nr tpgid ...": comm may hold
 * spaces and parentheses, so the fields start after the last ')'.
 */
static int stat_line(const char *line, size_t len, char *out, size_t cap, void *arg)
{
	const struct vrid_proc_ref *ref = arg;
	const char *open_paren = memchr(line, '(', len), *close = NULL, *p, *end = line + len;
	long ids[5];
	char state;
	int n;

	for (p = line; p < end; p++)
		if (*p == ')')
			close = p;
	if (!open_paren || !close || close + 3 >= end)
		return -1;
	p = close + 2;
	state = *p++;
	for (int i = 0; i < 5; i++) {
		char *next;

		ids[i] = strtol(p, &next, 10);
		if (next == p || next >= end)
			return -1;
		p = next;
	}
	/* ppid, pgrp and session are ids; tty_nr is a device; tpgid an id or -1. */
	n = snprintf(out, cap, "%d %.*s %c %d %d %d %ld %d", vrid_proc_subject_out(subject_of(ref)),
		     (int)(close + 1 - open_paren), open_paren, state,
		     vrid_pid_out((pid_t)ids[0]), vrid_pid_out((pid_t)ids[1]),
		     vrid_pid_out((pid_t)ids[2]), ids[3], vrid_pid_out((pid_t)ids[4]));
	if (n < 0 || (size_t)n + (size_t)(end - p) > cap)
		return -1;
	memcpy(out + n, p, (size_t)(end - p));
	return n + (int)(end - p);
}

/* ---- status ----------------------------------------------------------- */

enum status_id { ST_SUBJECT, ST_OTHER };

static const struct {
	const char *name;	/* with its colon */
	enum status_id kind;
} status_fields[] = {
	{ "Tgid:", ST_OTHER },
	{ "Pid:", ST_SUBJECT },
	{ "PPid:", ST_OTHER },
	{ "TracerPid:", ST_OTHER },
	/* One value per pid namespace, from /proc's own: the chain's view has one. */
	{ "NStgid:", ST_OTHER },
	{ "NSpid:", ST_SUBJECT },
	{ "NSpgid:", ST_OTHER },
	{ "NSsid:", ST_OTHER },
};

static int status_line(const char *line, size_t len, char *out, size_t cap, void *arg)
{
	const struct vrid_proc_ref *ref = arg;

	for (size_t i = 0; i < sizeof(status_fields) / sizeof(status_fields[0]); i++) {
		size_t k = strlen(status_fields[i].name);
		pid_t sys, virt;
		int n;

		if (len <= k || memcmp(line, status_fields[i].name, k) != 0)
			continue;
		sys = (pid_t)strtol(line + k, NULL, 10);
		virt = status_fields[i].kind == ST_SUBJECT ? vrid_proc_subject_out(subject_of(ref))
							   : vrid_pid_out(sys);
		n = snprintf(out, cap, "%s\t%d\n", status_fields[i].name, virt);
		return n < 0 || (size_t)n >= cap ? -1 : n;
	}
	return -1;
}

/* ---- which files ------------------------------------------------------ */

static int read_only(int flags)
{
	return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_PATH | O_DIRECTORY | O_CREAT));
}

int vrid_proc_open_view(const struct vrid_proc_call *c, int flags)
{
	const struct vrid_proc_ref *ref = &c->ref;
	struct vrid_proc_ref copy;
	int saved = errno, fd;

	if (likely(!c->path || c->path[0] != '/' || !read_only(flags)))
		return VRID_PROC_PASS;
	if (!ref->chain || !ref->tail)
		return vrid_sysvipc_open(c->path, flags);
	copy = *ref;
	if (strcmp(ref->tail, "/stat") == 0)
		fd = vrid_proc_rewrite(c->path, flags, stat_line, &copy);
	else if (strcmp(ref->tail, "/status") == 0)
		fd = vrid_proc_rewrite(c->path, flags, status_line, &copy);
	else
		return VRID_PROC_PASS;
	if (fd >= 0)
		errno = saved;
	return fd;
}
