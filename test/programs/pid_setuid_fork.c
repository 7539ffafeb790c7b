/*
 * A forked child that drops root still records its own children: it
 * locks the tables through a file it opened as it was born, before
 * setuid, not through one it would open afterwards (the table file is
 * root's, mode 0600).
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
		if (grandchild == 0)
			vt_child_exit(5);
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
