/*
 * Not a chain program: a test's stand-in for an unrelated process that a
 * freed pid went to.  spawn_at PID UID PROG [ARG...] starts PROG with pid
 * PID (clone3 with set_tid), as uid and gid UID, its stdio on /dev/null,
 * prints pid=PID and exits, leaving PROG to run.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct clone_args args;
	pid_t want;
	uid_t uid;
	long pid;
	int null;

	if (argc < 4) {
		fprintf(stderr, "usage: spawn_at PID UID PROG [ARG...]\n");
		return 2;
	}
	want = atoi(argv[1]);
	uid = atoi(argv[2]);
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&want;
	args.set_tid_size = 1;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		perror("clone3 with set_tid");
		return 1;
	}
	if (pid == 0) {
		null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(125);
		if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
			_exit(126);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	printf("pid=%ld\n", pid);
	return 0;
}
