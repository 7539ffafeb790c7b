/*
 * Another tenant's System V objects, for the teardown tests: not a
 * snippet under vrid, but a program the tests run as another uid.
 *
 *   ipc_victim make              makes a semaphore set of one (value 42),
 *                                a 4096-byte segment holding "victim-shm"
 *                                and a queue holding one message
 *                                "victim-msg", all IPC_PRIVATE, mode 0600,
 *                                and prints "sem=ID shm=ID msg=ID"
 *   ipc_victim check SEM SHM MSG prints what they hold, taking the message
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

struct message {
	long type;
	char text[32];
};

static int make(void)
{
	struct message m = { .type = 7 };
	int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	char *mem;

	if (sem < 0 || shm < 0 || msg < 0 || semctl(sem, 0, SETVAL, 42) < 0)
		return perror("ipc_victim make"), 1;
	mem = shmat(shm, NULL, 0);
	if (mem == (void *)-1)
		return perror("ipc_victim shmat"), 1;
	strcpy(mem, "victim-shm");
	shmdt(mem);
	strcpy(m.text, "victim-msg");
	if (msgsnd(msg, &m, strlen(m.text) + 1, IPC_NOWAIT) < 0)
		return perror("ipc_victim msgsnd"), 1;
	printf("sem=%d shm=%d msg=%d\n", sem, shm, msg);
	return 0;
}

static int check(int sem, int shm, int msg)
{
	struct message m = { 0 };
	char *mem;

	printf("sem.val=%d\n", semctl(sem, 0, GETVAL));
	mem = shmat(shm, NULL, SHM_RDONLY);
	printf("shm=%s\n", mem == (void *)-1 ? "gone" : mem);
	if (msgrcv(msg, &m, sizeof(m.text), 0, IPC_NOWAIT) < 0)
		strcpy(m.text, "gone");
	printf("msg.type=%ld msg=%s\n", m.type, m.text);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "make"))
		return make();
	if (argc == 5 && !strcmp(argv[1], "check"))
		return check(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: ipc_victim make | ipc_victim check SEM SHM MSG\n");
	return 2;
}
