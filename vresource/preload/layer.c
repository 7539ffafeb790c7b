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
	{ "sigprocmask", (void **)&real.sigprocmask },
	{ "pthread_sigmask", (void **)&real.pthread_sigmask },
	{ "sigsuspend", (void **)&real.sigsuspend },
	{ "sigwait", (void **)&real.sigwait },
	{ "signalfd", (void **)&real.signalfd },
	{ "ppoll", (void **)&real.ppoll },
	{ "pselect", (void **)&real.pselect },
	{ "epoll_pwait", (void **)&real.epoll_pwait },
	{ "epoll_pwait2", (void **)&real.epoll_pwait2 },
	{ "pause", (void **)&real.pause },
	{ "nanosleep", (void **)&real.nanosleep },
	{ "clock_nanosleep", (void **)&real.clock_nanosleep },
	{ "sleep", (void **)&real.sleep },
	{ "usleep", (void **)&real.usleep },
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

/* What the layer knows of each type (pid.c, sem.c, shm.c, msg.c, ipc.c). */
static const struct vrid_type_ops *const type_ops[VRID_NTYPES] = {
	[VRID_PID] = &pid_type_ops,
	[VRID_SEM] = &sem_type_ops,
	[VRID_SHM] = &shm_type_ops,
	[VRID_MSG] = &msg_type_ops,
	[VRID_IPCKEY] = &ipckey_type_ops,
};

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
	long inherited, aid;

	if (fd >= 0 || env_int("VRID_TABLE_FD", &inherited) < 0 || inherited < 0 ||
	    inherited > INT32_MAX || env_int("VRID_AID", &aid) < 0)
		return fd;
	if (vrid_sys2(SYS_fstat, inherited, &st) < 0 || !S_ISREG(st.st_mode) ||
	    vrid_sys(SYS_pread64, inherited, (long)&h, sizeof(h), 0, 0, 0) != (long)sizeof(h) ||
	    h.magic != VRID_MAGIC || (long)h.aid != aid)
		return fd;
	return vrid_reopen((int)inherited);
}

/* Maps and checks the table file at path for chain aid; NULL, or why not in why. */
static const char *map_table(struct vrid_table *t, const char *path, long aid, int fd,
			     char *why, size_t len)
{
	struct stat st;
	void *mem = NULL;

	if (vrid_sys2(SYS_fstat, fd, &st) < 0)
		return "cannot stat it";
	if (strlen(path) >= sizeof(t->path))
		return "path too long";
	if (st.st_size >= VRID_HEADER_SIZE) {
		mem = (void *)vrid_sys(SYS_mmap, 0, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if ((unsigned long)mem > -4096ul)
			return "cannot map it";
	}
	if (vrid_table_check(t, mem, (uint64_t)st.st_size, why, len) < 0)
		return why;
	if ((long)t->hdr->aid != aid)
		return "belongs to another AID";
	strcpy(t->path, path);
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->generation = __atomic_load_n(&t->hdr->generation, __ATOMIC_ACQUIRE);
	t->ops = type_ops;
	return NULL;
}

static enum vrid_state attach(void)
{
	const char *path = getenv("VRID_TABLE");
	const char *why;
	char buf[160];
	long aid, fd;

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
	fd = open_tables(path);
	if (fd < 0) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot open tables %s: errno %ld", path, -fd);
		return VRID_BROKEN;
	}
	why = map_table(&vrid.tab, path, aid, (int)fd, buf, sizeof(buf));
	if (why) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "tables %s unusable: %s; "
			 "translating calls fail with ENOTRECOVERABLE", path, why);
		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return VRID_BROKEN;
	}
	/* Opened at start, with the credentials and root the process began with. */
	vrid_lock_adopt(&vrid.tab, (int)fd);
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
