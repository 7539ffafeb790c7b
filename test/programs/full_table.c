/*
 * A full pid table: run with [tables] pid_slots = 16, which holds 12
 * entries.  The root takes one, so 11 children fit and the 12th fork fails
 * with EAGAIN; once the children are reaped, fork works again.
 */
#include "vt.h"

#include <signal.h>

#define MAX_CHILDREN 64

int main(void)
{
	pid_t kids[MAX_CHILDREN], pid;
	int n = 0, err = 0, hold[2], i;
	char c;

	MUST(pipe(hold) == 0);
	for (;;) {
		MUST(n < MAX_CHILDREN);
		pid = vt_fork();
		if (pid == 0) {
			close(hold[1]);
			/* wait until the parent closes the pipe */
			while (read(hold[0], &c, 1) > 0)
				;
			_exit(0);
		}
		if (pid < 0) {
			err = errno;
			break;
		}
		kids[n++] = pid;
	}
	OUT_INT("forks.ok", n);
	OUT_INT("forks.first", kids[0]);
	OUT_INT("forks.last", kids[n - 1]);
	OUT_STR("fork.full.errno", vt_errname(err));
	close(hold[1]);
	close(hold[0]);
	for (i = 0; i < n; i++)
		CHECK(vt_exit_code(vt_wait(kids[i])) == 0);
	/* room again */
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0)
		_exit(0);
	OUT_INT("fork.after_reap", pid);
	OUT_INT("fork.after_reap.status", vt_exit_code(vt_wait(pid)));
	/* the table never had to give up a live entry */
	OUT_INT("getpid", getpid());
	return vt_done();
}
