/*
 * /proc/sysvipc/{sem,shm,msg}, as the chain sees its IPC namespace, by
 * the rule its /proc listing follows for processes: the chain's objects
 * with virtual ids, the chain's keys and virtual pids; every other
 * object of the namespace (a host's, when a pod shares the host's IPC
 * namespace) under its own id and key, except one whose id is at that
 * moment a virtual id of the chain of the same type, since that id names
 * the chain's object here.  Pids read as everywhere in the chain: virtual
 * for its processes, 0 for the others.  ipcs reads these files, so that
 * it lists and finds (`ipcs -i`) objects by the ids the chain uses; the
 * calls that take an id still fail with EINVAL for an outside object.
 * The columns keep the kernel's widths where the new value fits.  The
 * *_INFO counts (`ipcs -u`) are the chain's alone.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrid.h"

#define MAX_FIELDS 24

struct sysvipc_file {
	const char *path;
	enum vrid_type type;
	int pid_cols[2];	/* columns holding pids, or -1 */
};

/* Columns: key, id, then per kernel format (ipc/{sem,shm,msg}.c *_proc_show). */
static const struct sysvipc_file sysvipc_files[] = {
	{ "/proc/sysvipc/sem", VRID_SEM, { -1, -1 } },
	{ "/proc/sysvipc/shm", VRID_SHM, { 4, 5 } },	/* cpid lpid */
	{ "/proc/sysvipc/msg", VRID_MSG, { 5, 6 } },	/* lspid lrpid */
};

struct field {
	size_t start, end;	/* the token's bytes; spaces before it run from the previous end */
};

/* Splits line into fields; returns how many (at most MAX_FIELDS). */
static int split(const char *line, size_t len, struct field *f)
{
	int n = 0;
	size_t i = 0;

	while (n < MAX_FIELDS) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i >= len || line[i] == '\n')
			break;
		f[n].start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\n')
			i++;
		f[n++].end = i;
	}
	return n;
}

/*
 * Writes line with field k replaced by values[k] where set[k], each new
 * value right-aligned in the room its old value and the spaces before it
 * took, with at least one space between fields.
 */
static int rebuild(const char *line, size_t len, const struct field *f, int nf,
		   const long *values, const int *set, char *out, size_t cap)
{
	size_t o = 0, prev = 0;

	for (int k = 0; k < nf; k++) {
		char text[24];
		size_t room = f[k].end - prev, tlen, pad;

		if (!set[k]) {
			tlen = f[k].end - prev;
			if (o + tlen >= cap)
				return -1;
			memcpy(out + o, line + prev, tlen);
			o += tlen;
			prev = f[k].end;
			continue;
		}
		tlen = (size_t)snprintf(text, sizeof(text), "%ld", values[k]);
		pad = room > tlen ? room - tlen : 0;
		if (pad == 0 && k > 0)
			pad = 1;
		if (o + pad + tlen >= cap)
			return -1;
		memset(out + o, ' ', pad);
		memcpy(out + o + pad, text, tlen);
		o += pad + tlen;
		prev = f[k].end;
	}
	if (o + (len - prev) > cap)
		return -1;
	memcpy(out + o, line + prev, len - prev);
	return (int)(o + len - prev);
}

static int is_number(const char *s)
{
	return (s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9');
}

static int sysvipc_line(const char *line, size_t len, char *out, size_t cap, void *arg)
{
	const struct sysvipc_file *file = arg;
	struct field f[MAX_FIELDS];
	long values[MAX_FIELDS];
	int set[MAX_FIELDS] = { 0 };
	int32_t sid, vid, other;
	int nf = split(line, len, f);

	if (nf < 2 || !is_number(line + f[0].start))
		return -1;	/* the header */
	sid = (int32_t)strtol(line + f[1].start, NULL, 10);
	if (vrid_sys_to_virt(&vrid.tab, file->type, sid, &vid) == 0) {
		values[0] = vrid_key_out((key_t)strtol(line + f[0].start, NULL, 10));
		values[1] = vid;
		set[0] = set[1] = 1;
	} else if (vrid_virt_to_sys(&vrid.tab, file->type, sid, &other) == 0) {
		return 0;	/* an outside object under an id the chain uses */
	}
	for (int i = 0; i < 2; i++) {
		int col = file->pid_cols[i];

		if (col < 0 || col >= nf)
			continue;
		values[col] = vrid_pid_out((pid_t)strtol(line + f[col].start, NULL, 10));
		set[col] = 1;
	}
	return rebuild(line, len, f, nf, values, set, out, cap);
}

int vrid_sysvipc_open(const char *sys_path, int flags)
{
	for (size_t i = 0; i < sizeof(sysvipc_files) / sizeof(sysvipc_files[0]); i++)
		if (strcmp(sys_path, sysvipc_files[i].path) == 0)
			return vrid_proc_rewrite(sys_path, flags, sysvipc_line,
						 (void *)&sysvipc_files[i]);
	return VRID_PROC_PASS;
}

/* ---- SEM_INFO, SHM_INFO and MSG_INFO ---------------------------------- */

struct info_sum {
	enum vrid_type type;
	long page;
	unsigned long objects, a, b;	/* per type: see vrid_ipc_info_out */
};

static int info_step(int32_t virt, int32_t sys, void *arg)
{
	struct info_sum *s = arg;
	struct semid_ds sem;
	struct shmid_ds shm;
	struct msqid_ds msg;

	(void)virt;
	switch (s->type) {
	case VRID_SEM:
		if (vrid_sys(SYS_semctl, sys, 0, IPC_STAT, (long)&sem, 0, 0) == 0) {
			s->objects++;
			s->a += sem.sem_nsems;
		}
		break;
	case VRID_SHM:
		if (vrid_sys3(SYS_shmctl, sys, IPC_STAT, &shm) == 0) {
			s->objects++;
			s->a += (shm.shm_segsz + (unsigned long)s->page - 1) / (unsigned long)s->page;
		}
		break;
	case VRID_MSG:
		if (vrid_sys3(SYS_msgctl, sys, IPC_STAT, &msg) == 0) {
			s->objects++;
			s->a += msg.msg_qnum;
			s->b += msg.__msg_cbytes;
		}
		break;
	default:
		break;
	}
	return 0;
}

int vrid_ipc_info_out(enum vrid_type type, int cmd, void *buf)
{
	struct info_sum s = { .type = type, .page = sysconf(_SC_PAGESIZE) };

	if (cmd != SEM_INFO && cmd != SHM_INFO && cmd != MSG_INFO)
		return vrid_ipc_max_index(type);
	if (s.page <= 0)
		s.page = 4096;
	vrid_each(&vrid.tab, type, info_step, &s);
	if (type == VRID_SEM) {
		struct seminfo *si = buf;

		si->semusz = (int)s.objects;
		si->semaem = (int)s.a;
	} else if (type == VRID_SHM) {
		struct shm_info *si = buf;

		si->used_ids = (int)s.objects;
		si->shm_tot = s.a;
	} else if (type == VRID_MSG) {
		struct msginfo *mi = buf;

		mi->msgpool = (int)s.objects;
		mi->msgmap = (int)s.a;
		mi->msgtql = (int)s.b;
	}
	return vrid_ipc_max_index(type);
}
