/*
 * A process of a chain reduced to its tables, for interop_test.go: the
 * real table.c and lock.c with just enough around them.  It maps the file
 * VRID_TABLE names, then runs the commands on stdin, one a line, and
 * prints one result line each:
 *
 *   bind TYPE SYS          VIRT, or "full", or "invalid"
 *   bindrec TYPE SYS       bind, with the record {SYS, key SYS+1, cuid 1000+SYS,
 *                          cgid 2000+SYS, cpid 3*SYS, ctime 7*SYS, size 11*SYS}
 *   lookup TYPE VIRT       SYS, or "absent"
 *   reverse TYPE SYS       VIRT, or "absent"
 *   remove-sys TYPE SYS    "ok" or "absent"
 *   remove-virt TYPE VIRT  "ok" or "absent"
 *   bindkey VKEY ATTEMPT   "SKEY created" or "SKEY found", or "full", or "invalid"
 *   live TYPE              the entry count
 *   counts TYPE            "LIVE TOMBS_BY_VIRT TOMBS_BY_SYS REBUILDS"
 *   dump TYPE              "VIRT SYS" per entry in slot order, then "end"
 *   derive AID VKEY N      derive_key for any AID and attempt N
 *   lock                   "locked" once it holds the writer lock
 *   unlock                 "unlocked" once it has let it go
 *   die-inserting TYPE VIRT SYS
 *   die-removing TYPE SYS
 *   die-rebuilding TYPE    no answer: a writer killed inside a write
 *
 * Between lock and unlock only commands that don't write may run.  Any
 * other failure prints "error ERRNO".  TYPE is the number of enum
 * vrid_type.  table.c is included, not linked, so that derive_key and
 * the steps of a write, which are static, can be called; lock.c is
 * linked.  The rest of the layer stays out: it interposes libc and grows
 * with every feature.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../preload/table.c"

struct vrid_layer vrid;

void vrid_log(enum vrid_level level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "interop: level %d: ", (int)level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* pid_sys_alive of pid.c, which can't be linked: it interposes libc. */
static int pid_alive(int32_t sys)
{
	return vrid_sys2(SYS_kill, sys, 0) != -ESRCH || vrid_sys2(SYS_kill, -sys, 0) != -ESRCH;
}

/* The Go side never collects IPC entries; neither does this driver. */
static int ipc_alive(int32_t sys)
{
	(void)sys;
	return 1;
}

/* The records bindrec writes are made up: there is no object to ask. */
static void ipc_record(int32_t sys, struct vrid_ipc_record *rec)
{
	(void)sys;
	(void)rec;
}

const struct vrid_type_ops pid_type_ops = { VRID_PID, "pid", pid_alive, NULL };
const struct vrid_type_ops sem_type_ops = { VRID_SEM, "sem", ipc_alive, ipc_record };
const struct vrid_type_ops shm_type_ops = { VRID_SHM, "shm", ipc_alive, ipc_record };
const struct vrid_type_ops msg_type_ops = { VRID_MSG, "msg", ipc_alive, ipc_record };
const struct vrid_type_ops ipckey_type_ops = { VRID_IPCKEY, "ipckey", ipc_alive, NULL };

static int print_entry(int32_t virt, int32_t sys, void *arg)
{
	(void)arg;
	printf("%d %d\n", virt, sys);
	return 0;
}

/*
 * A writer that SIGKILL stops inside a write, with the lock held and the
 * table marked: halfway through insert_locked (VIRT -> SYS is in by_virt
 * only), remove_locked (SYS's entry is gone from by_sys only), or
 * rebuild_locked (by_virt is rebuilt, by_sys not yet).  The Go driver
 * stops at the same steps, so that both leave the same bytes.
 */
static void die_writing(const char *cmd, enum vrid_type type, int32_t a, int32_t b)
{
	struct vrid_index *idx = &vrid.idx[type];
	sigset_t saved;
	int32_t virt;
	int err;

	if ((err = vrid_lock(&saved)) < 0) {
		printf("error %d\n", -err);
		return;
	}
	begin_write(type);
	if (strcmp(cmd, "die-inserting") == 0) {
		put(idx, idx->by_virt, &idx->desc->tombs_by_virt, enc(a), b);
	} else if (strcmp(cmd, "die-removing") == 0) {
		if (probe(idx, idx->by_sys, enc(a), &virt) == 0)
			del(idx, idx->by_sys, &idx->desc->tombs_by_sys, a);
	} else {
		begin_rebuild(idx);
		rebuild_index(idx, idx->by_virt, &idx->desc->tombs_by_virt);
	}
	kill(getpid(), SIGKILL);
}

/* The answer to a failed write: what the Go driver says for its error. */
static void put_error(int err)
{
	if (err == -ENOSPC)
		puts("full");
	else if (err == -EINVAL)
		puts("invalid");
	else
		printf("error %d\n", -err);
}

