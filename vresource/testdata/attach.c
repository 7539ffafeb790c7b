/*
 * The preload layer's attach, for corrupt_test.go: layer.c is included
 * whole, and its constructor maps and checks the table file VRID_TABLE
 * for the AID VRID_AID before main() runs.  main() prints the state it
 * reached ("off", "on" or "broken"); the layer's log lines, which say
 * why, go to stderr.  Go and C must refuse the same files.
 */
#include <stdarg.h>

#include "../preload/layer.c"

void vrid_log(enum vrid_level level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "attach: level %d: ", (int)level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void vrid_log_init(void)
{
}

void vrid_env_capture(void)
{
}

int main(void)
{
	static const char *const states[] = { "off", "on", "broken" };

	vrid_on();
	puts(states[vrid.state]);
	return 0;
}
