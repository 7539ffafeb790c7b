/*
 * The root exits while its descendants live on: a child in a session of
 * its own and a grandchild.  `vrid run` must end them all before it
 * returns (the leak check looks for them).
 */
#include "vt.h"

int main(void)
{
	int ready[2];
	pid_t pid;
	char c;

	MUST(pipe(ready) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		pid_t grandchild;

		CHECK(setsid() == getpid());
		grandchild = vt_fork();
		MUST(grandchild >= 0);
		if (grandchild == 0) {
			for (;;)
				pause();
		}
		OUT_INT("child.fork", grandchild);
		fflush(stdout);
		MUST(write(ready[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	close(ready[1]);
	MUST(read(ready[0], &c, 1) == 1);
	OUT_INT("fork", pid);
	return vt_done();
}
