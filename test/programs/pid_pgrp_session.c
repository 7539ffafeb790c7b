/*
 * Process groups and sessions: getpgid, setpgid, getpgrp, setpgrp, getsid,
 * setsid, tcgetpgrp and tcsetpgrp, all in virtual ids.
 */
#include "vt.h"

#include <fcntl.h>
#include <signal.h>

/* A child that leads a new group, made race-free from both sides. */
static pid_t new_group_child(void)
{
	int ready[2];
	pid_t pid;
	char c;

	MUST(pipe(ready) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		CHECK(setpgrp() == 0);
		MUST(write(ready[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	setpgid(pid, pid);
	MUST(read(ready[0], &c, 1) == 1);
	close(ready[0]);
	close(ready[1]);
	return pid;
}

int main(void)
{
	pid_t pid, ret;
	int rc, status, master, sync_pipe[2];
	char c;

	OUT_INT("getpgrp", getpgrp());
	OUT_INT("getpgid.0", getpgid(0));
	OUT_INT("getpgid.self", getpgid(getpid()));
	rc = getpgid(4242);
	OUT_ERR("getpgid.unknown", rc);
	OUT_INT("getsid.0", getsid(0));
	OUT_INT("getsid.self", getsid(getpid()));
	rc = getsid(4242);
	OUT_ERR("getsid.unknown", rc);
	/* the root already leads its group */
	OUT_INT("setpgid.self", setpgid(0, 0));
	rc = setpgid(0, 4242);
	OUT_ERR("setpgid.unknown_group", rc);
	rc = setpgid(4242, 0);
	OUT_ERR("setpgid.unknown_pid", rc);
	/* a group leader cannot start a session */
	rc = setsid();
	OUT_ERR("setsid.leader", rc);

	/* a child in a group of its own */
	pid = new_group_child();
	OUT_INT("child", pid);
	OUT_INT("child.getpgid", getpgid(pid));
	OUT_INT("child.getsid", getsid(pid));
	OUT_INT("killpg.child", killpg(pid, 0));
	/* moving myself into the child's group and back */
	rc = setpgid(0, pid);
	OUT_INT("setpgid.join_child_group", rc);
	OUT_INT("setpgid.join_child_group.getpgrp", getpgrp());
	rc = setpgid(0, 0);
	OUT_INT("setpgid.back", rc);
	OUT_INT("setpgid.back.getpgrp", getpgrp());
	kill(pid, SIGKILL);
	vt_wait(pid);

	/*
	 * A group outlives its leader: the leader's id stays the group's id
	 * while a member lives, even after the leader is reaped.
	 */
	{
		int ready[2];
		pid_t leader, member = 0;

		MUST(pipe(ready) == 0);
		leader = vt_fork();
		MUST(leader >= 0);
		if (leader == 0) {
			CHECK(setpgid(0, 0) == 0);
			member = vt_fork();
			MUST(member >= 0);
			if (member == 0) {
				for (;;)
					pause();
			}
			MUST(write(ready[1], &member, sizeof(member)) == sizeof(member));
			vt_child_exit(0);
		}
		setpgid(leader, leader);
		MUST(read(ready[0], &member, sizeof(member)) == sizeof(member));
		close(ready[0]);
		close(ready[1]);
		OUT_INT("group.leader", leader);
		OUT_INT("group.member", member);
		OUT_INT("group.leader.status", vt_exit_code(vt_wait(leader)));
		OUT_INT("group.member.getpgid", getpgid(member));
		OUT_INT("group.killpg_after_leader", killpg(leader, 0));
		OUT_INT("group.kill_minus_leader", kill(-leader, SIGKILL));
		rc = kill(leader, 0);
		OUT_ERR("group.kill_leader_pid", rc);
	}

	/* a child that starts a session and takes a terminal */
	MUST(pipe(sync_pipe) == 0);
	master = posix_openpt(O_RDWR | O_NOCTTY);
	MUST(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		int tty;

		ret = setsid();
		OUT_INT("session.setsid", ret);
		OUT_INT("session.getsid", getsid(0));
		OUT_INT("session.getpgrp", getpgrp());
		OUT_INT("session.getppid", getppid());
		tty = open(ptsname(master), O_RDWR);
		MUST(tty >= 0);
		OUT_INT("session.tcgetpgrp", tcgetpgrp(tty));
		OUT_INT("session.tcsetpgrp.self", tcsetpgrp(tty, getpgrp()));
		rc = tcsetpgrp(tty, 4242);
		OUT_ERR("session.tcsetpgrp.unknown", rc);
		/* setpgrp in a session leader's group changes nothing */
		rc = setpgrp();
		OUT_ERR("session.setpgrp", rc);
		fflush(stdout);
		MUST(write(sync_pipe[1], "r", 1) == 1);
		pause();
		vt_child_exit(0);
	}
	MUST(read(sync_pipe[0], &c, 1) == 1);
	OUT_INT("session.child", pid);
	OUT_INT("session.child.getsid", getsid(pid));
	OUT_INT("session.child.getpgid", getpgid(pid));
	kill(pid, SIGKILL);
	status = vt_wait(pid);
	OUT_INT("session.termsig", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	/* the parent's view of the child's session, while it is gone */
	rc = getsid(pid);
	OUT_ERR("getsid.reaped", rc);
	close(master);
	return vt_done();
}
