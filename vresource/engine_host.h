/*
 * The table engine as the host side of vrid uses it (engine_host.c,
 * engine.go): every call on a handle runs under a guard that turns a
 * SIGBUS in the mapping, which a process of the chain truncated, into
 * -EFAULT, and every wait is bounded.
 */
#ifndef VRID_ENGINE_HOST_H
#define VRID_ENGINE_HOST_H

#include "table.h"

struct vrid_host {
	struct vrid_table t;
	uint64_t fault_off;	/* where in the mapping the last -EFAULT faulted */
};

/*
 * Checks the size bytes at mem and attaches h to them: a shared mapping
 * of the file at path, whose description lock_fd h then owns, or a
 * private copy (VRID_TABLE_PRIVATE, lock_fd -1).  hdr gets a copy of the
 * header.  -EINVAL says why in why[len].
 */
int vrid_host_open(struct vrid_host *h, void *mem, uint64_t size, const char *path, int lock_fd,
		   unsigned flags, int64_t wait_ns, struct vrid_header *hdr, char *why, size_t len);
/* Closes the lock description; the caller unmaps or frees the memory. */
void vrid_host_close(struct vrid_host *h);

int vrid_host_lookup(struct vrid_host *h, uint32_t type, int32_t id, int by_sys, int32_t *out);
int vrid_host_bind(struct vrid_host *h, uint32_t type, int32_t sys, int32_t *virt);
int vrid_host_bind_key(struct vrid_host *h, int32_t vkey, uint32_t attempt, int32_t *skey, int *created);
int vrid_host_insert(struct vrid_host *h, uint32_t type, int32_t virt, int32_t sys);
int vrid_host_rebind(struct vrid_host *h, uint32_t type, int32_t virt, int32_t new_sys);
int vrid_host_remove(struct vrid_host *h, uint32_t type, int32_t id, int by_sys);
int vrid_host_list(struct vrid_host *h, uint32_t type, int32_t *out, uint32_t cap, uint32_t *n);
int vrid_host_records(struct vrid_host *h, struct vrid_ipc_record *out, uint32_t cap, uint32_t *n);
int vrid_host_add_records(struct vrid_host *h, const struct vrid_ipc_record *recs, uint32_t n, uint32_t *added);
/* The SEM_UNDO adjustments recorded, at most cap, and how many found no room. */
int vrid_host_semadj(struct vrid_host *h, struct vrid_semadj *out, uint32_t cap, uint32_t *n, uint32_t *lost);
int vrid_host_semadj_prune(struct vrid_host *h);
/* The live count, the fresh range and the generation, as the file has them now. */
int vrid_host_desc(struct vrid_host *h, uint32_t type, struct vrid_table_desc *out);
int vrid_host_generation(struct vrid_host *h, uint32_t *generation);
int vrid_host_bump_generation(struct vrid_host *h, uint32_t *generation);
/* Takes the lock and lets it go: repairs what a dead writer left (a copy: in itself). */
int vrid_host_settle(struct vrid_host *h);

#endif
