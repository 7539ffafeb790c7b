/*
 * Children that libc's system() and popen() start and reap: they leave
 * the chain's tables when reaped, like any other child.  Prints what
 * they returned, then says ready and waits, for `vrid tables`.
 */
#include "vt.h"

#include <stdlib.h>

int main(void)
{
	char line[64] = "";
	FILE *f;
	int status;

	status = system("exit 3");
	OUT_INT("system.status", WEXITSTATUS(status));
	f = popen("echo $$", "r");
	MUST(f != NULL);
	MUST(fgets(line, sizeof(line), f) != NULL);
	line[strcspn(line, "\n")] = '\0';
	OUT_STR("popen.pid", line);
	status = pclose(f);
	OUT_INT("pclose.status", WEXITSTATUS(status));
	f = popen("cat >/dev/null; exit 4", "w");
	MUST(f != NULL);
	fputs("data\n", f);
	OUT_INT("pclose.w.status", WEXITSTATUS(pclose(f)));
	OUT_INT("ready", 1);
	fflush(stdout);
	for (;;)
		pause();
}
