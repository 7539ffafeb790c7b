/*
 * Internal interface of the preload layer.  Nothing here is exported: the
 * version script (libvrid.map) exports only the interposed libc calls.
 */
#ifndef VRID_H
#define VRID_H


#include <dirent.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "table.h"

/* The interposed libc calls: the only symbols libvrid.map exports. */
#define VRID_EXPORT __attribute__((visibility("default")))

/* ---- the layer: one per process ------------------------------------- */

enum vrid_state {
	VRID_OFF = 0,		/* not under vrid: every call passes through */
	VRID_ON = 1,		/* attached to the chain's tables */
	VRID_BROKEN = 2,	/* under vrid, but the tables are unusable */
};

struct vrid_layer {
	int state;		/* enum vrid_state, set once by vrid_init_slow() */
	struct vrid_table tab;	/* the chain's tables, once attached */
};

extern struct vrid_layer vrid VRID_HIDDEN;
extern int vrid_init_done VRID_HIDDEN;
VRID_HIDDEN void vrid_init_slow(void);

/* Every wrapper starts here.  After the first call it is one load. */
static inline int vrid_on(void)
{
	if (unlikely(!__atomic_load_n(&vrid_init_done, __ATOMIC_ACQUIRE)))
		vrid_init_slow();
	return vrid.state == VRID_ON;
}

/* Under vrid but unable to translate: fail instead of answering wrong. */
static inline int vrid_broken(void)
{
	return vrid.state == VRID_BROKEN;
}

/*
 * Opens every wrapper: outside vrid the call goes straight to libc; with
 * broken tables it fails with ENOTRECOVERABLE rather than guess.
 */
#define VRID_GUARD(fail, passthrough)				\
	do {							\
		if (unlikely(!vrid_on())) {			\
			if (vrid_broken()) {			\
				errno = ENOTRECOVERABLE;	\
				return fail;			\
			}					\
			return passthrough;			\
		}						\
	} while (0)

/* ---- the real libc functions, resolved once ------------------------- */

