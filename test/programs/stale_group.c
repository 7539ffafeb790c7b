/*
 * A chain that leaves a stale pid entry without any malice: a process
 * group leader reaped while its group lives on keeps its entry, as a
 * group id, and keeps it once the group is gone too.  The root (1000)
 * forks a leader (1001), which makes a group of its own, forks a member
 * (1002) into it and exits; the root reaps the leader while the member
 * lives, then lets the member go.  The member, an orphan, exits and is
 * reaped by vrid run.  The root says ready and sleeps.  The pid of 1001
 * is then free for anyone.
 */
#include "vt.h"

#include <signal.h>

int main(void)
{
	pid_t leader, member, parent;
	int go[2];
	char byte;

	MUST(pipe(go) == 0);
	leader = vt_fork();
	MUST(leader >= 0);
	if (leader == 0) {
		MUST(setpgid(0, 0) == 0);
		parent = getpid();
		member = vt_fork();
		MUST(member >= 0);
		if (member == 0) {
			close(go[1]);
			while (getppid() == parent)
				usleep(1000);
			/* The group lives until the root has reaped its leader. */
			MUST(read(go[0], &byte, 1) == 1);
			vt_child_exit(0);
		}
		vt_child_exit(0);
	}
	close(go[0]);
	CHECK(vt_wait(leader) == 0);
	MUST(write(go[1], "g", 1) == 1);
	close(go[1]);
	OUT_INT("leader", leader);
	OUT_INT("ready", 1);
	fflush(stdout);
	for (;;)
		pause();
}
