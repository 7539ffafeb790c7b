/*
 * A process of a chain reduced to its tables, for the tests of package
 * vresource: the engine as the layer builds it (table.c, lock.c,
 * record.c, tablecheck.c), unbounded and with signals blocked, with just
 * enough around it.  It maps the file VRID_TABLE names, then runs the
 * commands on stdin, one a line, and prints one result line each:
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
 *   die-rebuilding TYPE
 *   die-rebuild-cut TYPE N        after N moves of the rebuild of by_virt
 *   die-rebinding TYPE VIRT SYS STEP   after STEP steps of vrid_rebind
 *                          no answer: a writer killed inside a write
 *   restored               "restored" once the file now at the path is
 *                          mapped over the table and open at the lock's
 *                          fd number, as CRIU restores a process
 *
 * Between lock and unlock only commands that don't write may run.  Any
 * other failure prints "error ERRNO".  TYPE is the number of enum
 * vrid_type.  table.c is included, not linked, so that derive_key and
 * the steps of a write, which are static, can be called; the rest of the
 * engine is linked.  The rest of the layer stays out: it interposes libc
 * and grows with every feature.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../preload/table.c"

static struct vrid_table tab;

void vrid_log(enum vrid_level level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "driver: level %d: ", (int)level);
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

static const struct vrid_type_ops pid_ops = { VRID_PID, "pid", pid_alive, NULL };
static const struct vrid_type_ops sem_ops = { VRID_SEM, "sem", ipc_alive, ipc_record };
static const struct vrid_type_ops shm_ops = { VRID_SHM, "shm", ipc_alive, ipc_record };
static const struct vrid_type_ops msg_ops = { VRID_MSG, "msg", ipc_alive, ipc_record };
static const struct vrid_type_ops ipckey_ops = { VRID_IPCKEY, "ipckey", ipc_alive, NULL };
static const struct vrid_type_ops *const ops[VRID_NTYPES] = {
	&pid_ops, &sem_ops, &shm_ops, &msg_ops, &ipckey_ops,
};

static int print_entry(int32_t virt, int32_t sys, void *arg)
{
	(void)arg;
	printf("%d %d\n", virt, sys);
	return 0;
}

/* A rebuild of one index cut after n moves: an entry emptied but not put back. */
static void rebuild_cut(struct vrid_index *idx, uint64_t *index, uint32_t n)
{
	uint32_t start = 0, moves = 0, unused = 0;

	while (start < idx->mask && index[start] != 0)
		start++;
	for (uint32_t i = 0; i <= idx->mask; i++)
		if (index[i] == VRID_SLOT_TOMB)
			index[i] = 0;
	for (uint32_t k = 1; k <= idx->mask; k++) {
		uint32_t i = (start + k) & idx->mask;
		uint64_t s = index[i];

		if (s == 0)
			continue;
		index[i] = 0;
		if (moves++ == n)
			return;	/* died with s in flight */
		put(idx, index, &unused, (uint32_t)(s >> 32), (int32_t)(uint32_t)s);
	}
}

/*
 * A writer that SIGKILL stops inside a write, with the lock held and the
 * table marked: halfway through insert_locked (VIRT -> SYS is in by_virt
 * only), remove_locked (SYS's entry is gone from by_sys only),
 * rebuild_locked (by_virt is rebuilt, by_sys not yet, or by_virt only
 * partly), or vrid_rebind (the old pair gone from by_sys; then by_virt
 * rewritten too).
 */
