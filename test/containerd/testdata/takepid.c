/*
 * takepid PID: starts a process with pid PID in the caller's pid namespace
 * (clone3 with set_tid, as CRIU restores pids), which sleeps until killed,
 * and prints its pid.  The test runs it through nsenter --pid, to take a
 * pid of a container's pid namespace.
 */
#define _GNU_SOURCE
#include <fcntl.h>
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
	pid_t tid, child;

	if (argc != 2)
		return 2;
	tid = (pid_t)atoi(argv[1]);
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&tid;
	args.set_tid_size = 1;
	child = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (child < 0) {
		perror("clone3");
		return 1;
	}
	if (child == 0) {
		int fd = open("/dev/null", O_RDWR);

		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		setsid();
		for (;;)
			pause();
	}
	printf("%d\n", child);
	return 0;
}
