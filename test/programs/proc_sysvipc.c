/*
 * /proc/sysvipc/{shm,sem,msg}: the chain's objects only, with virtual ids,
 * the chain's own keys and virtual pids.  An object made past the layer
 * (libc's own syscall) is outside the chain and not listed.
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

int main(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	struct { long type; char text[4]; } m = { 1, "hi" };
	int shm_private, shm_key, sem_key, msg_key, outside;
	void *addr;

	sys_call = libc ? (long (*)(long, ...))dlsym(libc, "syscall") : NULL;
	MUST(sys_call != NULL);
	outside = (int)sys_call(SYS_shmget, IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	MUST(outside >= 0);
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

	CHECK(shmdt(addr) == 0);
	CHECK(shmctl(shm_private, IPC_RMID, NULL) == 0);
	CHECK(shmctl(shm_key, IPC_RMID, NULL) == 0);
	CHECK(semctl(sem_key, 0, IPC_RMID) == 0);
	CHECK(msgctl(msg_key, IPC_RMID, NULL) == 0);
	CHECK(sys_call(SYS_shmctl, outside, IPC_RMID, NULL) == 0);
	out_file("removed.shm", "/proc/sysvipc/shm", 4);
	return vt_done();
}