struct vrid_real {
	/* pids */
	pid_t (*getpid)(void);
	pid_t (*getppid)(void);
	pid_t (*gettid)(void);
	int (*kill)(pid_t, int);
	int (*tgkill)(pid_t, pid_t, int);
	int (*sigqueue)(pid_t, int, const union sigval);
	int (*pidfd_open)(pid_t, unsigned int);
	pid_t (*getpgid)(pid_t);
	int (*setpgid)(pid_t, pid_t);
	pid_t (*getsid)(pid_t);
	pid_t (*setsid)(void);
	pid_t (*tcgetpgrp)(int);
	int (*tcsetpgrp)(int, pid_t);
	int (*sched_setaffinity)(pid_t, size_t, const cpu_set_t *);
	int (*sched_getaffinity)(pid_t, size_t, cpu_set_t *);
	int (*sched_setparam)(pid_t, const struct sched_param *);
	int (*sched_getparam)(pid_t, struct sched_param *);
	int (*sched_setscheduler)(pid_t, int, const struct sched_param *);
	int (*sched_getscheduler)(pid_t);
	int (*sched_rr_get_interval)(pid_t, struct timespec *);
	int (*getpriority)(__priority_which_t, id_t);
	int (*setpriority)(__priority_which_t, id_t, int);
	int (*prlimit)(pid_t, __rlimit_resource_t, const struct rlimit *, struct rlimit *);
	pid_t (*waitpid)(pid_t, int *, int);
	pid_t (*wait4)(pid_t, int *, int, struct rusage *);
	int (*waitid)(idtype_t, id_t, siginfo_t *, int);
	/* processes */
	pid_t (*fork)(void);
	int (*clone)(int (*)(void *), void *, int, void *, ...);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			    const posix_spawnattr_t *, char *const[], char *const[]);
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*execveat)(int, const char *, char *const[], char *const[], int);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*system)(const char *);
	FILE *(*popen)(const char *, const char *);
	int (*pclose)(FILE *);
	long (*syscall)(long, ...);
	/* signals */
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	int (*sigwaitinfo)(const sigset_t *, siginfo_t *);
	int (*sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *);
	/* /proc paths */
	int (*open)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	FILE *(*fopen)(const char *, const char *);
	int (*stat)(const char *, struct stat *);
	int (*lstat)(const char *, struct stat *);
	int (*fstatat)(int, const char *, struct stat *, int);
	int (*access)(const char *, int);
	int (*faccessat)(int, const char *, int, int);
	ssize_t (*readlink)(const char *, char *, size_t);
	ssize_t (*readlinkat)(int, const char *, char *, size_t);
	DIR *(*opendir)(const char *);
	int (*__open_2)(const char *, int);
	int (*__openat_2)(int, const char *, int);
	int (*statx)(int, const char *, int, unsigned int, struct statx *);
	int (*chdir)(const char *);
	/* /proc listings */
	DIR *(*fdopendir)(int);
	int (*closedir)(DIR *);
	struct dirent *(*readdir)(DIR *);
	/* System V IPC */
	int (*semget)(key_t, int, int);
	int (*semop)(int, struct sembuf *, size_t);
	int (*semtimedop)(int, struct sembuf *, size_t, const struct timespec *);
	int (*semctl)(int, int, int, ...);
	int (*shmget)(key_t, size_t, int);
	void *(*shmat)(int, const void *, int);
	int (*shmdt)(const void *);
	int (*shmctl)(int, int, struct shmid_ds *);
	int (*msgget)(key_t, int);
	int (*msgsnd)(int, const void *, size_t, int);
	ssize_t (*msgrcv)(int, void *, size_t, long, int);
	int (*msgctl)(int, int, struct msqid_ds *);
	/* owners, credentials, tracing (fcntl.c, sock.c, ptrace.c, task.c) */
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	long (*ptrace)(int, ...);
	int (*capget)(struct __user_cap_header_struct *, struct __user_cap_data_struct *);
	int (*capset)(struct __user_cap_header_struct *, const struct __user_cap_data_struct *);
	int (*prctl)(int, ...);
	ssize_t (*process_vm_readv)(pid_t, const struct iovec *, unsigned long,
				    const struct iovec *, unsigned long, unsigned long);
	ssize_t (*process_vm_writev)(pid_t, const struct iovec *, unsigned long,
				     const struct iovec *, unsigned long, unsigned long);
	int (*clock_getcpuclockid)(pid_t, clockid_t *);
	int (*pidfd_send_signal)(int, int, siginfo_t *, unsigned int);
	/* the quiesce signal: masks that must not hold it, calls it must not cut short */
	int (*sigprocmask)(int, const sigset_t *, sigset_t *);
	int (*pthread_sigmask)(int, const sigset_t *, sigset_t *);
	int (*sigsuspend)(const sigset_t *);
	int (*sigwait)(const sigset_t *, int *);
	int (*signalfd)(int, const sigset_t *, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	int (*pause)(void);
	int (*nanosleep)(const struct timespec *, struct timespec *);
	int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
	unsigned int (*sleep)(unsigned int);
	int (*usleep)(useconds_t);
};

extern struct vrid_real real VRID_HIDDEN;
VRID_HIDDEN void vrid_resolve_real(void);


/* ---- translation tables (table.h) ----------------------------------- */

extern const struct vrid_type_ops pid_type_ops VRID_HIDDEN;
extern const struct vrid_type_ops sem_type_ops VRID_HIDDEN;
extern const struct vrid_type_ops shm_type_ops VRID_HIDDEN;
extern const struct vrid_type_ops msg_type_ops VRID_HIDDEN;
extern const struct vrid_type_ops ipckey_type_ops VRID_HIDDEN;

/* ---- pids (pid.c, fork.c, signal.c) --------------------------------- */

/* virt -> sys for a pid argument; 0 stays 0.  Negative errno if unknown. */
VRID_HIDDEN int vrid_pid_in(pid_t vpid, pid_t *spid);
/* sys -> virt for a pid result; a process outside the chain reads as 0. */
VRID_HIDDEN pid_t vrid_pid_out(pid_t spid);
/* Forgets a child the caller has just reaped. */
VRID_HIDDEN void vrid_pid_reaped(pid_t spid);
/* Records a new process or thread of the chain and returns its virtual id. */
VRID_HIDDEN pid_t vrid_pid_bind(pid_t spid);
VRID_HIDDEN void vrid_siginfo_out(siginfo_t *info);
/* A siginfo a process builds to send: its virtual si_pid made system, or 0. */
VRID_HIDDEN void vrid_siginfo_in(siginfo_t *info);
/* Rebinds the caller's own pid in a new child. */
VRID_HIDDEN void vrid_pid_child(void);
/* Records a new child; on failure kills and reaps it and fails EAGAIN. */
VRID_HIDDEN pid_t vrid_child_out(pid_t spid);
/* The virtual id of a child a wait call returned; forgets it if reaped. */
VRID_HIDDEN pid_t vrid_waited_out(pid_t spid, int reaped);
VRID_HIDDEN int vrid_siginfo_reaped(const siginfo_t *info, int options);
VRID_HIDDEN int vrid_priority_who_in(int which, id_t vwho, id_t *swho);

