/*
 * Waits the quiesce signal must not cut short.  The kernel never restarts
 * pause, sigsuspend and the sleeps after a handler, whatever SA_RESTART
 * says (signal(7)), so each returns EINTR when VRID_SIGNAL alone came:
 * these wrappers wait again, the sleeps for the time left.  The System V
 * calls do the same in sem.c and msg.c; the wait family, read and write
 * are restarted by the kernel (SA_RESTART).
 */
#include "vrid.h"

void vrid_deadline_start(struct vrid_deadline *d, const struct timespec *timeout)
{
	d->timeout = timeout;
	if (!timeout)
		return;
	clock_gettime(CLOCK_MONOTONIC, &d->end);
	d->end.tv_sec += timeout->tv_sec;
	d->end.tv_nsec += timeout->tv_nsec;
	if (d->end.tv_nsec >= 1000000000L) {
		d->end.tv_sec++;
		d->end.tv_nsec -= 1000000000L;
	}
}

const struct timespec *vrid_deadline_left(const struct vrid_deadline *d, struct timespec *left)
{
	struct timespec now;

	if (!d->timeout)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = d->end.tv_sec - now.tv_sec;
	left->tv_nsec = d->end.tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000L;
	}
	if (left->tv_sec < 0)
		left->tv_sec = left->tv_nsec = 0;
	return left;
}

VRID_EXPORT int pause(void)
{
	unsigned seen;
	int ret;

	VRID_PASS(real.pause());
	do {
		seen = vrid_quiesce_seen();
		ret = real.pause();
	} while (vrid_quiesce_cut(seen));
	return ret;
}

VRID_EXPORT int sigsuspend(const sigset_t *mask)
{
	sigset_t own;
	unsigned seen;
	int ret;

	VRID_PASS(real.sigsuspend(mask));
	mask = vrid_sigset_in(mask, &own);
	do {
		seen = vrid_quiesce_seen();
		ret = real.sigsuspend(mask);
	} while (vrid_quiesce_cut(seen));
	return ret;
}

/* nanosleep that goes on with the time left; rem gets it when a signal of the application ends it. */
static int nap(const struct timespec *req, struct timespec *rem)
{
	struct timespec left;
	unsigned seen;
	int ret;

	if (!rem)
		rem = &left;
	for (;;) {
		seen = vrid_quiesce_seen();
		ret = real.nanosleep(req, rem);
		if (ret == 0 || !vrid_quiesce_cut(seen))
			return ret;
		req = rem;
	}
}

VRID_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
	VRID_PASS(real.nanosleep(req, rem));
	return nap(req, rem);
}

VRID_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
				struct timespec *rem)
{
	struct timespec left;
	unsigned seen;
	int ret;

	VRID_PASS(real.clock_nanosleep(clock, flags, req, rem));
	if (!rem)
		rem = &left;
	for (;;) {
		seen = vrid_quiesce_seen();
		/* Returns the error; an absolute end stays where it was. */
		ret = real.clock_nanosleep(clock, flags, req, rem);
		if (ret != EINTR || vrid_quiesce_seen() == seen)
			return ret;
		if (!(flags & TIMER_ABSTIME))
			req = rem;
	}
}

/* As glibc: the whole seconds not slept when a signal of the application ends it. */
VRID_EXPORT unsigned int sleep(unsigned int seconds)
{
	struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };
	int saved_errno = errno;

	VRID_PASS(real.sleep(seconds));
	if (nap(&ts, &ts) < 0)
		return (unsigned int)ts.tv_sec;
	errno = saved_errno;
	return 0;
}

VRID_EXPORT int usleep(useconds_t usec)
{
	struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = (long)(usec % 1000000) * 1000 };

	VRID_PASS(real.usleep(usec));
	return nap(&ts, NULL);
}
