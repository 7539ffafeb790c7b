/*
 * Ends as argv says, for `vrid run`'s exit status: "code N" exits N,
 * "signal N" kills itself with signal N (by its virtual pid).
 */
#include "vt.h"

#include <signal.h>

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 0;

	if (argc > 2 && strcmp(argv[1], "signal") == 0) {
		signal(n, SIG_DFL);
		kill(getpid(), n);
		return 100;
	}
	return n;
}
