/*
 * The translation-table file: the one binary contract between the Go side
 * (vresource/layout.go, which creates it) and the table engine (table.h),
 * which the preload layer and package vresource both build.  Every field has a fixed
 * width and a fixed offset; test/layout_test.c and vresource/layout_test.go
 * check the same numbers, so a change here must change both.
 *
 * One file per application chain (AID).  It holds a header and, per
 * resource type, two open-addressing indexes of 64-bit slots: one keyed by
 * the virtual id, one keyed by the system id.  A slot is read with a single
 * atomic load, so lookups never lock and never see half an entry.
 *
 *   slot == 0                 empty: ends a probe
 *   slot == VRID_SLOT_TOMB    removed: a probe goes on past it
 *   otherwise                 high 32 bits: enc(key), low 32 bits: value
 *
 * enc(x) = (uint32_t)x ^ 0x80000000 maps every id >= 0 and every IPC key
 * except INT32_MIN to a non-zero word; INT32_MIN is refused as a key.
 *
 * Writers exclude each other with an open-file-description write lock
 * (F_OFD_SETLKW) on the file's first byte: the kernel drops it when its
 * holder dies, and it works across pid namespaces.  Each process locks
 * through a description of its own; its threads take turns on it.  When removed slots and live entries reach
 * 3/4 of an index, the writer rebuilds it in place; `rebuilds` is odd
 * meanwhile, and a reader that misses while it is odd or changed retries.
 * A writer marks the table it changes in `dirty`; one that finds a mark
 * when it takes the lock knows a writer died mid-write, and repairs it.
 *
 * Version 3 adds the section directory and the IPC records; the SEM_UNDO
 * adjustments came later as a section of their own, which older readers
 * skip.  A record is
 * whole or free whenever a writer dies: it is cleared before it is
 * written, and its type goes in last; it needs no repair.
 */
#ifndef VRID_ABI_H
#define VRID_ABI_H

#include <stdint.h>

#define VRID_MAGIC		0x44495256u	/* "VRID" little-endian */
#define VRID_VERSION		3
#define VRID_HEADER_SIZE	4096
#define VRID_NAME_MAX		64

#define VRID_SLOT_TOMB		1ull
#define VRID_KEY_BIAS		0x80000000u
#define VRID_HASH_MUL		0x9e3779b1u

/* Resource types, in table order.  Never renumber: they are on disk. */
enum vrid_type {
	VRID_PID = 0,		/* pids, tids, process groups and sessions */
	VRID_SEM = 1,		/* System V semaphore set ids */
	VRID_SHM = 2,		/* System V shared memory ids */
	VRID_MSG = 3,		/* System V message queue ids */
	VRID_IPCKEY = 4,	/* IPC keys: virtual key -> private system key */
	VRID_NTYPES = 5,
};

/* Header flags. */
#define VRID_FLAG_SEQUENTIAL	0x1u	/* never reuse the system id as virtual */

struct vrid_table_desc {
	uint32_t type;		/* enum vrid_type */
	uint32_t slots;		/* power of two, per index */
	uint32_t shift;		/* 32 - log2(slots): hash = enc * MUL >> shift */
	uint32_t live;		/* entries; written under the writer lock */
	uint64_t by_virt_off;	/* from file start; by_sys follows it */
	uint32_t fresh_next;	/* next virtual id to try when one is needed */
	uint32_t fresh_base;	/* fresh ids run fresh_base..fresh_max, then wrap */
	uint32_t fresh_max;
	uint32_t tombs_by_virt;	/* removed slots in by_virt */
	uint32_t tombs_by_sys;	/* removed slots in by_sys */
	uint32_t rebuilds;	/* odd while a rebuild runs */
};

/*
 * Areas of the file other than the indexes, each named by a kind in the
 * header's section directory.  A reader skips a kind it does not know, so
 * a new kind needs no new version; it still checks that every used entry
 * lies inside the file, past the header.
 */
#define VRID_SECTIONS_MAX	8

enum vrid_section_kind {
	VRID_SECTION_UNUSED = 0,
	VRID_SECTION_IPC_RECORDS = 1,	/* struct vrid_ipc_records */
	VRID_SECTION_SEMADJ = 2,	/* struct vrid_semadj_area */
};

struct vrid_section {
	uint32_t kind;		/* enum vrid_section_kind */
	uint32_t entry_size;	/* bytes per entry of an array kind, else 0 */
	uint64_t offset;	/* from file start: 64-aligned, past the header */
	uint64_t size;		/* bytes */
};

