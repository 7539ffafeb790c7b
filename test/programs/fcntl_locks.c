/*
 * Lock holders: F_GETLK and F_OFD_GETLK name the process holding a
 * conflicting lock by its virtual pid; an OFD lock's holder stays -1.
 */
#include "vt.h"

#include <fcntl.h>
#include <sys/syscall.h>

static void lock_range(struct flock *fl, short type)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = 0;
	fl->l_len = 10;
}

struct lock_request {
	const char *path;
	int cmd;
};

/* In a held child: takes a write lock of kind cmd on path. */
static void take_lock(void *arg)
{
	const struct lock_request *req = arg;
	struct flock fl;
	int fd;

	fd = open(req->path, O_RDWR);
	MUST(fd >= 0);
	lock_range(&fl, F_WRLCK);
	MUST(fcntl(fd, req->cmd, &fl) == 0);
}

static pid_t holder(const char *path, int cmd, int *release)
{
	struct lock_request req = { path, cmd };

	return vt_fork_held(take_lock, &req, release);
}

static void show(const char *name, int fd, int cmd)
{
	struct flock fl;
	char key[64];
	int rc;

	lock_range(&fl, F_WRLCK);
	rc = fcntl(fd, cmd, &fl);
	snprintf(key, sizeof(key), "%s.rc", name);
	OUT_INT(key, rc);
	snprintf(key, sizeof(key), "%s.type_is_wrlck", name);
	OUT_INT(key, fl.l_type == F_WRLCK);
	snprintf(key, sizeof(key), "%s.l_pid", name);
	OUT_INT(key, fl.l_pid);
}

int main(void)
{
	char path[] = "/tmp/vrid-fcntl-locks.XXXXXX";
	int fd, release;
	pid_t pid;

	fd = mkstemp(path);
	MUST(fd >= 0 && ftruncate(fd, 100) == 0);

	show("free.getlk", fd, F_GETLK);
	pid = holder(path, F_SETLK, &release);
	OUT_INT("posix.holder", pid);
	show("posix.getlk", fd, F_GETLK);
	show("posix.getlk64", fd, F_GETLK64);
	show("posix.ofd_getlk", fd, F_OFD_GETLK);
	{
		struct flock fl;

		lock_range(&fl, F_WRLCK);
		OUT_INT("posix.fcntl64.rc", fcntl64(fd, F_GETLK, &fl));
		OUT_INT("posix.fcntl64.l_pid", fl.l_pid);
	}
	{
		struct flock fl;

		lock_range(&fl, F_WRLCK);
		OUT_INT("posix.SYS_fcntl.rc", syscall(SYS_fcntl, fd, F_GETLK, &fl));
		OUT_INT("posix.SYS_fcntl.l_pid", fl.l_pid);
	}
	close(release);
	OUT_INT("posix.holder.status", vt_exit_code(vt_wait(pid)));
	show("released.getlk", fd, F_GETLK);

	pid = holder(path, F_OFD_SETLK, &release);
	OUT_INT("ofd.holder", pid);
	show("ofd.getlk", fd, F_GETLK);
	show("ofd.ofd_getlk", fd, F_OFD_GETLK);
	close(release);
	OUT_INT("ofd.holder.status", vt_exit_code(vt_wait(pid)));

	unlink(path);
	return vt_done();
}
