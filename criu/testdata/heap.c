/* heap: touch MIB mebibytes of heap, print "ready", then sleep until
 * killed; the benchmark dumps and restores it.  Usage: heap MIB */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t n = (argc > 1 ? strtoul(argv[1], NULL, 10) : 100) << 20;
	unsigned char *p = malloc(n);

	if (!p)
		return 1;
	/* Distinct bytes per page, so that no page is a zero page. */
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i >> 12) ^ (unsigned char)i;
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
