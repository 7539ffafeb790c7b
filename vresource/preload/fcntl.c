/*
 * Descriptor owners and lock holders: fcntl and ioctl name the process or
 * group that gets SIGIO and SIGURG for a descriptor, the holder of a lock
 * in the way, and a terminal's foreground group and session.  An owner
 * above 0 is a process, below 0 a process group, and 0 is nobody.
 *
 * Both calls are on the hot path of every server for commands that carry
 * no pid (F_GETFL, FIONBIO): those cost one switch on the command.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "vrid.h"

/* An owner as F_SETOWN takes it; unknown ones fail ESRCH, as in a pid namespace. */
static int owner_in(int vowner, int *sowner)
{
	pid_t spid;
	int err;

	if (vowner == INT_MIN)
		return -EINVAL;
	err = vrid_pid_in(vowner < 0 ? -vowner : vowner, &spid);
	*sowner = vowner < 0 ? -spid : spid;
	return err;
}

/* Owners outside the chain read as 0, as F_GETOWN shows them across namespaces. */
static int owner_out(int sowner)
{
	return sowner < 0 ? -vrid_pid_out(-sowner) : vrid_pid_out(sowner);
}

/* The fcntl commands whose argument or result holds a pid. */
static int fcntl_names_pid(int cmd)
{
	switch (cmd) {
	case F_SETOWN:
	case F_GETOWN:
	case F_SETOWN_EX:
	case F_GETOWN_EX:
	case F_GETLK:
	case F_OFD_GETLK:
		return 1;
	default:
		return 0;
	}
}

static int set_owner(int fd, int vowner)
{
	int sowner, err = owner_in(vowner, &sowner);

	return err < 0 ? vrid_fail(err) : real.fcntl(fd, F_SETOWN, sowner);
}

/* Through F_GETOWN_EX, as glibc does, so that group 1 is not read as an error. */
static int get_owner(int fd)
{
	struct f_owner_ex owner;

	if (real.fcntl(fd, F_GETOWN_EX, &owner) < 0)
		return -1;
	owner.pid = vrid_pid_out(owner.pid);
	return owner.type == F_OWNER_PGRP ? -owner.pid : owner.pid;
}

static int set_owner_ex(int fd, const struct f_owner_ex *vowner)
{
	struct f_owner_ex sowner;
	int err;

	if (!vowner)
		return real.fcntl(fd, F_SETOWN_EX, vowner);
	sowner = *vowner;
	err = vrid_pid_in(vowner->pid, &sowner.pid);
	return err < 0 ? vrid_fail(err) : real.fcntl(fd, F_SETOWN_EX, &sowner);
}

static int get_owner_ex(int fd, struct f_owner_ex *owner)
{
	int ret = real.fcntl(fd, F_GETOWN_EX, owner);

	if (ret == 0)
		owner->pid = vrid_pid_out(owner->pid);
	return ret;
}

/* An OFD lock's holder is -1 and stays so; a process's is its pid. */
static int get_lock(int fd, int cmd, struct flock *lock)
{
	int ret = real.fcntl(fd, cmd, lock);

	if (ret == 0 && lock->l_type != F_UNLCK && lock->l_pid > 0)
		lock->l_pid = vrid_pid_out(lock->l_pid);
	return ret;
}

/*
 * The commands without pids, as libc makes them: one system call, where
 * only the waiting lock commands are cancellation points.
 */
static inline int fcntl_plain(int fd, int cmd, void *arg)
{
	long ret;

	if (cmd == F_SETLKW || cmd == F_OFD_SETLKW)
		return real.fcntl(fd, cmd, arg);
	ret = vrid_sys3(SYS_fcntl, fd, cmd, arg);
	return ret < 0 ? vrid_fail((int)ret) : (int)ret;
}

/* arg is taken whole, as the kernel takes it, and passed on as is. */
static int fcntl_layered(int fd, int cmd, void *arg)
{
	if (unlikely(!vrid_on())) {
		if (vrid_broken() && fcntl_names_pid(cmd))
			return vrid_fail(-ENOTRECOVERABLE);
		return fcntl_plain(fd, cmd, arg);
	}
	switch (cmd) {
	case F_SETOWN:
		return set_owner(fd, (int)(long)arg);
	case F_GETOWN:
		return get_owner(fd);
	case F_SETOWN_EX:
		return set_owner_ex(fd, arg);
	case F_GETOWN_EX:
		return get_owner_ex(fd, arg);
	case F_GETLK:
	case F_OFD_GETLK:
		return get_lock(fd, cmd, arg);
	default:
		return fcntl_plain(fd, cmd, arg);
	}
}

VRID_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_layered(fd, cmd, arg);
}

/*
 * glibc's large-file name for fcntl, which programs built with 64-bit
 * offsets call.  On 64-bit systems it is the same function, and
 * F_GETLK64 is F_GETLK.
 */
VRID_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* ---- ioctl ---------------------------------------------------------- */

/* The ioctl requests whose int argument holds a pid, in or out. */
static int ioctl_names_pid(unsigned long request)
{
	switch (request) {
	case FIOSETOWN:
	case SIOCSPGRP:
	case FIOGETOWN:
	case SIOCGPGRP:
	case TIOCSPGRP:
	case TIOCGPGRP:
	case TIOCGSID:
		return 1;
	default:
		return 0;
	}
}

static int ioctl_set_owner(int fd, unsigned long request, const int *vowner)
{
	int sowner, err;

	if (!vowner)
		return real.ioctl(fd, request, vowner);
	err = owner_in(*vowner, &sowner);
	return err < 0 ? vrid_fail(err) : real.ioctl(fd, request, &sowner);
}

/* A foreground group must exist in the caller's view: unknown ones fail ESRCH. */
static int ioctl_set_pgrp(int fd, const pid_t *vpgrp)
{
	pid_t spgrp;
	int err;

	if (!vpgrp || *vpgrp < 0)
		return real.ioctl(fd, TIOCSPGRP, vpgrp);
	err = vrid_pid_in(*vpgrp, &spgrp);
	return err < 0 ? vrid_fail(err) : real.ioctl(fd, TIOCSPGRP, &spgrp);
}

static int ioctl_get_pid(int fd, unsigned long request, int *out)
{
	int ret = real.ioctl(fd, request, out);

	if (ret == 0)
		*out = owner_out(*out);
	return ret;
}

VRID_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (unlikely(!vrid_on())) {
		if (vrid_broken() && ioctl_names_pid(request))
			return vrid_fail(-ENOTRECOVERABLE);
		return real.ioctl(fd, request, arg);
	}
	switch (request) {
	case FIOSETOWN:
	case SIOCSPGRP:
		return ioctl_set_owner(fd, request, arg);
	case TIOCSPGRP:
		return ioctl_set_pgrp(fd, arg);
	case FIOGETOWN:
	case SIOCGPGRP:
	case TIOCGPGRP:
	case TIOCGSID:
		return ioctl_get_pid(fd, request, arg);
	default:
		return real.ioctl(fd, request, arg);
	}
}
