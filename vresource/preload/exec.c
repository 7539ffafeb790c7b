/*
 * exec keeps a process in its chain: whatever environment the program
 * passes, the new image gets the vrid variables of this one and our
 * library in LD_PRELOAD.  The new environment is built on the caller's
 * stack, because exec may run in a vfork child or a signal handler.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrid.h"

#define LOG_PREFIX "exec: "

extern char **environ;

/* "NAME=value" strings captured at attach, to put back into every exec. */
static char keep_env[VRID_ENV_MAX][VRID_ENV_LEN];
static int keep_count;
static char self_path[VRID_ENV_LEN];
/* The number VRID_TABLE_FD names, or -1. */
static int table_fd = -1;

static const char *const kept_names[] = {
	"VRID_TABLE", "VRID_TABLE_FD", "VRID_AID", "VRID_LOG_FD", "VRID_LOG_LEVEL",
};

static int is_var(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

void vrid_env_capture(void)
{
	const char *fd = getenv("VRID_TABLE_FD");
	Dl_info info;
	char *end;
	long n;

	for (size_t i = 0; i < sizeof(kept_names) / sizeof(kept_names[0]); i++) {
		const char *value = getenv(kept_names[i]);

		if (value && (size_t)snprintf(keep_env[keep_count], VRID_ENV_LEN, "%s=%s",
					      kept_names[i], value) < VRID_ENV_LEN)
			keep_count++;
	}
	if (fd && *fd && (n = strtol(fd, &end, 10)) > 2 && n < INT_MAX && !*end)
		table_fd = (int)n;
	if (dladdr((void *)vrid_env_capture, &info) && info.dli_fname &&
	    strlen(info.dli_fname) < sizeof(self_path))
		strcpy(self_path, info.dli_fname);
	else
		vrid_log(VRID_LOG_WARN, LOG_PREFIX "cannot find our own library path; "
			 "exec'd programs keep only the LD_PRELOAD they pass");
}

int vrid_env_count(char *const envp[])
{
	int n = 0;

	while (envp && envp[n])
		n++;
	return n;
}

static int kept(const char *entry)
{
	for (size_t i = 0; i < sizeof(kept_names) / sizeof(kept_names[0]); i++)
		if (is_var(entry, kept_names[i]))
			return 1;
	return 0;
}

/* LD_PRELOAD=<ours> <theirs>, unless theirs already names ours. */
static char *preload_entry(const char *theirs, char *buf, size_t len)
{
	if (!self_path[0])
		return NULL;
	if (theirs && strstr(theirs, self_path))
		return NULL;
	if ((size_t)snprintf(buf, len, "LD_PRELOAD=%s%s%s", self_path,
			     theirs && *theirs ? " " : "", theirs ? theirs : "") >= len)
		return NULL;
	return buf;
}

/*
 * The table's path and the chain's AID as they are now: a restore may
 * have moved the chain to a new AID, which the layer followed (lock.c).
 */
static void refresh_kept(void)
{
	if (!vrid_on())
		return;
	for (int i = 0; i < keep_count; i++) {
		if (is_var(keep_env[i], "VRID_TABLE") && strlen(vrid.tab.path) < VRID_ENV_LEN - 11)
			snprintf(keep_env[i], VRID_ENV_LEN, "VRID_TABLE=%.*s", VRID_ENV_LEN - 12, vrid.tab.path);
		else if (is_var(keep_env[i], "VRID_AID"))
			snprintf(keep_env[i], VRID_ENV_LEN, "VRID_AID=%llu",
				 (unsigned long long)__atomic_load_n(&vrid.tab.hdr->aid, __ATOMIC_RELAXED));
	}
}

/*
 * The new image may drop root before it attaches, so VRID_TABLE_FD must
 * hold the table even if the program closed every fd before exec, as
 * Python's subprocess does: the fd is put back, by path, while this
 * process still has its rights (and stays open if exec fails).  A number
 * that holds another file is the program's, and left alone.
 */
static void keep_table_fd(void)
{
	struct stat st;
	long fd;

	if (table_fd < 0 || vrid_sys2(SYS_fstat, table_fd, &st) != -EBADF)
		return;
	fd = vrid_sys(SYS_openat, AT_FDCWD, (long)vrid.tab.path, O_RDWR, 0, 0, 0);
	if (fd < 0 || fd == table_fd)
		return;
	vrid_sys3(SYS_dup3, fd, table_fd, 0);
	vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
}

/* out has room for vrid_env_count(envp) + VRID_ENV_MAX + 1 entries. */
void vrid_env_fix(char *const envp[], char **out, char *preload_buf)
{
	const char *theirs = NULL;
	char *preload;
	int n = 0;

	refresh_kept();
	keep_table_fd();

	for (int i = 0; envp && envp[i]; i++) {
		if (kept(envp[i]))
			continue;
		if (is_var(envp[i], "LD_PRELOAD")) {
			theirs = envp[i] + strlen("LD_PRELOAD=");
			preload = preload_entry(theirs, preload_buf, VRID_PRELOAD_LEN);
			out[n++] = preload ? preload : envp[i];
			continue;
		}
		out[n++] = envp[i];
	}
	for (int i = 0; i < keep_count; i++)
		out[n++] = keep_env[i];
	if (!theirs && (preload = preload_entry(NULL, preload_buf, VRID_PRELOAD_LEN)))
		out[n++] = preload;
	out[n] = NULL;
}

VRID_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	VRID_PASS(real.execve(path, argv, envp));
	VRID_WITH_ENV(envp, fixed);
	return real.execve(path, argv, fixed);
}

