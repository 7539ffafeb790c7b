/*
 * Attaching a process to its chain: resolve the real libc functions, map
 * the chain's table file named in the environment, and check it before
 * trusting a single slot.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "vrid.h"

#define LOG_PREFIX "layer: "

struct vrid_layer vrid;
struct vrid_real real;
int vrid_init_done;

static int init_owner;			/* system tid running init, or 0 */
static __thread int init_running;	/* this thread is inside init */

static const struct {
	const char *name;
	void **slot;
} real_syms[] = {
	{ "getpid", (void **)&real.getpid },
	{ "getppid", (void **)&real.getppid },
	{ "gettid", (void **)&real.gettid },
	{ "kill", (void **)&real.kill },
	{ "tgkill", (void **)&real.tgkill },
	{ "sigqueue", (void **)&real.sigqueue },
	{ "pidfd_open", (void **)&real.pidfd_open },
	{ "getpgid", (void **)&real.getpgid },
	{ "setpgid", (void **)&real.setpgid },
	{ "getsid", (void **)&real.getsid },
	{ "setsid", (void **)&real.setsid },
	{ "tcgetpgrp", (void **)&real.tcgetpgrp },
	{ "tcsetpgrp", (void **)&real.tcsetpgrp },
	{ "sched_setaffinity", (void **)&real.sched_setaffinity },
	{ "sched_getaffinity", (void **)&real.sched_getaffinity },
	{ "sched_setparam", (void **)&real.sched_setparam },
	{ "sched_getparam", (void **)&real.sched_getparam },
	{ "sched_setscheduler", (void **)&real.sched_setscheduler },
	{ "sched_getscheduler", (void **)&real.sched_getscheduler },
	{ "sched_rr_get_interval", (void **)&real.sched_rr_get_interval },
	{ "getpriority", (void **)&real.getpriority },
	{ "setpriority", (void **)&real.setpriority },
	{ "prlimit", (void **)&real.prlimit },
	{ "waitpid", (void **)&real.waitpid },
	{ "wait4", (void **)&real.wait4 },
	{ "waitid", (void **)&real.waitid },
	{ "fork", (void **)&real.fork },
	{ "clone", (void **)&real.clone },
	{ "posix_spawn", (void **)&real.posix_spawn },
	{ "posix_spawnp", (void **)&real.posix_spawnp },
	{ "execve", (void **)&real.execve },
	{ "execvpe", (void **)&real.execvpe },
	{ "execveat", (void **)&real.execveat },
	{ "fexecve", (void **)&real.fexecve },
	{ "system", (void **)&real.system },
	{ "popen", (void **)&real.popen },
	{ "pclose", (void **)&real.pclose },
	{ "syscall", (void **)&real.syscall },
	{ "sigaction", (void **)&real.sigaction },
	{ "sigwaitinfo", (void **)&real.sigwaitinfo },
	{ "sigtimedwait", (void **)&real.sigtimedwait },
	{ "open", (void **)&real.open },
	{ "openat", (void **)&real.openat },
	{ "fopen", (void **)&real.fopen },
	{ "stat", (void **)&real.stat },
	{ "lstat", (void **)&real.lstat },
	{ "fstatat", (void **)&real.fstatat },
	{ "access", (void **)&real.access },
	{ "faccessat", (void **)&real.faccessat },
	{ "readlink", (void **)&real.readlink },
	{ "readlinkat", (void **)&real.readlinkat },
	{ "opendir", (void **)&real.opendir },
	{ "__open_2", (void **)&real.__open_2 },
	{ "__openat_2", (void **)&real.__openat_2 },
	{ "statx", (void **)&real.statx },
	{ "chdir", (void **)&real.chdir },
	{ "fdopendir", (void **)&real.fdopendir },
	{ "closedir", (void **)&real.closedir },
	{ "readdir", (void **)&real.readdir },
	{ "semget", (void **)&real.semget },
	{ "semop", (void **)&real.semop },
	{ "semtimedop", (void **)&real.semtimedop },
	{ "semctl", (void **)&real.semctl },
	{ "shmget", (void **)&real.shmget },
	{ "shmat", (void **)&real.shmat },
	{ "shmdt", (void **)&real.shmdt },
	{ "shmctl", (void **)&real.shmctl },
	{ "msgget", (void **)&real.msgget },
	{ "msgsnd", (void **)&real.msgsnd },
	{ "msgrcv", (void **)&real.msgrcv },
	{ "msgctl", (void **)&real.msgctl },
	{ "fcntl", (void **)&real.fcntl },
	{ "ioctl", (void **)&real.ioctl },
	{ "getsockopt", (void **)&real.getsockopt },
	{ "recvmsg", (void **)&real.recvmsg },
	{ "recvmmsg", (void **)&real.recvmmsg },
	{ "sendmsg", (void **)&real.sendmsg },
	{ "sendmmsg", (void **)&real.sendmmsg },
	{ "ptrace", (void **)&real.ptrace },
	{ "capget", (void **)&real.capget },
	{ "capset", (void **)&real.capset },
	{ "prctl", (void **)&real.prctl },
	{ "process_vm_readv", (void **)&real.process_vm_readv },
	{ "process_vm_writev", (void **)&real.process_vm_writev },
	{ "clock_getcpuclockid", (void **)&real.clock_getcpuclockid },
	{ "pidfd_send_signal", (void **)&real.pidfd_send_signal },
};

