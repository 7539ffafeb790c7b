/*
 * ioctl owners: FIOSETOWN, SIOCSPGRP, FIOGETOWN and SIOCGPGRP on a socket,
 * and TIOCGPGRP, TIOCSPGRP and TIOCGSID on a terminal, by virtual ids.
 */
#include "vt.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static void show_owner(const char *name, int fd, unsigned long request)
{
	char key[64];
	int owner = -7, rc;

	rc = ioctl(fd, request, &owner);
	snprintf(key, sizeof(key), "%s.rc", name);
	OUT_INT(key, rc);
	snprintf(key, sizeof(key), "%s.value", name);
	OUT_INT(key, owner);
}

/*
 * A child in a session of its own with a pseudo-terminal as its
 * controlling terminal: its group and session are its pid, and it can
 * make a second child's group the foreground one.
 */
static void terminal_child(void)
{
	int master, slave, rc;
	pid_t me, fg, got;
	char c;
	int go[2];

	MUST(openpty(&master, &slave, NULL, NULL, NULL) == 0);
	MUST(setsid() > 0);
	MUST(ioctl(slave, TIOCSCTTY, 0) == 0);
	me = getpid();
	OUT_INT("tty.child", me);
	show_owner("tty.tiocgpgrp", slave, TIOCGPGRP);
	show_owner("tty.tiocgsid", slave, TIOCGSID);
	OUT_INT("tty.tcgetpgrp", tcgetpgrp(slave));

	/* a grandchild in a group of its own, made the foreground group */
	MUST(pipe(go) == 0);
	fg = vt_fork();
	MUST(fg >= 0);
	if (fg == 0) {
		close(go[1]);
		setpgid(0, 0);
		CHECK(read(go[0], &c, 1) == 0);
		vt_child_exit(0);
	}
	close(go[0]);
	setpgid(fg, fg);
	OUT_INT("tty.fg", fg);
	signal(SIGTTOU, SIG_IGN);
	rc = ioctl(slave, TIOCSPGRP, &fg);
	OUT_INT("tty.tiocspgrp", rc);
	show_owner("tty.tiocgpgrp.after", slave, TIOCGPGRP);
	got = 4242;
	rc = ioctl(slave, TIOCSPGRP, &got);
	OUT_ERR("tty.tiocspgrp.unknown", rc);
	rc = ioctl(slave, TIOCSPGRP, &me);
	OUT_INT("tty.tiocspgrp.back", rc);
	show_owner("tty.tiocgpgrp.back", slave, TIOCGPGRP);
	close(go[1]);
	OUT_INT("tty.fg.status", vt_exit_code(vt_wait(fg)));
	vt_child_exit(0);
}

int main(void)
{
	int sv[2], owner, rc;
	pid_t pid;

	MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	owner = getpid();
	OUT_INT("fiosetown.self", ioctl(sv[0], FIOSETOWN, &owner));
	OUT_INT("fiosetown.caller_kept", owner);
	show_owner("fiogetown.self", sv[0], FIOGETOWN);
	show_owner("siocgpgrp.self", sv[0], SIOCGPGRP);
	owner = -getpgrp();
	OUT_INT("siocspgrp.group", ioctl(sv[0], SIOCSPGRP, &owner));
	show_owner("fiogetown.group", sv[0], FIOGETOWN);
	OUT_INT("fcntl.getown.group", fcntl(sv[0], F_GETOWN));
	owner = 4242;
	rc = ioctl(sv[0], FIOSETOWN, &owner);
	OUT_ERR("fiosetown.unknown", rc);
	owner = -4242;
	rc = ioctl(sv[0], SIOCSPGRP, &owner);
	OUT_ERR("siocspgrp.unknown_group", rc);
	OUT_INT("fcntl.setown.self", fcntl(sv[0], F_SETOWN, getpid()));
	show_owner("siocgpgrp.from_fcntl", sv[0], SIOCGPGRP);
	close(sv[0]);
	close(sv[1]);

	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0)
		terminal_child();
	OUT_INT("tty.child.status", vt_exit_code(vt_wait(pid)));
	return vt_done();
}