static void die_writing(const char *cmd, enum vrid_type type, int32_t a, int32_t b, long c)
{
	struct vrid_index *idx = &tab.idx[type];
	sigset_t saved;
	int32_t other;
	uint64_t s;
	int err;

	if ((err = vrid_lock(&tab, &saved)) < 0) {
		printf("error %d\n", -err);
		return;
	}
	begin_write(&tab, type);
	if (strcmp(cmd, "die-inserting") == 0) {
		put(idx, idx->by_virt, &idx->desc->tombs_by_virt, enc(a), b);
	} else if (strcmp(cmd, "die-removing") == 0) {
		if (probe(idx, idx->by_sys, enc(a), &other) == 0)
			del(idx, idx->by_sys, &idx->desc->tombs_by_sys, a);
	} else if (strcmp(cmd, "die-rebuild-cut") == 0) {
		begin_rebuild(idx);
		rebuild_cut(idx, idx->by_virt, (uint32_t)a);
	} else if (strcmp(cmd, "die-rebinding") == 0) {
		if (probe(idx, idx->by_virt, enc(a), &other) == 0)
			del(idx, idx->by_sys, &idx->desc->tombs_by_sys, other);
		if (c >= 2)
			idx->by_virt[slot_of(idx, idx->by_virt, enc(a), &s)] = (uint64_t)enc(a) << 32 | (uint32_t)b;
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

static void run(const char *cmd, long a, long b, long c, long d)
{
	static sigset_t lock_saved;
	enum vrid_type type = (enum vrid_type)a;
	int32_t out;
	int err, created;

	if (strcmp(cmd, "bind") == 0) {
		err = vrid_bind(&tab, type, (int32_t)b, &out);
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

		err = vrid_bind_record(&tab, type, (int32_t)b, &rec, &out);
		if (err)
			put_error(err);
		else
			printf("%d\n", out);
	} else if (strcmp(cmd, "lookup") == 0 || strcmp(cmd, "reverse") == 0) {
		err = cmd[0] == 'l' ? vrid_virt_to_sys(&tab, type, (int32_t)b, &out)
				    : vrid_sys_to_virt(&tab, type, (int32_t)b, &out);
		if (err)
			puts("absent");
		else
			printf("%d\n", out);
	} else if (strcmp(cmd, "remove-sys") == 0) {
		puts(vrid_remove_sys(&tab, type, (int32_t)b) ? "absent" : "ok");
	} else if (strcmp(cmd, "remove-virt") == 0) {
		puts(vrid_remove_virt(&tab, type, (int32_t)b) ? "absent" : "ok");
	} else if (strcmp(cmd, "bindkey") == 0) {
		err = vrid_bind_key(&tab, (int32_t)a, (uint32_t)b, &out, &created);
		if (err)
			put_error(err);
		else
			printf("%d %s\n", out, created ? "created" : "found");
	} else if (strcmp(cmd, "live") == 0) {
		printf("%u\n", vrid_live(&tab, type));
	} else if (strcmp(cmd, "counts") == 0) {
		const struct vrid_table_desc *desc = tab.idx[type].desc;

		printf("%u %u %u %u\n", desc->live, desc->tombs_by_virt, desc->tombs_by_sys, desc->rebuilds);
	} else if (strcmp(cmd, "dump") == 0) {
		vrid_each(&tab, type, print_entry, NULL);
		puts("end");
	} else if (strcmp(cmd, "derive") == 0) {
		printf("%d\n", derive_key((uint64_t)a, (int32_t)b, (uint32_t)c));
	} else if (strcmp(cmd, "lock") == 0) {
		err = vrid_lock(&tab, &lock_saved);
		if (err)
			put_error(err);
		else
			puts("locked");
	} else if (strcmp(cmd, "unlock") == 0) {
		vrid_unlock(&tab, &lock_saved);
		puts("unlocked");
	} else if (strcmp(cmd, "restored") == 0) {
		int fd = open(tab.path, O_RDWR | O_CLOEXEC);

		if (fd < 0 || mmap(tab.hdr, tab.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
		    dup3(fd, tab.lock_fd, O_CLOEXEC) < 0)
			printf("error %d\n", errno);
		else
			puts("restored");
		close(fd);
	} else if (strncmp(cmd, "die-", 4) == 0) {
		die_writing(cmd, type, (int32_t)b, (int32_t)c, d);
	} else {
		printf("unknown command %s\n", cmd);
	}
}

/* Maps and checks the tables, and hands the writer lock the open fd, as layer.c does. */
static int attach(const char *path)
{
	char why[160];
	struct stat st;
	void *mem;
	int fd = path && strlen(path) < sizeof(tab.path) ? open(path, O_RDWR | O_CLOEXEC) : -1;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	mem = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -1;
	if (vrid_table_check(&tab, mem, st.st_size, why, sizeof(why)) < 0) {
		fprintf(stderr, "driver: %s\n", why);
		return -1;
	}
	strcpy(tab.path, path);
	tab.dev = st.st_dev;
	tab.ino = st.st_ino;
	tab.generation = tab.hdr->generation;
	tab.ops = ops;
	vrid_lock_adopt(&tab, fd);
	return 0;
}

int main(void)
{
	char line[256], cmd[32];
	long a, b, c, d;

	if (attach(getenv("VRID_TABLE")) < 0) {
		fprintf(stderr, "driver: can't map VRID_TABLE\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		a = b = c = d = 0;
		if (sscanf(line, "%31s %ld %ld %ld %ld", cmd, &a, &b, &c, &d) < 1)
			continue;
		run(cmd, a, b, c, d);
		fflush(stdout);
	}
	return 0;
}
