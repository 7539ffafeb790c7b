/* sysvtree: a root and 8 children sharing System V objects: a segment of
 * MIB mebibytes, touched, attached in all nine, a semaphore set and a
 * queue with a message.  Prints "ready" once all are attached, then
 * sleeps until killed; the benchmark snapshots and restores it.
 * Usage: sysvtree MIB */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t n = (argc > 1 ? strtoul(argv[1], NULL, 10) : 100) << 20;
	int shm = shmget(IPC_PRIVATE, n, IPC_CREAT | 0600);
	int sem = semget(IPC_PRIVATE, 4, IPC_CREAT | 0600);
	int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	struct { long type; char text[64]; } m = { 1, "hello" };
	unsigned char *p;

	if (shm < 0 || sem < 0 || msg < 0 || (p = shmat(shm, NULL, 0)) == (void *)-1)
		return 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i >> 12) ^ (unsigned char)i;
	msgsnd(msg, &m, sizeof(m.text), 0);
	for (int i = 0; i < 8; i++) {
		if (fork() == 0) {
			semop(sem, &(struct sembuf){ .sem_num = 0, .sem_op = 1 }, 1);
			for (;;)
				pause();
		}
	}
	while (semctl(sem, 0, GETVAL) < 8)
		usleep(1000);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
