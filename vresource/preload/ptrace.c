/*
 * ptrace: a tracer names its tracee by pid, and learns the pids of the
 * tracee's new children, and of the thread that called exec, through
 * PTRACE_GETEVENTMSG.  Those come out virtual.  A new child is recorded
 * here if the chain has not seen it yet: the tracee is stopped inside
 * fork(), before its own wrapper could record the child.
 */
#include <stdarg.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "vrid.h"

static int tracing;

int vrid_tracing(void)
{
	return __atomic_load_n(&tracing, __ATOMIC_RELAXED);
}

/*
 * The tracees this process has named, sys << 32 | virt, one slot per
 * system pid modulo the size: a tracee's exit reaches its tracer first
 * and then its parent, which may reap it and drop its entry before the
 * tracer's wait wrapper has looked it up.
 */
#define TRACEE_SLOTS 256
static uint64_t tracees[TRACEE_SLOTS];

static void tracee_seen(pid_t spid, pid_t vpid)
{
	if (spid > 0 && vpid > 0)
		__atomic_store_n(&tracees[(uint32_t)spid % TRACEE_SLOTS],
				 (uint64_t)(uint32_t)spid << 32 | (uint32_t)vpid, __ATOMIC_RELAXED);
}

static pid_t tracee_virt(pid_t spid)
{
	uint64_t e = __atomic_load_n(&tracees[(uint32_t)spid % TRACEE_SLOTS], __ATOMIC_RELAXED);

	return (uint32_t)(e >> 32) == (uint32_t)spid ? (pid_t)(uint32_t)e : 0;
}

/*
 * A tracer's wait never drops an entry: it cannot tell its own children
 * from tracees, whose parents reap them after it, by those entries.
 */
pid_t vrid_tracer_waited_out(pid_t spid)
{
	pid_t vpid = vrid_pid_out(spid);

	if (vpid == 0)
		vpid = tracee_virt(spid);
	if (vpid == 0)
		vpid = vrid_pid_bind(spid);
	tracee_seen(spid, vpid);
	return vpid;
}

static long ptrace_call(int raw, long request, pid_t spid, void *addr, void *data)
{
	if (raw)
		return real.syscall(SYS_ptrace, request, (long)spid, (long)addr, (long)data);
	return real.ptrace((int)request, spid, addr, data);
}

/* The event that stopped the tracee, from its stop's si_code; 0 if none. */
static int stop_event(pid_t stracee)
{
	siginfo_t si;

	if (vrid_sys(SYS_ptrace, PTRACE_GETSIGINFO, stracee, 0, (long)&si, 0, 0) < 0 ||
	    si.si_signo != SIGTRAP || (si.si_code & 0xff) != SIGTRAP)
		return 0;
	return si.si_code >> 8;
}

/*
 * The message of a fork, vfork or clone event is the new child, and of an
 * exec event the thread id the caller had.  EXIT's is an exit status,
 * SECCOMP's the filter's data: those stay as they are.
 */
static void eventmsg_out(pid_t stracee, unsigned long *msg)
{
	pid_t vpid;

	if (!msg || *msg == 0 || *msg > INT32_MAX)
		return;
	switch (stop_event(stracee)) {
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
	case PTRACE_EVENT_CLONE:
	case PTRACE_EVENT_VFORK_DONE:
		vpid = vrid_tracer_waited_out((pid_t)*msg);
		*msg = vpid > 0 ? (unsigned long)vpid : 0;
		break;
	case PTRACE_EVENT_EXEC:
		*msg = (unsigned long)vrid_pid_out((pid_t)*msg);
		break;
	default:
		break;
	}
}

long vrid_ptrace(int raw, long request, pid_t vpid, void *addr, void *data)
{
	siginfo_t sinfo;
	pid_t spid = vpid;
	long ret;
	int err;

	if (request != PTRACE_TRACEME && (err = vrid_pid_in(vpid, &spid)) < 0)
		return vrid_fail(err);
	if (request == PTRACE_SETSIGINFO && data) {
		sinfo = *(siginfo_t *)data;
		vrid_siginfo_in(&sinfo);
		data = &sinfo;
	}
	ret = ptrace_call(raw, request, spid, addr, data);
	if (ret < 0)
		return ret;
	if (request != PTRACE_TRACEME) {
		__atomic_store_n(&tracing, 1, __ATOMIC_RELAXED);
		tracee_seen(spid, vpid);
	}
	switch (request) {
	case PTRACE_GETEVENTMSG:
		eventmsg_out(spid, data);
		break;
	case PTRACE_GETSIGINFO:
		vrid_siginfo_out(data);
		break;
	case PTRACE_PEEKSIGINFO:
		for (long i = 0; i < ret; i++)
			vrid_siginfo_out((siginfo_t *)data + i);
		break;
	default:
		break;
	}
	return ret;
}

VRID_EXPORT long ptrace(enum __ptrace_request request, ...)
{
	void *addr, *data;
	va_list ap;
	pid_t vpid;

	va_start(ap, request);
	vpid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	VRID_GUARD(-1, real.ptrace(request, vpid, addr, data));
	return vrid_ptrace(0, request, vpid, addr, data);
}
