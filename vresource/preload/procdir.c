/*
 * The listings of /proc and of /proc/<pid>/task, as a pid namespace would
 * show them to the chain, and in agreement with the paths (proc.c):
 *   - a process of the chain is listed under its virtual pid;
 *   - a process outside the chain is listed under its own pid, unless that
 *     pid is a virtual pid of the chain: then it is left out, since
 *     /proc/<pid> names the chain's process;
 *   - the task/ directory of a chain process lists its threads by virtual
 *     tid; a thread that has none yet gets one here.  Task directories of
 *     processes outside the chain are the kernel's.
 *
 * glibc's readdir reads the directory with an internal getdents64 that
 * no library can interpose, so readdir itself is wrapped, for the
 * directory streams opendir and fdopendir made; getdents64 is wrapped
 * too, for programs that read directories themselves.
 */
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vrid.h"

#define LOG_PREFIX "proc: "
#define PROC_SUPER_MAGIC 0x9fa0
/* Listings open at once in one process; more are read as the kernel's. */
#define PROC_DIRS 64

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "dirent64 differs from dirent");

/* A directory stream on a listing, and the renamed entry readdir returns. */
struct proc_dir {
	DIR *dir;		/* the slot's owner; set with a compare-and-swap */
	pid_t owner_sys;	/* 0 for /proc, else the chain process whose task/ it is */
	struct dirent ent;
};

static struct proc_dir proc_dirs[PROC_DIRS];
static int proc_dirs_open;	/* slots in use: while 0, readdir looks no further */

/*
 * Whether fd is a listing the layer rewrites: 1 and the owner (0 for the
 * /proc root), or 0.
 */
