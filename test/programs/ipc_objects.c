/*
 * Makes one shared memory segment (key 0x1234, 4096 bytes, attached), one
 * semaphore set (key 0x2345, 2 semaphores, the first raised to 1) and one
 * message queue (key 0x3456, one 2-byte message), prints "ready" and
 * waits for a signal, so that ipcs and ipcrm find the objects with this
 * process's pid in them.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

int main(void)
{
	struct { long type; char text[2]; } m = { 1, "x" };
	struct sembuf up = { .sem_num = 0, .sem_op = 1 };
	int shm, sem, msg;

	MUST((shm = shmget(0x1234, 4096, IPC_CREAT | 0600)) == 1);
	MUST((sem = semget(0x2345, 2, IPC_CREAT | 0640)) == 1);
	MUST((msg = msgget(0x3456, IPC_CREAT | 0660)) == 1);
	MUST(shmat(shm, NULL, 0) != (void *)-1);
	MUST(semop(sem, &up, 1) == 0);
	MUST(msgsnd(msg, &m, sizeof(m.text), 0) == 0);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