/* ---- calls that name other processes (ptrace.c, task.c) --------------- */

/* ptrace with its pid translated; raw picks the system call's conventions. */
VRID_HIDDEN long vrid_ptrace(int raw, long request, pid_t vpid, void *addr, void *data);
/*
 * Whether this process has traced another.  A tracer's wait sees a
 * tracee's exit before the tracee's parent reaps it, so its waits go
 * through vrid_tracer_waited_out, which forgets no entry.
 */
VRID_HIDDEN int vrid_tracing(void);
VRID_HIDDEN pid_t vrid_tracer_waited_out(pid_t spid);
/* System calls libc has no wrapper for, as syscall() passes them: a[0..5]. */
VRID_HIDDEN long vrid_raw_ioprio(long nr, const long a[6]);
VRID_HIDDEN long vrid_raw_kcmp(const long a[6]);
VRID_HIDDEN long vrid_raw_sigqueueinfo(long nr, const long a[6]);
VRID_HIDDEN long vrid_raw_perf_event_open(const long a[6]);
/* Exported by task.c; libc declares them in no header. */
VRID_EXPORT int capget(cap_user_header_t hdr, cap_user_data_t data);
VRID_EXPORT int capset(cap_user_header_t hdr, const cap_user_data_t data);

/* ---- SysV IPC (ipc.c) ------------------------------------------------ */

/* Creates or opens an object through get() with the chain's private key. */
typedef int (*ipc_get_fn)(key_t skey, int flags, const void *arg);
VRID_HIDDEN int vrid_ipc_get(enum vrid_type type, key_t vkey, int flags, ipc_get_fn get,
			     const void *arg);
VRID_HIDDEN key_t vrid_key_out(key_t skey);
VRID_HIDDEN void vrid_key_forget_if_unused(key_t skey);
/* After IPC_RMID: the object's entry goes, and its key's if nothing else uses it. */
VRID_HIDDEN void vrid_ipc_removed(enum vrid_type type, int sid, key_t skey);
/* An unknown id fails EINVAL, as the kernel does for a removed one. */
VRID_HIDDEN int vrid_ipc_id_in(enum vrid_type type, int vid, int *sid);
/* Binds the id of an object get() returned, made with system key skey. */
VRID_HIDDEN int vrid_ipc_id_out(enum vrid_type type, key_t skey, int sid);
/* The index-th object of the chain in virtual id order, for *_STAT. */
VRID_HIDDEN int vrid_ipc_nth(enum vrid_type type, int index, int32_t *virt, int32_t *sys);
VRID_HIDDEN int vrid_ipc_max_index(enum vrid_type type);

/* After a restore: applies this process's recorded SEM_UNDO adjustments again (sem.c). */
VRID_HIDDEN void vrid_semadj_reapply(void);

/* ---- /proc (proc.c, procdir.c, procstat.c, sysvipc.c) --------------- */

/* What a /proc path names, on the system side. */
struct vrid_proc_ref {
	pid_t spid;		/* the process directory's system pid, or 0 */
	pid_t stid;		/* its task/<tid>'s system tid, or 0 */
	int chain;		/* spid is a process of the chain */
	const char *tail;	/* the path after /proc/<pid>[/task/<tid>], or NULL */
};

/* A path call's directory and path, rewritten for the kernel. */
struct vrid_proc_call {
	int dirfd;
	const char *path;
	struct vrid_proc_ref ref;
	char buf[PATH_MAX];
};

/* The pid at s, as the kernel writes it, and what follows it; or NULL. */
VRID_HIDDEN const char *vrid_parse_pid(const char *s, pid_t *pid);
/* A pid the caller wrote in a /proc path: 0 and its system pid, or -ENOENT. */
VRID_HIDDEN int vrid_proc_name_in(pid_t n, pid_t *sys, int *chain);
/* Whether path names a process by number: only those need the tables. */
VRID_HIDDEN int vrid_proc_names_pid(const char *path);
/* 0, or a negative errno for a path that names nothing. */
VRID_HIDDEN int vrid_proc_in(int dirfd, const char *path, struct vrid_proc_call *c);
/* A pid file's subject: its virtual id, recorded if it is a thread seen first here. */
VRID_HIDDEN pid_t vrid_proc_subject_out(pid_t sys);

