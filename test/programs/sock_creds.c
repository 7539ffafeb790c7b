/*
 * Socket credentials: SO_PEERCRED and SCM_CREDENTIALS give the peer's
 * virtual pid, or 0 for a process the chain has never recorded, as a pid
 * namespace shows one outside it; sent credentials name virtual pids.
 */
#include "vt.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

/* A message of one byte with the given credentials, or with none if cred is NULL. */
struct credmsg {
	struct msghdr msg;
	struct iovec iov;
	char byte;
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} control;
};

static void credmsg_init(struct credmsg *m, const struct ucred *cred)
{
	memset(m, 0, sizeof(*m));
	m->byte = 'c';
	m->iov.iov_base = &m->byte;
	m->iov.iov_len = 1;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	m->msg.msg_control = m->control.buf;
	m->msg.msg_controllen = sizeof(m->control.buf);
	if (cred) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(*cred));
		memcpy(CMSG_DATA(c), cred, sizeof(*cred));
	}
}

static pid_t credmsg_pid(struct credmsg *m)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg);
	struct ucred cred;

	if (!c || c->cmsg_type != SCM_CREDENTIALS)
		return -1;
	memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	return cred.pid;
}

static struct ucred cred_of(pid_t pid)
{
	struct ucred cred = { .pid = pid, .uid = getuid(), .gid = getgid() };

	return cred;
}

static pid_t peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	MUST(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred));
	return cred.pid;
}

static void recv_show(const char *name, int fd)
{
	struct credmsg m;
	char key[64];

	credmsg_init(&m, NULL);
	snprintf(key, sizeof(key), "%s.recvmsg", name);
	OUT_INT(key, recvmsg(fd, &m.msg, 0));
	snprintf(key, sizeof(key), "%s.pid", name);
	OUT_INT(key, credmsg_pid(&m));
}

/* The sending side, run by a child connected on fd. */
static void sender(int fd)
{
	struct ucred cred = cred_of(getpid());
	struct credmsg m, mm[2];
	struct mmsghdr vec[2];
	char go;
	int rc;

	/* The kernel adds credentials to a message sent without them only once the reader passes them. */
	CHECK(read(fd, &go, 1) == 1);
	credmsg_init(&m, &cred);
	CHECK(sendmsg(fd, &m.msg, 0) == 1);
	/* the buffer the caller built keeps the virtual pid */
	CHECK(credmsg_pid(&m) == getpid());
	credmsg_init(&m, NULL);
	m.msg.msg_control = NULL;
	m.msg.msg_controllen = 0;
	CHECK(sendmsg(fd, &m.msg, 0) == 1);
	cred = cred_of(getppid());	/* root may name another process */
	credmsg_init(&m, &cred);
	CHECK(sendmsg(fd, &m.msg, 0) == 1);
	cred = cred_of(4242);
	credmsg_init(&m, &cred);
	rc = (int)sendmsg(fd, &m.msg, 0);
	CHECK(rc == -1 && errno == ESRCH);
	CHECK(credmsg_pid(&m) == 4242);
	cred = cred_of(getpid());
	for (int i = 0; i < 2; i++) {
		credmsg_init(&mm[i], &cred);
		vec[i].msg_hdr = mm[i].msg;
	}
	CHECK(sendmmsg(fd, vec, 2, 0) == 2);
	CHECK(syscall(SYS_sendmsg, fd, &m.msg, 0) == -1 && errno == ESRCH);
}

/*
 * A child made by the bare system call, which the layer never sees: it
 * connects, sends a byte, and waits for the parent to let it go.
 */
static long bare_fork(void)
{
#if defined(__x86_64__)
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(SYS_fork) : "rcx", "r11", "memory");
	return ret;
#else
	register long x8 __asm__("x8") = SYS_clone;
	register long x0 __asm__("x0") = SIGCHLD;
	register long x1 __asm__("x1") = 0;

	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1) : "memory");
	return x0;
#endif
}

static void unrecorded_peer(const struct sockaddr_un *addr, int lfd)
{
	int fd, go[2], status;
	long pid;
	char c = 'u';

	MUST(pipe(go) == 0);
	fflush(stdout);
	pid = bare_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ||
		    write(fd, &c, 1) != 1 || read(go[0], &c, 1) != 0)
			_exit(1);
		_exit(0);
	}
	close(go[0]);
	fd = accept(lfd, NULL, NULL);
	MUST(fd >= 0);
	MUST(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)) == 0);
	OUT_INT("unrecorded.peercred", peer_pid(fd));
	recv_show("unrecorded.scm", fd);
	close(go[1]);
	MUST(waitpid(-1, &status, 0) > 0);
	OUT_INT("unrecorded.status", vt_exit_code(status));
	close(fd);
}

int main(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct credmsg mm[2];
	struct mmsghdr vec[2];
	int sv[2], lfd, fd;
	pid_t pid;

	MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	OUT_INT("socketpair.peercred", peer_pid(sv[0]));
	close(sv[0]);
	close(sv[1]);

	/* an abstract address of this run, so that parallel runs do not meet */
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "vrid-sock-creds-%ld", vt_sys_pid());
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	MUST(lfd >= 0 && bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(lfd, 4) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		close(lfd);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		MUST(fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
		sender(fd);
		vt_child_exit(0);
	}
	OUT_INT("child", pid);
	fd = accept(lfd, NULL, NULL);
	MUST(fd >= 0);
	MUST(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)) == 0);
	MUST(write(fd, "g", 1) == 1);
	OUT_INT("child.peercred", peer_pid(fd));
	recv_show("child.own", fd);
	recv_show("child.none", fd);
	recv_show("child.parent", fd);
	for (int i = 0; i < 2; i++) {
		credmsg_init(&mm[i], NULL);
		vec[i].msg_hdr = mm[i].msg;
	}
	OUT_INT("child.recvmmsg", recvmmsg(fd, vec, 2, 0, NULL));
	for (int i = 0; i < 2; i++)
		mm[i].msg = vec[i].msg_hdr;
	OUT_INT("child.recvmmsg.0.pid", credmsg_pid(&mm[0]));
	OUT_INT("child.recvmmsg.1.pid", credmsg_pid(&mm[1]));
	OUT_INT("child.status", vt_exit_code(vt_wait(pid)));
	close(fd);

	unrecorded_peer(&addr, lfd);
	close(lfd);
	return vt_done();
}