static int listing_of(int fd, pid_t *owner_sys)
{
	struct statfs sfs;
	char link[40], path[64];
	const char *rest;
	pid_t spid, unused;
	long n;

	if (vrid_sys2(SYS_fstatfs, fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = vrid_sys(SYS_readlinkat, AT_FDCWD, (long)link, (long)path, sizeof(path) - 1, 0, 0);
	if (n <= 0 || n >= (long)sizeof(path) - 1)
		return 0;
	path[n] = '\0';
	if (strcmp(path, "/proc") == 0) {
		*owner_sys = 0;
		return 1;
	}
	if (strncmp(path, "/proc/", 6) != 0 || !(rest = vrid_parse_pid(path + 6, &spid)) ||
	    strcmp(rest, "/task") != 0 || vrid_sys_to_virt(&vrid.tab, VRID_PID, spid, &unused) < 0)
		return 0;
	*owner_sys = spid;
	return 1;
}

enum entry_view { SHOW, HIDE, RENAME };

/* What the chain sees of the entry name in a listing; *virt for RENAME. */
static enum entry_view view_entry(pid_t owner_sys, const char *name, pid_t *virt)
{
	pid_t sys, other;
	const char *rest = vrid_parse_pid(name, &sys);

	if (!rest || *rest != '\0')
		return SHOW;
	if (owner_sys != 0)
		*virt = vrid_proc_subject_out(sys);
	else if (vrid_sys_to_virt(&vrid.tab, VRID_PID, sys, virt) < 0)
		return vrid_virt_to_sys(&vrid.tab, VRID_PID, sys, &other) == 0 ? HIDE : SHOW;
	return *virt == sys || *virt <= 0 ? SHOW : RENAME;
}

static void register_dir(DIR *dir)
{
	pid_t owner_sys;

	if (!dir || !listing_of(dirfd(dir), &owner_sys))
		return;
	for (int i = 0; i < PROC_DIRS; i++) {
		DIR *none = NULL;

		if (__atomic_compare_exchange_n(&proc_dirs[i].dir, &none, dir, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			proc_dirs[i].owner_sys = owner_sys;
			__atomic_add_fetch(&proc_dirs_open, 1, __ATOMIC_RELEASE);
			return;
		}
	}
	vrid_log(VRID_LOG_WARN, LOG_PREFIX "more than %d /proc listings open: "
		 "this one shows system pids", PROC_DIRS);
}

static struct proc_dir *find_dir(DIR *dir)
{
	if (likely(__atomic_load_n(&proc_dirs_open, __ATOMIC_ACQUIRE) == 0))
		return NULL;
	for (int i = 0; i < PROC_DIRS; i++)
		if (__atomic_load_n(&proc_dirs[i].dir, __ATOMIC_ACQUIRE) == dir)
			return &proc_dirs[i];
	return NULL;
}

VRID_EXPORT DIR *opendir(const char *path)
{
	struct vrid_proc_call c;
	int saved = errno, err;
	DIR *dir;

	if (unlikely(!vrid_on())) {
		if (vrid_broken() && vrid_proc_names_pid(path)) {
			errno = ENOTRECOVERABLE;
			return NULL;
		}
		return real.opendir(path);
	}
	if ((err = vrid_proc_in(AT_FDCWD, path, &c)) < 0) {
		errno = -err;
		return NULL;
	}
	dir = real.opendir(c.path);
	if (dir) {
		register_dir(dir);
		errno = saved;
	}
	return dir;
}

VRID_EXPORT DIR *fdopendir(int fd)
{
	int saved = errno;
	DIR *dir;

	VRID_PASS(real.fdopendir(fd));
	dir = real.fdopendir(fd);
	if (dir) {
		register_dir(dir);
		errno = saved;
	}
	return dir;
}

VRID_EXPORT int closedir(DIR *dir)
{
	struct proc_dir *slot;

	VRID_PASS(real.closedir(dir));
	slot = find_dir(dir);
	if (slot) {
		__atomic_store_n(&slot->dir, NULL, __ATOMIC_RELEASE);
		__atomic_sub_fetch(&proc_dirs_open, 1, __ATOMIC_RELEASE);
	}
	return real.closedir(dir);
}

VRID_EXPORT struct dirent *readdir(DIR *dir)
{
	struct proc_dir *slot;
	struct dirent *e;
	int saved = errno;
	pid_t virt;

	VRID_PASS(real.readdir(dir));
	slot = find_dir(dir);
	if (!slot)
		return real.readdir(dir);
	for (;;) {
		errno = saved;
		if ((e = real.readdir(dir)) == NULL)
			return NULL;
		switch (view_entry(slot->owner_sys, e->d_name, &virt)) {
		case SHOW:
			errno = saved;
			return e;
		case HIDE:
			continue;
		case RENAME:
			memcpy(&slot->ent, e, offsetof(struct dirent, d_name));
			snprintf(slot->ent.d_name, sizeof(slot->ent.d_name), "%d", virt);
			slot->ent.d_reclen = sizeof(slot->ent);
			errno = saved;
			return &slot->ent;
		}
	}
}

VRID_EXPORT struct dirent64 *readdir64(DIR *dir)
{
	return (struct dirent64 *)readdir(dir);
}

/* ---- getdents64 -------------------------------------------------------- */

static size_t record_size(size_t name_len)
{
	return (offsetof(struct dirent64, d_name) + name_len + 1 + 7) & ~(size_t)7;
}

/*
 * Reads entries into a buffer of ours and writes what the chain sees into
 * the caller's.  Renamed entries may be longer: when the next one does
 * not fit, the directory goes back to just after the last one written.
 */
static ssize_t listing_getdents(int fd, pid_t owner_sys, char *buf, size_t count)
{
	char in[4096] __attribute__((aligned(8)));
	size_t out = 0;

	for (;;) {
		long n = vrid_sys3(SYS_getdents64, fd, in, count < sizeof(in) ? count : sizeof(in));
		long resume = -1;

		if (n <= 0)
			return n < 0 ? vrid_fail((int)n) : 0;
		for (long i = 0; i < n;) {
			struct dirent64 *e = (struct dirent64 *)(in + i);
			struct dirent64 *o = (struct dirent64 *)(buf + out);
			char name[16];
			const char *shown = e->d_name;
			pid_t virt;
			size_t size;

			i += e->d_reclen;
			switch (view_entry(owner_sys, e->d_name, &virt)) {
			case HIDE:
				resume = e->d_off;
				continue;
			case RENAME:
				snprintf(name, sizeof(name), "%d", virt);
				shown = name;
				break;
			case SHOW:
				break;
			}
			size = record_size(strlen(shown));
			if (out + size > count) {
				if (resume >= 0)
					vrid_sys3(SYS_lseek, fd, resume, SEEK_SET);
				return out > 0 ? (ssize_t)out : vrid_fail(-EINVAL);
			}
			o->d_ino = e->d_ino;
			o->d_off = e->d_off;
			o->d_reclen = (unsigned short)size;
			o->d_type = e->d_type;
			memset(o->d_name, 0, size - offsetof(struct dirent64, d_name));
			strcpy(o->d_name, shown);
			out += size;
			resume = e->d_off;
		}
		if (out > 0)
			return (ssize_t)out;
	}
}

static ssize_t sys_getdents64(int fd, void *buf, size_t count)
{
	long n = vrid_sys3(SYS_getdents64, fd, buf, count);

	return n < 0 ? vrid_fail((int)n) : n;
}

VRID_EXPORT ssize_t getdents64(int fd, void *buf, size_t count)
{
	pid_t owner_sys;
	int saved = errno;
	ssize_t n;

	VRID_PASS(sys_getdents64(fd, buf, count));
	if (!listing_of(fd, &owner_sys))
		return sys_getdents64(fd, buf, count);
	n = listing_getdents(fd, owner_sys, buf, count);
	if (n >= 0)
		errno = saved;
	return n;
}
