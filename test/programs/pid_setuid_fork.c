/*
 * A forked child that drops root still records its own children: it
 * locks the tables through a file it opened as it was born, before
 * setuid.  Its child, born without root, can't reach the table by its
 * path (the state directory is root's, mode 0700), and still records
 * children of its own: it opens its lock through the fd it inherited.
 */
#include "vt.h"

int main(void)
{
	pid_t child, grandchild;
	int status;

	child = vt_fork();
	MUST(child >= 0);
	if (child == 0) {
		MUST(setgid(65534) == 0 && setuid(65534) == 0);
		grandchild = vt_fork();
		MUST(grandchild >= 0);
		if (grandchild == 0) {
			pid_t great = vt_fork();
			int st;

			if (great == 0)
				vt_child_exit(6);
			if (great != 1003 || waitpid(great, &st, 0) != 1003 || WEXITSTATUS(st) != 6)
				vt_child_exit(7);
			vt_child_exit(5);
		}
		OUT_INT("child.getuid", getuid());
		OUT_INT("child.fork", grandchild);
		OUT_INT("child.waitpid", waitpid(grandchild, &status, 0));
		OUT_INT("child.waitpid.status", WEXITSTATUS(status));
		CHECK(grandchild == 1002 && WEXITSTATUS(status) == 5);
		vt_child_exit(vt_done());
	}
	OUT_INT("fork", child);
	OUT_INT("waitpid", waitpid(child, &status, 0));
	OUT_INT("waitpid.status", WEXITSTATUS(status));
	CHECK(child == 1001 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return vt_done();
}