#define VRID_PROC_PASS (-2)	/* not a file the layer rewrites: open the kernel's */
/* An fd on the rewritten text of the file c names, -1 with errno, or VRID_PROC_PASS. */
VRID_HIDDEN int vrid_proc_open_view(const struct vrid_proc_call *c, int flags);
/*
 * Copies the file at sys_path to a new memfd, seeked to 0, passing each
 * line to fn: fn writes the new line into out and returns its length
 * (0 drops the line), or returns -1 to keep the line as it is.
 */
typedef int (*vrid_line_fn)(const char *line, size_t len, char *out, size_t cap, void *arg);
VRID_HIDDEN int vrid_proc_rewrite(const char *sys_path, int flags, vrid_line_fn fn, void *arg);
/* /proc/sysvipc/{sem,shm,msg} as the chain sees them; VRID_PROC_PASS for other paths. */
VRID_HIDDEN int vrid_sysvipc_open(const char *sys_path, int flags);

/*
 * After SEM_INFO, SHM_INFO or MSG_INFO: buf counts the chain's objects, not
 * the namespace's (shm_rss and shm_swp excepted).  Returns what every
 * *_INFO and IPC_INFO returns, the chain's highest index.
 */
VRID_HIDDEN int vrid_ipc_info_out(enum vrid_type type, int cmd, void *buf);

/* ---- the quiesce signal (quiesce.c, blocked.c, signal.c) ------------ */

/* The real-time signal the layer keeps for itself (vrid_abi.h). */
#define VRID_SIGNAL (SIGRTMAX - VRID_SIGNAL_OFFSET)

/*
 * Times this thread took VRID_SIGNAL.  A call the kernel never restarts
 * that fails EINTR while it changed was cut short by the layer, and the
 * wrapper calls again (an application signal in the same call is then
 * not reported: see docs/limits.md).
 */
extern __thread unsigned vrid_quiesce_hits __attribute__((tls_model("initial-exec"))) VRID_HIDDEN;

static inline unsigned vrid_quiesce_seen(void)
{
	return __atomic_load_n(&vrid_quiesce_hits, __ATOMIC_RELAXED);
}

static inline int vrid_quiesce_cut(unsigned seen)
{
	return errno == EINTR && vrid_quiesce_seen() != seen;
}

/* set without VRID_SIGNAL, in out; returns out, or NULL for a NULL set. */
VRID_HIDDEN const sigset_t *vrid_sigset_in(const sigset_t *set, sigset_t *out);

/* The end of a relative timeout, so that a call cut short goes on with what is left. */
struct vrid_deadline {
	struct timespec end;	/* CLOCK_MONOTONIC */
	const struct timespec *timeout;	/* the caller's, or NULL: none */
};
VRID_HIDDEN void vrid_deadline_start(struct vrid_deadline *d, const struct timespec *timeout);
/* The time left in *left (zero once past), or NULL when there is no timeout. */
VRID_HIDDEN const struct timespec *vrid_deadline_left(const struct vrid_deadline *d,
						      struct timespec *left);

/* ---- environment across exec (exec.c) ------------------------------- */

#define VRID_ENV_MAX 8		/* entries vrid_env_fix may add */
#define VRID_ENV_LEN 4096	/* longest "NAME=value" kept */
#define VRID_PRELOAD_LEN 8192	/* longest LD_PRELOAD entry built */
VRID_HIDDEN void vrid_env_capture(void);
VRID_HIDDEN int vrid_env_count(char *const envp[]);
VRID_HIDDEN void vrid_env_fix(char *const envp[], char **out, char *preload_buf);

/* Declares fixed, envp with the chain's variables put back, on the stack. */
#define VRID_WITH_ENV(envp, fixed)					\
	char *fixed[vrid_env_count(envp) + VRID_ENV_MAX + 1];		\
	char fixed##_preload[VRID_PRELOAD_LEN];				\
	vrid_env_fix(envp, fixed, fixed##_preload)

/* ---- logging (log.c) -------------------------------------------------- */

VRID_HIDDEN void vrid_log_init(void);

/* Opens wrappers that translate no id the caller passes: with broken
 * tables they go straight to libc too. */
#define VRID_PASS(passthrough)					\
	do {							\
		if (unlikely(!vrid_on()))			\
			return passthrough;			\
	} while (0)

/* Set errno from a negative result and return -1, the libc convention. */
static inline int vrid_fail(int neg_errno)
{
	errno = -neg_errno;
	return -1;
}

#endif
