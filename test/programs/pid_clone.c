/*
 * The libc clone() wrapper: without CLONE_VM it is a fork on another
 * stack; CLONE_PARENT_SETTID stores the virtual id; CLONE_VM|CLONE_VFORK
 * (as posix_spawn does it) shares the parent's memory, caches included.
 */
#include "vt.h"

#include <sched.h>
#include <signal.h>

#define STACK_SIZE (256 * 1024)

static char stacks[3][STACK_SIZE] __attribute__((aligned(16)));

static int child_prints(void *arg)
{
	(void)arg;
	OUT_INT("clone.child.getpid", getpid());
	OUT_INT("clone.child.getppid", getppid());
	OUT_INT("clone.child.gettid", gettid());
	fflush(stdout);
	return 3;
}

static int child_exits_with_vpid(void *arg)
{
	(void)arg;
	_exit(getpid() - 1000);
}

int main(void)
{
	pid_t pid, ptid = 0;
	int status;

	fflush(stdout);
	pid = clone(child_prints, stacks[0] + STACK_SIZE, SIGCHLD, NULL);
	MUST(pid > 0);
	status = vt_wait(pid);
	OUT_INT("clone", pid);
	OUT_INT("clone.status", vt_exit_code(status));

	pid = clone(child_exits_with_vpid, stacks[1] + STACK_SIZE,
		    CLONE_PARENT_SETTID | SIGCHLD, NULL, &ptid);
	MUST(pid > 0);
	OUT_INT("clone.settid", pid);
	OUT_INT("clone.settid.ptid", ptid);
	OUT_INT("clone.settid.child_getpid_minus_1000", vt_exit_code(vt_wait(pid)));

	pid = clone(child_exits_with_vpid, stacks[2] + STACK_SIZE,
		    CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	MUST(pid > 0);
	OUT_INT("clone.vm_vfork", pid);
	OUT_INT("clone.vm_vfork.child_getpid_minus_1000", vt_exit_code(vt_wait(pid)));
	/* the child shared our memory: our own ids must still be ours */
	OUT_INT("getpid.after_vm_child", getpid());
	OUT_INT("gettid.after_vm_child", gettid());
	return vt_done();
}
