/*
 * The preload layer's attach, for corrupt_test.go: layer.c is included
 * whole, and its constructor maps and checks the table file VRID_TABLE
 * for the AID VRID_AID before main() runs.  main() prints the state it
 * reached ("off", "on" or "broken"); the layer's log lines, which say
 * why, go to stderr.  Go and C must refuse the same files.
 *
 * The engine (table.c, lock.c, record.c, tablecheck.c) is linked too:
 * attach checks the file with it and hands the fd it mapped the file
 * with to the writer lock, and main() of an attached process takes that
 * lock once and lets it go, answering "on" only if it could.
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

/* table.c's types; this process never writes, so never asks one. */
static int alive(int32_t sys)
{
	(void)sys;
	return 1;
}

const struct vrid_type_ops pid_type_ops = { VRID_PID, "pid", alive, NULL };
const struct vrid_type_ops sem_type_ops = { VRID_SEM, "sem", alive, NULL };
const struct vrid_type_ops shm_type_ops = { VRID_SHM, "shm", alive, NULL };
const struct vrid_type_ops msg_type_ops = { VRID_MSG, "msg", alive, NULL };
const struct vrid_type_ops ipckey_type_ops = { VRID_IPCKEY, "ipckey", alive, NULL };

int main(void)
{
	static const char *const states[] = { "off", "on", "broken" };
	sigset_t saved;
	int err;

	if (vrid_on()) {
		if ((err = vrid_lock(&vrid.tab, &saved)) < 0) {
			printf("on, but the writer lock fails: errno %d\n", -err);
			return 0;
		}
		vrid_unlock(&vrid.tab, &saved);
	}
	puts(states[vrid.state]);
	return 0;
}
