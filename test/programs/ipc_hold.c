/*
 * A chain's own System V objects, held until stdin ends: a semaphore set
 * and a queue with IPC_PRIVATE, and a segment with a key.  The teardown
 * tests change the chain's table meanwhile, as a forging or unlucky
 * chain would, and then let it end.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

int main(void)
{
	char line[64];

	CHECK(semget(IPC_PRIVATE, 1, IPC_CREAT | 0600) >= 0);
	CHECK(shmget(0x3456, 4096, IPC_CREAT | 0600) >= 0);
	CHECK(msgget(IPC_PRIVATE, IPC_CREAT | 0600) >= 0);
	OUT_STR("ready", "yes");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return vt_done();
}
