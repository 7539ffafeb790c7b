/*
 * The table engine: one chain's table file, mapped, behind a handle.  It
 * is built twice from the same sources: into the preload library, where
 * each process has one handle (vrid.tab, layer.c), and into the Go
 * package vresource through cgo (engine.go), where the host side opens
 * as many as it needs.  Nothing here may use the rest of the layer: no
 * interposed call, no struct vrid_real.
 *
 * The two builds differ only in what the handle says:
 *   - the layer waits on the writer lock as long as it takes, with every
 *     signal blocked, and knows how to ask the kernel whether an object
 *     is alive (its type ops);
 *   - the host bounds every wait (VRID_TABLE_BOUNDED), blocks no signal
 *     (the Go runtime needs them, and a blocked SIGBUS would kill it),
 *     and may hold a private copy that takes no lock (VRID_TABLE_PRIVATE).
 */
#ifndef VRID_TABLE_H
#define VRID_TABLE_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vrid_abi.h"

#define VRID_HIDDEN __attribute__((visibility("hidden")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Raw system calls for our own use: they never re-enter the layer and never
 * touch errno.  The result is the kernel's: negative errno on failure.
 * Inlined into each caller, as libc inlines its own.
 */
static inline __attribute__((always_inline)) long
vrid_sys(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	ret = x0;
#else
#error "vrid_sys: add this architecture's system call convention"
#endif
	return ret;
}
#define vrid_sys0(nr)			vrid_sys(nr, 0, 0, 0, 0, 0, 0)
#define vrid_sys2(nr, a, b)		vrid_sys(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define vrid_sys3(nr, a, b, c)		vrid_sys(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* Logging: log.c in the layer; the Go build makes errors of results instead. */
enum vrid_level { VRID_LOG_ERROR, VRID_LOG_WARN, VRID_LOG_INFO, VRID_LOG_DEBUG };
VRID_HIDDEN void vrid_log(enum vrid_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One resource type's indexes, checked once at attach and then trusted. */
struct vrid_index {
	uint64_t *by_virt;
	uint64_t *by_sys;
	uint32_t mask;		/* slots - 1 */
	uint32_t shift;
	struct vrid_table_desc *desc;	/* live and fresh_* are shared, mutable */
};

/*
 * Per resource type: how to tell whether a system id still names a live
 * object (a full table asks each entry before giving up), and, for System
 * V objects, what identifies one: record fills what IPC_STAT tells of it
 * into rec, which holds what the caller knows, or leaves rec if it can't.
 */
struct vrid_type_ops {
	enum vrid_type type;
	const char *name;
	int (*sys_alive)(int32_t sys);
	void (*record)(int32_t sys, struct vrid_ipc_record *rec);
};

/* Handle flags. */
#define VRID_TABLE_BOUNDED	0x1u	/* waits end after wait_ns; no signal is blocked */
#define VRID_TABLE_PRIVATE	0x2u	/* a private copy: no writer lock, nobody else writes */

/*
 * An attached table.  vrid_table_check fills the mapping part; the caller
 * fills the rest before the first write.
 */
struct vrid_table {
	/* The mapping, checked (vrid_table_check). */
	struct vrid_header *hdr;
	uint64_t size;
	struct vrid_index idx[VRID_NTYPES];
	/* The IPC records section, or NULL; capacity as its size allows. */
	struct vrid_ipc_records *records;
	uint32_t records_cap;
	/* The SEM_UNDO adjustments section, or NULL; capacity as its size allows. */
	struct vrid_semadj_area *semadj;
	uint32_t semadj_cap;

	/* Set by the caller. */
	unsigned flags;			/* VRID_TABLE_* */
	const struct vrid_type_ops *const *ops;	/* [VRID_NTYPES] */
	int64_t wait_ns;		/* bounded: the longest wait for the lock or a rebuild */

	/* The writer lock (lock.c). */
	uint32_t thread_owner;		/* system tid of the thread holding it, or 0 */
	int lock_fd;			/* the description this process locks through, or -1 */
	pid_t lock_fd_pid;		/* the process that opened lock_fd */
	int wedged;			/* bounded: the last wait ran out, the next one tries once */
	/* What the file was when last checked: a restore may change both. */
	uint32_t generation;
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];
};

/* Results are 0 or a negative errno; bounded waits that run out give -ETIMEDOUT. */

/* table.c */
VRID_HIDDEN int vrid_virt_to_sys(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t *sys);
VRID_HIDDEN int vrid_sys_to_virt(struct vrid_table *t, enum vrid_type type, int32_t sys, int32_t *virt);
VRID_HIDDEN int vrid_bind(struct vrid_table *t, enum vrid_type type, int32_t sys, int32_t *virt);
/* vrid_bind that also records what identifies a new object (record.c). */
VRID_HIDDEN int vrid_bind_record(struct vrid_table *t, enum vrid_type type, int32_t sys,
				 const struct vrid_ipc_record *rec, int32_t *virt);
/* The system key for vkey; a new mapping tries derived keys from attempt on. */
VRID_HIDDEN int vrid_bind_key(struct vrid_table *t, int32_t vkey, uint32_t attempt, int32_t *skey,
			      int *created);
