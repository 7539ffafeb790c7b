/* occupy: take exact pids with clone3(set_tid) and hold them until killed.
 * Prints "taken N" for a pid it now holds and "busy N" for one another
 * process holds already, then "ready".  Needs CAP_SYS_ADMIN (root).
 * Usage: occupy PID... */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t self = getpid();

	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc; i++) {
		pid_t want = atoi(argv[i]);
		struct clone_args args = {
			.exit_signal = SIGCHLD,
			.set_tid = (uintptr_t)&want,
			.set_tid_size = 1,
		};
		long pid = syscall(SYS_clone3, &args, sizeof(args));

		if (pid == 0) {
			/* Die with the holder, which the test kills. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != self)
				_exit(0);
			for (;;)
				pause();
		}
		if (pid < 0 && errno == EEXIST) {
			printf("busy %d\n", want);
			continue;
		}
		if (pid != want) {
			printf("FAIL clone3 set_tid %d: %s\n", want, strerror(errno));
			return 1;
		}
		printf("taken %d\n", want);
	}
	printf("ready\n");
	for (;;)
		pause();
}
