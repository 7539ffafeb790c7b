/*
 * /proc/sysvipc/{shm,sem,msg}: the chain's objects with virtual ids, the
 * chain's own keys and virtual pids.  Segments made past the layer
 * (libc's own syscall) are outside the chain: one is listed under its own
 * id (65535), with this process's virtual pid as creator, and shmctl
 * cannot reach it; one whose id (2) is the virtual id of the chain's
 * second segment is left out until the chain's is removed.  Their ids are
 * set through /proc/sys/kernel/shm_next_id of the test's IPC namespace.
 */
#include "vt.h"

#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

static long (*sys_call)(long, ...);

/*
 * Each data line of a sysvipc file as name.N=key,id[,pid,pid], pid columns
 * per the kernel's format, and the number of lines.
 */
static void out_file(const char *name, const char *path, int pid_col)
{
	char line[512], label[64];
	int n = 0;
	FILE *f = fopen(path, "r");

	MUST(f != NULL);
	MUST(fgets(line, sizeof(line), f) != NULL);	/* header */
	while (fgets(line, sizeof(line), f)) {
		long v[8];

		CHECK(sscanf(line, "%ld %ld %ld %ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3], &v[4],
			     &v[5], &v[6]) == 7);
		snprintf(label, sizeof(label), "%s.%d", name, n++);
		if (pid_col > 0)
			printf("%s=key:%ld id:%ld pids:%ld,%ld\n", label, v[0], v[1], v[pid_col],
			       v[pid_col + 1]);
		else
			printf("%s=key:%ld id:%ld\n", label, v[0], v[1]);
	}
	fclose(f);
	snprintf(label, sizeof(label), "%s.lines", name);
	OUT_INT(label, n);
}

/* A segment made past the layer with system id sid. */
static int outside_shm(int sid)
{
	int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY);
	char text[16];
	int len = snprintf(text, sizeof(text), "%d", sid), got;

	MUST(fd >= 0 && write(fd, text, (size_t)len) == len);
	close(fd);
	got = (int)sys_call(SYS_shmget, IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	MUST(got == sid);
	return got;
}

int main(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	struct { long type; char text[4]; } m = { 1, "hi" };
	int shm_private, shm_key, sem_key, msg_key, outside, hidden;
	struct shmid_ds ds;
	void *addr;

	sys_call = libc ? (long (*)(long, ...))dlsym(libc, "syscall") : NULL;
	MUST(sys_call != NULL);
	outside = outside_shm(65535);
	hidden = outside_shm(2);
	shm_private = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	shm_key = shmget(0x1234, 8192, IPC_CREAT | 0600);
	sem_key = semget(0x2345, 2, IPC_CREAT | 0600);
	msg_key = msgget(0x3456, IPC_CREAT | 0600);
	OUT_INT("shm.private", shm_private);
	OUT_INT("shm.key", shm_key);
	OUT_INT("sem.key", sem_key);
	OUT_INT("msg.key", msg_key);
	addr = shmat(shm_key, NULL, 0);
	MUST(addr != (void *)-1);
	MUST(msgsnd(msg_key, &m, sizeof(m.text), 0) == 0);

	out_file("proc.shm", "/proc/sysvipc/shm", 4);
	out_file("proc.sem", "/proc/sysvipc/sem", 0);
	out_file("proc.msg", "/proc/sysvipc/msg", 5);

	CHECK(shmctl(outside, IPC_STAT, &ds) == -1 && errno == EINVAL);

	CHECK(shmdt(addr) == 0);
	CHECK(shmctl(shm_private, IPC_RMID, NULL) == 0);
	CHECK(shmctl(shm_key, IPC_RMID, NULL) == 0);
	CHECK(semctl(sem_key, 0, IPC_RMID) == 0);
	CHECK(msgctl(msg_key, IPC_RMID, NULL) == 0);
	out_file("removed.shm", "/proc/sysvipc/shm", 4);
	CHECK(sys_call(SYS_shmctl, outside, IPC_RMID, NULL) == 0);
	CHECK(sys_call(SYS_shmctl, hidden, IPC_RMID, NULL) == 0);
	return vt_done();
}