void vrid_resolve_real(void)
{
	for (size_t i = 0; i < sizeof(real_syms) / sizeof(real_syms[0]); i++) {
		*real_syms[i].slot = dlsym(RTLD_NEXT, real_syms[i].name);
		if (!*real_syms[i].slot)
			vrid_log(VRID_LOG_ERROR, LOG_PREFIX "libc has no %s", real_syms[i].name);
	}
}

static int env_int(const char *name, long *out)
{
	const char *s = getenv(name);
	char *end;

	if (!s || !*s)
		return -ENOENT;
	*out = strtol(s, &end, 10);
	return *end ? -EINVAL : 0;
}

static int check_index(struct vrid_index *idx, struct vrid_table_desc *d,
		       enum vrid_type type, uint64_t size)
{
	uint32_t log2 = 0;

	if (d->type != (uint32_t)type || d->slots < 16 || d->slots > (1u << 24) ||
	    (d->slots & (d->slots - 1)))
		return -1;
	while ((1u << log2) < d->slots)
		log2++;
	/* by_virt_off is checked before the sum, which then cannot wrap. */
	if (d->shift != 32 - log2 || d->by_virt_off % 64 || d->by_virt_off < VRID_HEADER_SIZE ||
	    d->by_virt_off > size || 16ull * d->slots > size - d->by_virt_off)
		return -1;
	if (d->fresh_base > d->fresh_max || d->fresh_max > INT32_MAX ||
	    d->fresh_next < d->fresh_base || d->fresh_next > d->fresh_max ||
	    d->live > d->slots || d->tombs_by_virt > d->slots || d->tombs_by_sys > d->slots)
		return -1;
	idx->by_virt = (uint64_t *)((char *)vrid.hdr + d->by_virt_off);
	idx->by_sys = idx->by_virt + d->slots;
	idx->mask = d->slots - 1;
	idx->shift = d->shift;
	idx->desc = d;
	return 0;
}

/* Indexes may not share bytes: a write to one would corrupt another. */
static int indexes_overlap(void)
{
	for (int a = 0; a < VRID_NTYPES; a++)
		for (int b = a + 1; b < VRID_NTYPES; b++) {
			const struct vrid_table_desc *x = &vrid.hdr->tables[a], *y = &vrid.hdr->tables[b];

			if (x->by_virt_off < y->by_virt_off + 16ull * y->slots &&
			    y->by_virt_off < x->by_virt_off + 16ull * x->slots)
				return 1;
		}
	return 0;
}

static int overlaps(uint64_t a_off, uint64_t a_size, uint64_t b_off, uint64_t b_size)
{
	return a_off < b_off + b_size && b_off < a_off + a_size;
}

/*
 * Every used section lies past the header, inside the file, apart from
 * the indexes and from the others; kinds the layer knows have their
 * shape, and unknown ones are skipped.  Each entry is copied first: the
 * file is the chain's to change meanwhile.
 */
static const char *check_sections(uint64_t size)
{
	struct vrid_section sec[VRID_SECTIONS_MAX];
	uint32_t n = vrid.hdr->nsections;

	if (n > VRID_SECTIONS_MAX)
		return "too many sections";
	memcpy(sec, vrid.hdr->sections, sizeof(sec));
	for (uint32_t i = 0; i < n; i++) {
		if (sec[i].offset % 64)
			return "section not aligned";
		if (sec[i].offset < VRID_HEADER_SIZE || sec[i].offset > size ||
		    sec[i].size > size - sec[i].offset)
			return "section outside the file";
		for (int t = 0; t < VRID_NTYPES; t++)
			if (overlaps(sec[i].offset, sec[i].size,
				     (uint64_t)((char *)vrid.idx[t].by_virt - (char *)vrid.hdr),
				     16ull * (vrid.idx[t].mask + 1)))
				return "section overlaps the tables";
		for (uint32_t j = 0; j < i; j++)
			if (overlaps(sec[i].offset, sec[i].size, sec[j].offset, sec[j].size))
				return "overlapping sections";
		if (sec[i].kind != VRID_SECTION_IPC_RECORDS)
			continue;
		if (sec[i].entry_size != sizeof(struct vrid_ipc_record) ||
		    sec[i].size < sizeof(struct vrid_ipc_records))
			return "corrupt IPC records";
		vrid.records = (struct vrid_ipc_records *)((char *)vrid.hdr + sec[i].offset);
		vrid.records_cap = (uint32_t)((sec[i].size - sizeof(struct vrid_ipc_records)) /
					      sizeof(struct vrid_ipc_record));
	}
	return NULL;
}

