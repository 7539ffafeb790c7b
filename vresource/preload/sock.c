/*
 * Credentials on Unix sockets: SO_PEERCRED and SCM_CREDENTIALS carry the
 * pid of the process at the other end.  A received one is virtual, or 0
 * when that process is outside the chain, as a pid namespace shows it; a
 * sent one is the sender's virtual pid, which the kernel checks against
 * the system one.
 *
 * recvmsg and sendmsg are on the hot path: messages without control data
 * cost one test.  With unusable tables these calls pass straight through,
 * as getpid() then gives the system pid the kernel checks and reports.
 */
#include <string.h>
#include <sys/socket.h>

#include "vrid.h"

enum creds_dir {
	CREDS_CHECK,	/* would every pid translate in? */
	CREDS_IN,	/* virtual to system, after CREDS_CHECK */
	CREDS_OUT,	/* system to virtual */
};

/* Translates the pid of each SCM_CREDENTIALS message; -ESRCH when one is unknown. */
static int creds_walk(struct msghdr *msg, enum creds_dir dir)
{
	struct cmsghdr *c;
	struct ucred cred;
	pid_t pid;

	if (likely(!msg->msg_control || msg->msg_controllen == 0))
		return 0;
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS ||
		    c->cmsg_len < CMSG_LEN(sizeof(cred)))
			continue;
		memcpy(&cred, CMSG_DATA(c), sizeof(cred));
		if (dir == CREDS_OUT)
			pid = vrid_pid_out(cred.pid);
		else if (vrid_pid_in(cred.pid, &pid) < 0)
			return -ESRCH;
		/* The buffer is written only when its pid changes. */
		if (dir != CREDS_CHECK && pid != cred.pid) {
			cred.pid = pid;
			memcpy(CMSG_DATA(c), &cred, sizeof(cred));
		}
	}
	return 0;
}

VRID_EXPORT int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
	struct ucred *cred = value;
	int ret;

	VRID_PASS(real.getsockopt(fd, level, name, value, len));
	ret = real.getsockopt(fd, level, name, value, len);
	if (ret == 0 && level == SOL_SOCKET && name == SO_PEERCRED && len &&
	    *len >= sizeof(cred->pid))
		cred->pid = vrid_pid_out(cred->pid);
	return ret;
}

VRID_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t ret;

	VRID_PASS(real.recvmsg(fd, msg, flags));
	ret = real.recvmsg(fd, msg, flags);
	if (ret >= 0)
		creds_walk(msg, CREDS_OUT);
	return ret;
}

VRID_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			 struct timespec *timeout)
{
	int ret;

	VRID_PASS(real.recvmmsg(fd, vec, vlen, flags, timeout));
	ret = real.recvmmsg(fd, vec, vlen, flags, timeout);
	for (int i = 0; i < ret; i++)
		creds_walk(&vec[i].msg_hdr, CREDS_OUT);
	return ret;
}

/*
 * The credentials are rewritten where the caller put them, and put back
 * after the call: msg_control is the caller's writable buffer, and a copy
 * would need room of unbounded size.
 */
VRID_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct msghdr *m = (struct msghdr *)msg;
	ssize_t ret;
	int saved_errno;

	VRID_PASS(real.sendmsg(fd, msg, flags));
	if (creds_walk(m, CREDS_CHECK) < 0)
		return vrid_fail(-ESRCH);
	creds_walk(m, CREDS_IN);
	ret = real.sendmsg(fd, msg, flags);
	saved_errno = errno;
	creds_walk(m, CREDS_OUT);
	errno = saved_errno;
	return ret;
}

VRID_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	int ret, saved_errno;

	VRID_PASS(real.sendmmsg(fd, vec, vlen, flags));
	for (unsigned int i = 0; i < vlen; i++)
		if (creds_walk(&vec[i].msg_hdr, CREDS_CHECK) < 0)
			return vrid_fail(-ESRCH);
	for (unsigned int i = 0; i < vlen; i++)
		creds_walk(&vec[i].msg_hdr, CREDS_IN);
	ret = real.sendmmsg(fd, vec, vlen, flags);
	saved_errno = errno;
	for (unsigned int i = 0; i < vlen; i++)
		creds_walk(&vec[i].msg_hdr, CREDS_OUT);
	errno = saved_errno;
	return ret;
}