static void run(const char *cmd, long a, long b, long c)
{
	static sigset_t lock_saved;
	enum vrid_type type = (enum vrid_type)a;
	int32_t out;
	int err, created;

	if (strcmp(cmd, "bind") == 0) {
		err = vrid_bind(type, (int32_t)b, &out);
		if (err)
			put_error(err);
		else
			printf("%d\n", out);
	} else if (strcmp(cmd, "bindrec") == 0) {
		struct vrid_ipc_record rec = {
			.type = type, .sys = (int32_t)b, .key = (int32_t)b + 1,
			.cuid = 1000 + (uint32_t)b, .cgid = 2000 + (uint32_t)b, .cpid = (int32_t)b * 3,
			.ctime = b * 7, .size = (uint64_t)b * 11,
		};

		err = vrid_bind_record(type, (int32_t)b, &rec, &out);
		if (err)
			put_error(err);
		else
			printf("%d\n", out);
	} else if (strcmp(cmd, "lookup") == 0 || strcmp(cmd, "reverse") == 0) {
		err = cmd[0] == 'l' ? vrid_virt_to_sys(type, (int32_t)b, &out)
				    : vrid_sys_to_virt(type, (int32_t)b, &out);
		if (err)
			puts("absent");
		else
			printf("%d\n", out);
	} else if (strcmp(cmd, "remove-sys") == 0) {
		puts(vrid_remove_sys(type, (int32_t)b) ? "absent" : "ok");
	} else if (strcmp(cmd, "remove-virt") == 0) {
		puts(vrid_remove_virt(type, (int32_t)b) ? "absent" : "ok");
	} else if (strcmp(cmd, "bindkey") == 0) {
		err = vrid_bind_key((int32_t)a, (uint32_t)b, &out, &created);
		if (err)
			put_error(err);
		else
			printf("%d %s\n", out, created ? "created" : "found");
	} else if (strcmp(cmd, "live") == 0) {
		printf("%u\n", vrid_live(type));
	} else if (strcmp(cmd, "counts") == 0) {
		const struct vrid_table_desc *d = vrid.idx[type].desc;

		printf("%u %u %u %u\n", d->live, d->tombs_by_virt, d->tombs_by_sys, d->rebuilds);
	} else if (strcmp(cmd, "dump") == 0) {
		vrid_each(type, print_entry, NULL);
		puts("end");
	} else if (strcmp(cmd, "derive") == 0) {
		struct vrid_header *attached = vrid.hdr, other = { .aid = (uint64_t)a };

		vrid.hdr = &other;
		printf("%d\n", derive_key((int32_t)b, (uint32_t)c));
		vrid.hdr = attached;
	} else if (strcmp(cmd, "lock") == 0) {
		err = vrid_lock(&lock_saved);
		if (err)
			put_error(err);
		else
			puts("locked");
	} else if (strcmp(cmd, "unlock") == 0) {
		vrid_unlock(&lock_saved);
		puts("unlocked");
	} else if (strncmp(cmd, "die-", 4) == 0) {
		die_writing(cmd, type, (int32_t)b, (int32_t)c);
	} else {
		printf("unknown command %s\n", cmd);
	}
}

/*
 * Maps the tables, names the file for the writer lock and hands it the
 * open fd as layer.c does, trusting the Go side's checks.
 */
static int attach(const char *path)
{
	struct stat st;
	int fd = path && strlen(path) < sizeof(vrid.path) ? open(path, O_RDWR | O_CLOEXEC) : -1;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	strcpy(vrid.path, path);
	vrid.dev = st.st_dev;
	vrid.ino = st.st_ino;
	vrid.hdr = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (vrid.hdr == MAP_FAILED || vrid.hdr->magic != VRID_MAGIC)
		return -1;
	vrid_lock_adopt(fd);
	for (int t = 0; t < VRID_NTYPES; t++) {
		struct vrid_table_desc *d = &vrid.hdr->tables[t];
		struct vrid_index *idx = &vrid.idx[t];

		idx->by_virt = (uint64_t *)((char *)vrid.hdr + d->by_virt_off);
		idx->by_sys = idx->by_virt + d->slots;
		idx->mask = d->slots - 1;
		idx->shift = d->shift;
		idx->desc = d;
	}
	if (vrid.hdr->nsections > 0 && vrid.hdr->sections[0].kind == VRID_SECTION_IPC_RECORDS) {
		vrid.records = (struct vrid_ipc_records *)((char *)vrid.hdr + vrid.hdr->sections[0].offset);
		vrid.records_cap = vrid.records->capacity;
	}
	vrid.state = VRID_ON;
	return 0;
}

int main(void)
{
	char line[256], cmd[32];
	long a, b, c;

	if (attach(getenv("VRID_TABLE")) < 0) {
		fprintf(stderr, "interop: can't map VRID_TABLE\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		a = b = c = 0;
		if (sscanf(line, "%31s %ld %ld %ld", cmd, &a, &b, &c) < 1)
			continue;
		run(cmd, a, b, c);
		fflush(stdout);
	}
	return 0;
}
