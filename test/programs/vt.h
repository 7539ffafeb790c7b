/*
 * Shared helpers of the snippet programs: name=value output, self-checks
 * and errno names.  Each program prints only values that are exact under
 * `vrid run --ids sequential`, checks what it can itself, and exits 0 when
 * every check held.  A failed check goes to stderr and makes the exit
 * status 1; the program goes on, so that the golden diff shows the rest.
 */
#ifndef VT_H
#define VT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int vt_failed;

static inline const char *vt_errname(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "E?";
}

#define OUT_INT(name, value) printf("%s=%ld\n", (name), (long)(value))
#define OUT_STR(name, value) printf("%s=%s\n", (name), (value))
/* The errno name of the call just made, or "none" when it did not fail. */
#define OUT_ERR(name, ret) printf("%s.errno=%s\n", (name), (ret) == -1 ? vt_errname(errno) : "none")

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d: %s (errno %s)\n",	\
				__FILE__, __LINE__, #cond, vt_errname(errno)); \
			vt_failed = 1;					\
		}							\
	} while (0)

/* A failed call is fatal when nothing after it can make sense. */
#define MUST(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FATAL %s:%d: %s (errno %s)\n",	\
				__FILE__, __LINE__, #cond, vt_errname(errno)); \
			exit(2);					\
		}							\
	} while (0)

/* Flush before fork, so that no buffered line is printed twice. */
static inline pid_t vt_fork(void)
{
	fflush(stdout);
	fflush(stderr);
	return fork();
}

/* Ends a forked child: its lines out first, then the status it means. */
static inline void vt_child_exit(int code)
{
	fflush(stdout);
	fflush(stderr);
	_exit(vt_failed ? 99 : code);
}

/*
 * Forks a child that runs setup(arg), says it is ready, and lives until
 * the parent closes *release; it then exits 0.  Returns once the child is
 * ready.
 */
static inline pid_t vt_fork_held(void (*setup)(void *), void *arg, int *release)
{
	int ready[2], hold[2];
	pid_t pid;
	char c;

	MUST(pipe(ready) == 0 && pipe(hold) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		close(hold[1]);
		close(ready[0]);
		setup(arg);
		MUST(write(ready[1], "r", 1) == 1);
		CHECK(read(hold[0], &c, 1) == 0);
		vt_child_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	MUST(read(ready[0], &c, 1) == 1);
	close(ready[0]);
	*release = hold[1];
	return pid;
}

/* Waits for pid and returns its raw status; -1 when the wait itself fails. */
static inline int vt_wait(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

static inline int vt_exit_code(int status)
{
	return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * The system pid, from the kernel itself: libc's own syscall(), which the
 * layer does not reach when called through libc's handle.
 */
static inline long vt_sys_pid(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	long (*sys)(long, ...) = libc ? (long (*)(long, ...))dlsym(libc, "syscall") : NULL;

	return sys ? sys(SYS_getpid) : -1;
}

static inline int vt_done(void)
{
	fflush(stdout);
	return vt_failed;
}

#endif
