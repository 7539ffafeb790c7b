/* tree: a process tree whose every pid-holding kernel object must survive a
 * dump and a restore onto other pids, in the shape of CRIU's zdtm tests.
 *
 *   P (root, session and group leader)
 *   +- thread T: the target of a SIGEV_THREAD_ID posix timer
 *   +- child A: socketpair with P, a queued SIGUSR1 from P (sigqueue)
 *   +- child B: pipe to P, a thread-directed SIGUSR1 from P (tgkill)
 *   P also holds a pidfd of A, a POSIX lock on LOCKFILE, F_SETOWN on its
 *   socket end, a listening TCP socket, the log pipe VRID_LOG_FD whose
 *   reader is outside the tree, a unix stream socket EXT_SK_FD whose peer
 *   is outside the tree too, and a pty; when P leads its session, the
 *   pty is its controlling terminal.
 *
 * Every process prints "<role> ready key=value..." once its state is built
 * and then waits for SIGUSR2 (the dump and the restore happen meanwhile).
 * On SIGUSR2 it checks what it remembered and prints "<role> after ...".
 * Usage: tree LOCKFILE (stdout: a file opened with O_APPEND). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	if (write(1, buf, n) != n)
		_exit(3);
}

static void die(const char *what)
{
	say("FAIL %s: %s", what, strerror(errno));
	_exit(2);
}

static void readn(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("read");
		got += r;
	}
	buf[n] = '\0';
}

static void writes(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		die("write");
}

static void wait_for(int sig, siginfo_t *si)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	while (sigwaitinfo(&set, si) < 0)
		if (errno != EINTR)
			die("sigwaitinfo");
}

static void ids(const char *role, const char *phase)
{
	say("%s %s pid=%d ppid=%d pgid=%d sid=%d tid=%d", role, phase, getpid(), getppid(),
	    getpgid(0), getsid(0), (int)gettid());
}

static const char inflight_a[] = "inflight-to-A";
static const char inflight_b[] = "inflight-from-B";

static void child_a(int sk, const char *lockfile)
{
	siginfo_t si;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[64];
	int fd;

	ids("A", "ready");
	wait_for(SIGUSR2, &si);
	ids("A", "after");
	wait_for(SIGUSR1, &si);
	say("A queued si_pid=%d si_code=%d si_value=%d", si.si_pid, si.si_code, si.si_value.sival_int);
	readn(sk, buf, sizeof(inflight_a) - 1);
	say("A inflight data=%s", buf);
	readn(sk, buf, 4);
	say("A got data=%s", buf);
	writes(sk, "pong");
	fd = open(lockfile, O_RDWR);
	if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0)
		die("F_GETLK");
	say("A lock l_pid=%d", fl.l_pid);
	_exit(0);
}

static void child_b(int out)
{
	siginfo_t si;

	writes(out, inflight_b);
	ids("B", "ready");
	wait_for(SIGUSR2, &si);
	ids("B", "after");
	wait_for(SIGUSR1, &si);
	say("B tkill si_pid=%d si_code=%d", si.si_pid, si.si_code);
	writes(out, "after-from-B");
	_exit(0);
}

static pthread_barrier_t barrier;
static pid_t tid_t_before;

static void *thread_t(void *arg)
{
	siginfo_t si;

	(void)arg;
	tid_t_before = gettid();
	pthread_barrier_wait(&barrier);
	wait_for(SIGRTMIN, &si);
	say("T timer tid=%d si_code=%d si_signo_is_rtmin=%d", (int)gettid(), si.si_code,
	    si.si_signo == SIGRTMIN);
	return NULL;
}

static int fdinfo_pid(int fd)
{
	char path[64], line[256];
	FILE *f;
	int pid = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		die("fdinfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid;
}

int main(int argc, char **argv)
{
	int sp[2], pb[2], lfd, lsk, pidfd, i, ptm, pts, logfd = -1, extsk = -1;
	pid_t a, b;
	pthread_t t;
	timer_t timer;
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID };
	struct itimerspec its = { .it_value = { .tv_sec = 3600 } };
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	union sigval sv = { .sival_int = 42 };
	sigset_t set;
	siginfo_t si;
	char buf[64];
	const char *env = getenv("VRID_LOG_FD"), *skenv = getenv("EXT_SK_FD");

	if (argc != 2) {
		say("usage: tree LOCKFILE");
		return 2;
	}
	if (env)
		logfd = atoi(env);
	if (skenv)
		extsk = atoi(skenv);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		die("sigprocmask");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || pipe(pb))
		die("socketpair");
	a = fork();
	if (a < 0)
		die("fork");
	if (a == 0) {
		close(sp[0]);
		child_a(sp[1], argv[1]);
	}
	b = fork();
	if (b < 0)
		die("fork");
	if (b == 0) {
		close(pb[0]);
		child_b(pb[1]);
	}
	close(sp[1]);
	close(pb[1]);

	pthread_barrier_init(&barrier, NULL, 2);
	if (pthread_create(&t, NULL, thread_t, NULL))
		die("pthread_create");
	pthread_barrier_wait(&barrier);
	sev.sigev_signo = SIGRTMIN;
	sev._sigev_un._tid = tid_t_before;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) || timer_settime(timer, 0, &its, NULL))
		die("timer");

	if (sigqueue(a, SIGUSR1, sv) || syscall(SYS_tgkill, b, b, SIGUSR1))
		die("signal");
	writes(sp[0], inflight_a);
	pidfd = syscall(SYS_pidfd_open, a, 0);
	if (pidfd < 0)
		die("pidfd_open");
	lfd = open(argv[1], O_RDWR | O_CREAT, 0600);
	if (lfd < 0 || fcntl(lfd, F_SETLK, &fl))
		die("lock");
	if (fcntl(sp[0], F_SETOWN, getpid()))
		die("F_SETOWN");
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&sin, sizeof(sin)) || listen(lsk, 4) ||
	    getsockname(lsk, (struct sockaddr *)&sin, &sl))
		die("listen");
	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	if (ptm < 0 || grantpt(ptm) || unlockpt(ptm))
		die("posix_openpt");
	pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
	if (pts < 0 || (getsid(0) == getpid() && ioctl(pts, TIOCSCTTY, 0)))
		die("pty");
	if (logfd >= 0)
		writes(logfd, "log-before\n");
	if (extsk >= 0)
		writes(extsk, "sk-before\n");
	say("T ready tid=%d", (int)tid_t_before);
	ids("P", "ready");
	say("P children a=%d b=%d port=%d", a, b, ntohs(sin.sin_port));

	wait_for(SIGUSR2, &si);
	ids("P", "after");
	say("P files owner=%d pidfd_pid=%d pidfd_signal=%d", fcntl(sp[0], F_GETOWN), fdinfo_pid(pidfd),
	    (int)syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0));
	say("P tty sid=%d pgrp=%d", tcgetsid(pts), tcgetpgrp(pts));
	if (logfd >= 0)
		writes(logfd, "log-after\n");
	if (extsk >= 0)
		writes(extsk, "sk-after\n");
	writes(sp[0], "ping");
	readn(sp[0], buf, 4);
	say("P got data=%s", buf);
	readn(pb[0], buf, sizeof(inflight_b) - 1);
	say("P inflight data=%s", buf);
	readn(pb[0], buf, 12);
	say("P fromB data=%s", buf);
	{
		int c = socket(AF_INET, SOCK_STREAM, 0), s;
		if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)))
			die("connect");
		s = accept(lsk, NULL, NULL);
		if (s < 0)
			die("accept");
		writes(c, "tcp!");
		readn(s, buf, 4);
		say("P tcp data=%s", buf);
		close(c);
		close(s);
	}
	/* glibc keeps the tid T had at pthread_create in struct pthread. */
	say("P pthread_kill err=%s", strerrorname_np(pthread_kill(t, 0)) ?: "0");
	its.it_value.tv_sec = 0;
	its.it_value.tv_nsec = 1;
	if (timer_settime(timer, 0, &its, NULL))
		die("timer_settime");
	pthread_join(t, NULL);
	/* The pids P remembers from fork are the ones before the dump. */
	{
		pid_t w[2];
		int st[2];
		for (int i = 0; i < 2; i++)
			if ((w[i] = wait(&st[i])) < 0)
				die("wait");
		i = w[0] < w[1] ? 0 : 1;
		say("P waited pids=%d,%d status=%d,%d", w[i], w[1 - i], st[i], st[1 - i]);
	}
	say("P done");
	return 0;
}