VRID_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	VRID_PASS(real.execvpe(file, argv, envp));
	VRID_WITH_ENV(envp, fixed);
	return real.execvpe(file, argv, fixed);
}

VRID_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	VRID_PASS(real.execveat(dirfd, path, argv, envp, flags));
	VRID_WITH_ENV(envp, fixed);
	return real.execveat(dirfd, path, argv, fixed, flags);
}

VRID_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	VRID_PASS(real.fexecve(fd, argv, envp));
	VRID_WITH_ENV(envp, fixed);
	return real.fexecve(fd, argv, fixed);
}

/* glibc's own exec variants call execve internally, out of our reach. */
VRID_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

VRID_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

static int count_args(const char *arg0, va_list ap)
{
	int n = 1;

	if (!arg0)
		return 0;
	while (va_arg(ap, char *))
		n++;
	return n;
}

/* Fills argv[0..argc] and leaves ap after the terminating NULL. */
static void collect_args(char **argv, int argc, const char *arg0, va_list *ap)
{
	argv[0] = (char *)arg0;
	for (int i = 1; i <= argc; i++)
		argv[i] = va_arg(*ap, char *);
	argv[argc] = NULL;
}

/* The execl family: argc first, to size the array on the stack. */
#define EXECL_ARGV(argv, arg0, ap)					\
	va_start(ap, arg0);						\
	int argv##_count = count_args(arg0, ap);			\
	va_end(ap);							\
	char *argv[argv##_count + 1];					\
	va_start(ap, arg0);						\
	collect_args(argv, argv##_count, arg0, &ap)

VRID_EXPORT int execl(const char *path, const char *arg0, ...)
{
	va_list ap;

	EXECL_ARGV(argv, arg0, ap);
	va_end(ap);
	return execve(path, argv, environ);
}

VRID_EXPORT int execlp(const char *file, const char *arg0, ...)
{
	va_list ap;

	EXECL_ARGV(argv, arg0, ap);
	va_end(ap);
	return execvpe(file, argv, environ);
}

VRID_EXPORT int execle(const char *path, const char *arg0, ...)
{
	char *const *envp;
	va_list ap;

	EXECL_ARGV(argv, arg0, ap);
	envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}