/*
 * What identified a System V object when the chain created it (when its
 * system id first entered the table), for teardown to check that an id
 * still names that object.  The chain writes it, so it is a claim like
 * any entry: it guards against ids reused without malice, not against
 * forgery (see chain/ipc.go).  Ids are as the creator's namespaces showed
 * them.  Written under the writer lock; type is written last, and 0 marks
 * a free record.
 */
struct vrid_ipc_record {
	uint32_t type;		/* VRID_SEM, VRID_SHM or VRID_MSG; 0: free */
	int32_t sys;		/* the system id */
	int32_t key;		/* the system key it was made with; IPC_PRIVATE is 0 */
	uint32_t cuid;		/* creator's uid and gid */
	uint32_t cgid;
	int32_t cpid;		/* shm: the creator's pid; else 0 */
	int64_t ctime;		/* shm, msg: *_ctime, kept up to date at IPC_SET; sem: 0 */
	uint64_t size;		/* sem: nsems; shm: bytes; msg: 0 */
	uint32_t reserved[2];
};

/* The VRID_SECTION_IPC_RECORDS area: a head, then the records. */
struct vrid_ipc_records {
	uint32_t capacity;	/* records that fit after the head */
	uint32_t used;		/* records[0..used) may be live; the rest are free */
	uint32_t reserved[14];
	struct vrid_ipc_record records[];
};

/*
 * One process's SEM_UNDO adjustment of one semaphore (its semadj, which
 * the kernel adds to the semaphore when the process exits): minus the sum
 * of the operations it made with SEM_UNDO since the last SETVAL or SETALL
 * of that semaphore.  The kernel shows it to nobody, so the layer records
 * it as the semops succeed (semadj.c, sem.c).  Ids are virtual, so an
 * entry stays true when a restore rebinds the tables.  generation is the
 * header's generation when the process's kernel undo list last held adj:
 * a restore bumps the header's, and the restored process applies adj
 * again (an operation pair that leaves the value as it is) and moves
 * generation up.  Written under the writer lock; pid_virt is written
 * last, and 0 marks a free entry.
 */
struct vrid_semadj {
	int32_t pid_virt;	/* the process (threads share their process's list); 0: free */
	int32_t sem_virt;	/* the semaphore set */
	uint16_t num;		/* the semaphore in the set */
	int16_t adj;		/* never 0 in a live entry */
	uint32_t generation;
};

/* The VRID_SECTION_SEMADJ area: a head, then the entries. */
struct vrid_semadj_area {
	uint32_t capacity;	/* entries that fit after the head */
	uint32_t used;		/* entries[0..used) may be live; the rest are free */
	uint32_t lost;		/* adjustments not recorded for want of room: a snapshot refuses */
	uint32_t reserved[13];
	struct vrid_semadj entries[];
};

struct vrid_header {
	uint32_t magic;
	uint16_t version;
	uint16_t header_size;
	uint32_t generation;	/* bumped each time a restore rebinds ids */
	uint32_t flags;
	uint64_t aid;
	uint64_t file_size;
	uint32_t dirty;		/* type + 1 of a write in progress, or 0 */
	uint32_t shm_doomed;	/* shm ids removed while still attached */
	uint32_t reserved[6];
	char name[VRID_NAME_MAX];	/* NUL-terminated chain name */
	struct vrid_table_desc tables[VRID_NTYPES];
	uint32_t nsections;	/* used entries of sections, at most VRID_SECTIONS_MAX */
	uint32_t reserved2;
	struct vrid_section sections[VRID_SECTIONS_MAX];
};

/*
 * The quiesce protocol (quiesce.c, package quiesce): the layer reserves
 * the real-time signal SIGRTMAX - VRID_SIGNAL_OFFSET (63 on Linux) and
 * hides it from the application.  The host sends it with
 * rt_sigqueueinfo, si_code SI_QUEUE, and one of these in si_value.
 * DETACH: park every thread, detach each System V shm attachment, keep
 * its range reserved, and wait.  ATTACH: re-attach each at its address,
 * through the table (so a rebound id attaches the new segment), and
 * resume.  The host reads /proc/<pid>/maps to see either done.
 */
#define VRID_SIGNAL_OFFSET	1
#define VRID_QUIESCE_DETACH	0x56510001
#define VRID_QUIESCE_ATTACH	0x56510002
/* UNDO: after a restore, apply this process's recorded SEM_UNDO adjustments again. */
#define VRID_QUIESCE_UNDO	0x56510003

#endif
