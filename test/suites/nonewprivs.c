/*
 * nonewprivs: the workload of critest's NoNewPrivs specs, installed setuid
 * root in the stand-in for registry.k8s.io/e2e-test-images/nonewprivs.
 * Run as uid 1000, it prints the effective uid it got: 0 when the exec
 * could raise privileges, 1000 under no_new_privs.
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