/* An explicit pair, as a restore makes: -EEXIST if either id is taken. */
VRID_HIDDEN int vrid_insert(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t sys);
/* Points virt at a new system id, as a restore does once the object is recreated. */
VRID_HIDDEN int vrid_rebind(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t new_sys);
VRID_HIDDEN int vrid_remove_sys(struct vrid_table *t, enum vrid_type type, int32_t sys);
VRID_HIDDEN int vrid_remove_virt(struct vrid_table *t, enum vrid_type type, int32_t virt);
VRID_HIDDEN uint32_t vrid_live(const struct vrid_table *t, enum vrid_type type);
VRID_HIDDEN const char *vrid_type_name(enum vrid_type type);
/* Whether an id can be stored: INT32_MIN can't (see vrid_abi.h). */
VRID_HIDDEN int vrid_storable(int32_t id);
/* Under the lock, calls fn for each entry in slot order; stops when fn returns non-zero. */
VRID_HIDDEN int vrid_each(struct vrid_table *t, enum vrid_type type,
			  int (*fn)(int32_t virt, int32_t sys, void *arg), void *arg);
/*
 * Without the lock, copies the entries into out, virt and sys in turn,
 * as many as cap pairs hold; *n is how many there are.  A listing taken
 * while a rebuild ran is taken again: every entry that stays bound all
 * along is in it once.
 */
VRID_HIDDEN int vrid_list(struct vrid_table *t, enum vrid_type type, int32_t *out, uint32_t cap,
			  uint32_t *n);
/* Fills rec with what identifies System V object sys now (type's record op). */
VRID_HIDDEN void vrid_record_fill(const struct vrid_table *t, enum vrid_type type, int32_t sys,
				  struct vrid_ipc_record *rec);
/* Under the lock: mends what a writer that died mid-write left. */
VRID_HIDDEN void vrid_repair_locked(struct vrid_table *t);
/* Counts one more restore under the lock; *generation is the new count. */
VRID_HIDDEN int vrid_bump_generation(struct vrid_table *t, uint32_t *generation);

/*
 * tablecheck.c: checks the size bytes of a table file at mem, and points
 * t's mapping part at it; or -EINVAL, saying why in why[len].  mem may be
 * NULL for a size shorter than the header.
 */
VRID_HIDDEN int vrid_table_check(struct vrid_table *t, void *mem, uint64_t size, char *why, size_t len);

/* lock.c: the writer lock; the layer's blocks every signal meanwhile. */
VRID_HIDDEN int vrid_lock(struct vrid_table *t, sigset_t *saved);
VRID_HIDDEN void vrid_unlock(struct vrid_table *t, const sigset_t *saved);
/* The file's fd from attach becomes this process's lock description. */
VRID_HIDDEN void vrid_lock_adopt(struct vrid_table *t, int fd);
/*
 * A new read-write description of the file open at fd, through
 * /proc/self/fd/<fd>: the magic link skips the path, so a process that
 * dropped root reaches a file it holds; the file's own mode decides.
 */
VRID_HIDDEN long vrid_reopen(int fd);
/* In a new child: a description of its own; an error if it can't open one. */
VRID_HIDDEN int vrid_lock_after_fork(struct vrid_table *t);
/*
 * For a reader that waited on a rebuild too long: its writer died, and
 * taking the lock repairs it.  *since is 0 before a reader's first call;
 * a bounded handle gives up with -ETIMEDOUT once wait_ns has passed.
 */
VRID_HIDDEN int vrid_settle(struct vrid_table *t, int64_t *since);

/* record.c: under the writer lock, records an object, or forgets it. */
VRID_HIDDEN int vrid_record_put_locked(struct vrid_table *t, const struct vrid_ipc_record *rec);
VRID_HIDDEN void vrid_record_drop_locked(struct vrid_table *t, enum vrid_type type, int32_t sys);
/* After IPC_SET, which changes *_ctime: the record follows; errno is kept. */
VRID_HIDDEN void vrid_record_ctime(struct vrid_table *t, enum vrid_type type, int32_t sys);
/* Copies the live records, at most cap; returns how many. */
VRID_HIDDEN uint32_t vrid_records_copy(const struct vrid_table *t, struct vrid_ipc_record *out,
				       uint32_t cap);

/*
 * semadj.c: the SEM_UNDO adjustments (vrid_abi.h).  The _locked calls
 * hold the writer lock; the others take it, and take nothing when the
 * section holds no entry, so a chain that never uses SEM_UNDO pays one
 * load.
 */
VRID_HIDDEN int vrid_semadj_used(const struct vrid_table *t);
/* Adds delta to pid's adjustment of (sem, num); -ENOSPC when there is no room. */
VRID_HIDDEN int vrid_semadj_add_locked(struct vrid_table *t, int32_t pid_virt, int32_t sem_virt,
				       uint16_t num, int delta);
/* Drops every process's adjustment of (sem, num), or of the whole set for num -1. */
VRID_HIDDEN void vrid_semadj_clear_locked(struct vrid_table *t, int32_t sem_virt, int num);
VRID_HIDDEN void vrid_semadj_clear(struct vrid_table *t, int32_t sem_virt, int num);
/* Drops the adjustments of a process that is gone: the kernel applied them. */
VRID_HIDDEN void vrid_semadj_drop_pid_locked(struct vrid_table *t, int32_t pid_virt);
VRID_HIDDEN void vrid_semadj_drop_pid(struct vrid_table *t, int32_t pid_virt);
/* Drops the adjustments of processes the pid table no longer names. */
VRID_HIDDEN void vrid_semadj_prune_locked(struct vrid_table *t);
/* Entry i, or NULL past the entries that may be live. */
VRID_HIDDEN struct vrid_semadj *vrid_semadj_at(const struct vrid_table *t, uint32_t i);
/* Frees one entry. */
VRID_HIDDEN void vrid_semadj_free_locked(struct vrid_semadj *e);
/* Without the lock: copies the live entries, at most cap; returns how many. */
VRID_HIDDEN uint32_t vrid_semadj_copy(const struct vrid_table *t, struct vrid_semadj *out, uint32_t cap);

#endif
