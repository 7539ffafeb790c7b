/*
 * System V message queues: msgget, msgsnd, msgrcv and msgctl with virtual
 * ids from 1, the program's own key and virtual pids in IPC_STAT, MSG_STAT
 * and IPC_INFO over the chain's own queues.  One queue is left behind on
 * purpose: the harness must remove it.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/msg.h>

#define KEY 0x3456

struct message {
	long type;
	char text[16];
};

static void stat_walk(const char *name)
{
	struct msqid_ds ds;
	char label[64];
	int index, id;

	for (index = 0;; index++) {
		id = msgctl(index, MSG_STAT, &ds);
		snprintf(label, sizeof(label), "%s.%d", name, index);
		if (id < 0) {
			OUT_ERR(label, id);
			break;
		}
		OUT_INT(label, id);
		snprintf(label, sizeof(label), "%s.%d.key", name, index);
		OUT_INT(label, ds.msg_perm.__key);
	}
}

static void out_stat(const char *name, int id)
{
	struct msqid_ds ds;
	char label[64];
	int rc = msgctl(id, IPC_STAT, &ds);

	snprintf(label, sizeof(label), "%s.ipc_stat", name);
	if (rc < 0) {
		OUT_ERR(label, rc);
		return;
	}
	snprintf(label, sizeof(label), "%s.key", name);
	OUT_INT(label, ds.msg_perm.__key);
	snprintf(label, sizeof(label), "%s.qnum", name);
	OUT_INT(label, ds.msg_qnum);
	snprintf(label, sizeof(label), "%s.lspid", name);
	OUT_INT(label, ds.msg_lspid);
	snprintf(label, sizeof(label), "%s.lrpid", name);
	OUT_INT(label, ds.msg_lrpid);
}

int main(void)
{
	struct message out = { 1, "ping" }, in;
	struct msginfo info;
	struct msqid_ds ds;
	int priv, keyed, rc, ready[2], done[2];
	ssize_t n;
	pid_t pid;
	char c;

	priv = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	OUT_INT("msgget.private", priv);
	keyed = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("msgget.key", keyed);
	OUT_INT("msgget.key.open", msgget(KEY, 0));
	rc = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	OUT_ERR("msgget.key.excl", rc);
	rc = msgget(0x5678, 0);
	OUT_ERR("msgget.missing", rc);

	OUT_INT("msgsnd", msgsnd(keyed, &out, sizeof(out.text), 0));
	out_stat("sent", keyed);

	/* a forked child answers on the queue it opens by key */
	MUST(pipe(ready) == 0 && pipe(done) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		struct message reply = { 2, "pong" }, got;
		int id = msgget(KEY, 0);

		OUT_INT("child.msgget.key", id);
		n = msgrcv(id, &got, sizeof(got.text), 1, 0);
		OUT_INT("child.msgrcv", n);
		OUT_STR("child.msgrcv.text", got.text);
		OUT_INT("child.msgsnd", msgsnd(id, &reply, sizeof(reply.text), 0));
		fflush(stdout);
		MUST(write(ready[1], "r", 1) == 1);
		MUST(read(done[0], &c, 1) == 1);
		vt_child_exit(0);
	}
	MUST(read(ready[0], &c, 1) == 1);
	OUT_INT("child", pid);
	out_stat("child_replied", keyed);
	MUST(write(done[1], "d", 1) == 1);
	OUT_INT("child.status", vt_exit_code(vt_wait(pid)));
	n = msgrcv(keyed, &in, sizeof(in.text), 2, 0);
	OUT_INT("msgrcv", n);
	OUT_STR("msgrcv.text", in.text);
	out_stat("received", keyed);
	rc = (int)msgrcv(keyed, &in, sizeof(in.text), 0, IPC_NOWAIT);
	OUT_ERR("msgrcv.empty", rc);

	/* unknown ids */
	rc = msgsnd(99, &out, sizeof(out.text), 0);
	OUT_ERR("msgsnd.unknown", rc);
	rc = (int)msgrcv(99, &in, sizeof(in.text), 0, IPC_NOWAIT);
	OUT_ERR("msgrcv.unknown", rc);
	rc = msgctl(99, IPC_STAT, &ds);
	OUT_ERR("msgctl.unknown", rc);

	/* the chain's own queues, by index */
	stat_walk("msg_stat");
	OUT_INT("ipc_info", msgctl(0, IPC_INFO, (struct msqid_ds *)&info));
	OUT_INT("msg_info", msgctl(0, MSG_INFO, (struct msqid_ds *)&info));
	OUT_INT("msg_stat_any.1", msgctl(1, MSG_STAT_ANY, &ds));

	OUT_INT("rmid.private", msgctl(priv, IPC_RMID, NULL));
	rc = msgsnd(priv, &out, sizeof(out.text), 0);
	OUT_ERR("msgsnd.removed", rc);
	stat_walk("msg_stat.after_rmid");
	OUT_INT("ipc_info.after_rmid", msgctl(0, IPC_INFO, (struct msqid_ds *)&info));
	/* the keyed queue stays behind, with a message in it, for the harness */
	OUT_INT("msgsnd.left", msgsnd(keyed, &out, sizeof(out.text), 0));
	return vt_done();
}