static const char *check_header(const struct vrid_header *h, uint64_t size, long aid)
{
	if (h->magic != VRID_MAGIC)
		return "bad magic";
	if (h->version != VRID_VERSION)
		return "unsupported version";
	if (h->header_size != VRID_HEADER_SIZE || h->file_size != size)
		return "wrong size";
	if ((long)h->aid != aid)
		return "belongs to another AID";
	if (memchr(h->name, 0, sizeof(h->name)) == NULL)
		return "unterminated name";
	return NULL;
}

/*
 * The table file by its path, or else through the descriptor every
 * process of the chain inherits (VRID_TABLE_FD): a process exec'd after
 * its parent dropped root or changed root reaches the path no more, the
 * state directory being root's alone.  The magic link /proc/self/fd/N
 * skips the path and gives a description of our own, for the writer
 * lock; the file's own mode still decides.  The number is only trusted
 * while it holds a regular file whose header names our chain: the
 * program may have closed it and reused it.
 */
static long open_tables(const char *path)
{
	long fd = vrid_sys(SYS_openat, AT_FDCWD, (long)path, O_RDWR | O_CLOEXEC, 0, 0, 0);
	struct vrid_header h;
	struct stat st;
	char link[32];
	long inherited, aid;

	if (fd >= 0 || env_int("VRID_TABLE_FD", &inherited) < 0 || inherited < 0 ||
	    inherited > INT32_MAX || env_int("VRID_AID", &aid) < 0)
		return fd;
	if (vrid_sys2(SYS_fstat, inherited, &st) < 0 || !S_ISREG(st.st_mode) ||
	    vrid_sys(SYS_pread64, inherited, (long)&h, sizeof(h), 0, 0, 0) != (long)sizeof(h) ||
	    h.magic != VRID_MAGIC || (long)h.aid != aid)
		return fd;
	snprintf(link, sizeof(link), "/proc/self/fd/%ld", inherited);
	return vrid_sys(SYS_openat, AT_FDCWD, (long)link, O_RDWR | O_CLOEXEC, 0, 0, 0);
}

static struct vrid_header *map_table(const char *path, uint64_t *size, int *fd_out)
{
	struct stat st;
	long fd;
	void *mem;

	fd = open_tables(path);
	if (fd < 0) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot open tables %s: errno %ld", path, -fd);
		return NULL;
	}
	if (vrid_sys2(SYS_fstat, fd, &st) < 0 || st.st_size < VRID_HEADER_SIZE ||
	    strlen(path) >= sizeof(vrid.path)) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "tables %s are truncated", path);
		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return NULL;
	}
	strcpy(vrid.path, path);
	vrid.dev = st.st_dev;
	vrid.ino = st.st_ino;
	mem = (void *)vrid_sys(SYS_mmap, 0, st.st_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, fd, 0);
	if ((unsigned long)mem > -4096ul) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot map tables %s", path);
		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return NULL;
	}
	*fd_out = (int)fd;
	*size = st.st_size;
	return mem;
}

static enum vrid_state attach(void)
{
	const char *path = getenv("VRID_TABLE");
	const char *why;
	uint64_t size;
	long aid;
	int fd;

	if (!path)
		return VRID_OFF;
	if (path[0] != '/') {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "VRID_TABLE=%s is not an absolute path", path);
		return VRID_BROKEN;
	}
	if (env_int("VRID_AID", &aid) < 0) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "VRID_TABLE is set but VRID_AID is not a number");
		return VRID_BROKEN;
	}
	vrid.hdr = map_table(path, &size, &fd);
	if (!vrid.hdr)
		return VRID_BROKEN;
	why = check_header(vrid.hdr, size, aid);
	for (int t = 0; !why && t < VRID_NTYPES; t++)
		if (check_index(&vrid.idx[t], &vrid.hdr->tables[t], t, size) < 0)
			why = "corrupt table descriptor";
	if (!why && indexes_overlap())
		why = "overlapping tables";
	if (!why)
		why = check_sections(size);
	if (why) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "tables %s unusable: %s; "
			 "translating calls fail with ENOTRECOVERABLE", path, why);
		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return VRID_BROKEN;
	}
	/* Opened at start, with the credentials and root the process began with. */
	vrid_lock_adopt(fd);
	return VRID_ON;
}

void vrid_init_slow(void)
{
	int me = (int)vrid_sys0(SYS_gettid), owner = 0;
	int saved_errno = errno;

	if (init_running)
		return;	/* libc called back into us while we resolve it */
	if (!__atomic_compare_exchange_n(&init_owner, &owner, me, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		while (!__atomic_load_n(&vrid_init_done, __ATOMIC_ACQUIRE))
			vrid_sys0(SYS_sched_yield);
		return;
	}
	init_running = 1;
	vrid_log_init();
	vrid_resolve_real();
	vrid.state = attach();
	if (vrid.state != VRID_OFF)
		vrid_env_capture();
	init_running = 0;
	__atomic_store_n(&vrid_init_done, 1, __ATOMIC_RELEASE);
	errno = saved_errno;
}

/* Each process records itself before main(), so the chain sees it at once. */
__attribute__((constructor)) static void vrid_constructor(void)
{
	if (vrid_on())
		getpid();
}
