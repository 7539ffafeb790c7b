/*
 * Prints the table-file layout as vrid_abi.h defines it, for
 * layout_test.go: "name offset size" per field and struct, then
 * "const NAME value" per constant.
 */
#include <stddef.h>
#include <stdio.h>

#include "vrid_abi.h"

#define FIELD(type, prefix, f) \
	printf("%s.%s %zu %zu\n", prefix, #f, offsetof(type, f), sizeof(((type *)0)->f))
#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))

int main(void)
{
	printf("header 0 %zu\n", sizeof(struct vrid_header));
	FIELD(struct vrid_header, "header", magic);
	FIELD(struct vrid_header, "header", version);
	FIELD(struct vrid_header, "header", header_size);
	FIELD(struct vrid_header, "header", generation);
	FIELD(struct vrid_header, "header", flags);
	FIELD(struct vrid_header, "header", aid);
	FIELD(struct vrid_header, "header", file_size);
	FIELD(struct vrid_header, "header", dirty);
	FIELD(struct vrid_header, "header", shm_doomed);
	FIELD(struct vrid_header, "header", reserved);
	FIELD(struct vrid_header, "header", name);
	FIELD(struct vrid_header, "header", tables);
	FIELD(struct vrid_header, "header", nsections);
	FIELD(struct vrid_header, "header", reserved2);
	FIELD(struct vrid_header, "header", sections);

	printf("section 0 %zu\n", sizeof(struct vrid_section));
	FIELD(struct vrid_section, "section", kind);
	FIELD(struct vrid_section, "section", entry_size);
	FIELD(struct vrid_section, "section", offset);
	FIELD(struct vrid_section, "section", size);

	printf("record 0 %zu\n", sizeof(struct vrid_ipc_record));
	FIELD(struct vrid_ipc_record, "record", type);
	FIELD(struct vrid_ipc_record, "record", sys);
	FIELD(struct vrid_ipc_record, "record", key);
	FIELD(struct vrid_ipc_record, "record", cuid);
	FIELD(struct vrid_ipc_record, "record", cgid);
	FIELD(struct vrid_ipc_record, "record", cpid);
	FIELD(struct vrid_ipc_record, "record", ctime);
	FIELD(struct vrid_ipc_record, "record", size);
	FIELD(struct vrid_ipc_record, "record", reserved);

	printf("records 0 %zu\n", sizeof(struct vrid_ipc_records));
	FIELD(struct vrid_ipc_records, "records", capacity);
	FIELD(struct vrid_ipc_records, "records", used);
	FIELD(struct vrid_ipc_records, "records", reserved);
	printf("records.records %zu 0\n", offsetof(struct vrid_ipc_records, records));

	printf("semadj 0 %zu\n", sizeof(struct vrid_semadj));
	FIELD(struct vrid_semadj, "semadj", pid_virt);
	FIELD(struct vrid_semadj, "semadj", sem_virt);
	FIELD(struct vrid_semadj, "semadj", num);
	FIELD(struct vrid_semadj, "semadj", adj);
	FIELD(struct vrid_semadj, "semadj", generation);

	printf("semadjs 0 %zu\n", sizeof(struct vrid_semadj_area));
	FIELD(struct vrid_semadj_area, "semadjs", capacity);
	FIELD(struct vrid_semadj_area, "semadjs", used);
	FIELD(struct vrid_semadj_area, "semadjs", lost);
	FIELD(struct vrid_semadj_area, "semadjs", reserved);
	printf("semadjs.entries %zu 0\n", offsetof(struct vrid_semadj_area, entries));

	printf("desc 0 %zu\n", sizeof(struct vrid_table_desc));
	FIELD(struct vrid_table_desc, "desc", type);
	FIELD(struct vrid_table_desc, "desc", slots);
	FIELD(struct vrid_table_desc, "desc", shift);
	FIELD(struct vrid_table_desc, "desc", live);
	FIELD(struct vrid_table_desc, "desc", by_virt_off);
	FIELD(struct vrid_table_desc, "desc", fresh_next);
	FIELD(struct vrid_table_desc, "desc", fresh_base);
	FIELD(struct vrid_table_desc, "desc", fresh_max);
	FIELD(struct vrid_table_desc, "desc", tombs_by_virt);
	FIELD(struct vrid_table_desc, "desc", tombs_by_sys);
	FIELD(struct vrid_table_desc, "desc", rebuilds);

	CONST(VRID_MAGIC);
	CONST(VRID_VERSION);
	CONST(VRID_HEADER_SIZE);
	CONST(VRID_NAME_MAX);
	CONST(VRID_SLOT_TOMB);
	CONST(VRID_KEY_BIAS);
	CONST(VRID_HASH_MUL);
	CONST(VRID_FLAG_SEQUENTIAL);
	CONST(VRID_PID);
	CONST(VRID_SEM);
	CONST(VRID_SHM);
	CONST(VRID_MSG);
	CONST(VRID_IPCKEY);
	CONST(VRID_NTYPES);
	CONST(VRID_SECTIONS_MAX);
	CONST(VRID_SECTION_UNUSED);
	CONST(VRID_SECTION_IPC_RECORDS);
	CONST(VRID_SECTION_SEMADJ);
	CONST(VRID_SIGNAL_OFFSET);
	CONST(VRID_QUIESCE_DETACH);
	CONST(VRID_QUIESCE_ATTACH);
	CONST(VRID_QUIESCE_UNDO);
	return 0;
}
