/*
 * Checking a table file before trusting a single slot of it: the layer
 * when a process attaches, the host when it opens or copies a file, a
 * process that adopts a copy a restore put in place.  Every process of
 * the chain can write the file, so the checks bound everything that
 * places bytes: offsets, sizes, counts.  Fields that only steer within
 * those bounds (live, fresh_next, ...) may change later; the engine
 * stays inside the bounds whatever they say.
 */
#include <stdio.h>
#include <string.h>

#include "table.h"

/* Why the descriptor of type is unusable, into why; or 0. */
static int check_desc(const struct vrid_table_desc *d, enum vrid_type type, uint64_t size,
		      char *why, size_t len)
{
	uint64_t bytes = 16ull * d->slots;
	const char *name = vrid_type_name(type);
	uint32_t log2 = 0;

	while (log2 < 32 && (1ull << log2) < d->slots)
		log2++;
	if (d->type != (uint32_t)type)
		return snprintf(why, len, "%s table: type %u in slot of type %d", name, d->type, type);
	if (d->slots < 16 || d->slots > (1u << 24) || (d->slots & (d->slots - 1)))
		return snprintf(why, len, "%s table: %u slots, want a power of two from 16 to %u",
				name, d->slots, 1u << 24);
	if (d->shift != 32 - log2)
		return snprintf(why, len, "%s table: shift %u for %u slots", name, d->shift, d->slots);
	if (d->by_virt_off % 64)
		return snprintf(why, len, "%s table: offset %llu not 64-aligned", name,
				(unsigned long long)d->by_virt_off);
	/* by_virt_off is checked before the sum, which then cannot wrap. */
	if (d->by_virt_off < VRID_HEADER_SIZE || d->by_virt_off > size || bytes > size - d->by_virt_off)
		return snprintf(why, len, "%s table: indexes at %llu..%llu outside %d..%llu", name,
				(unsigned long long)d->by_virt_off,
				(unsigned long long)(d->by_virt_off + bytes), VRID_HEADER_SIZE,
				(unsigned long long)size);
	if (d->fresh_base > d->fresh_max || d->fresh_max > INT32_MAX)
		return snprintf(why, len, "%s table: fresh range %u..%u", name, d->fresh_base, d->fresh_max);
	if (d->fresh_next < d->fresh_base || d->fresh_next > d->fresh_max)
		return snprintf(why, len, "%s table: fresh_next %u outside %u..%u", name, d->fresh_next,
				d->fresh_base, d->fresh_max);
	if (d->live > d->slots)
		return snprintf(why, len, "%s table: %u live entries in %u slots", name, d->live, d->slots);
	if (d->tombs_by_virt > d->slots)
		return snprintf(why, len, "%s table: %u removed slots of %u in by_virt", name,
				d->tombs_by_virt, d->slots);
	if (d->tombs_by_sys > d->slots)
		return snprintf(why, len, "%s table: %u removed slots of %u in by_sys", name,
				d->tombs_by_sys, d->slots);
	return 0;
}

static int overlaps(uint64_t a_off, uint64_t a_size, uint64_t b_off, uint64_t b_size)
{
	return a_off < b_off + b_size && b_off < a_off + a_size;
}

/* Indexes may not share bytes: a write to one would corrupt another. */
static int check_overlap(const struct vrid_table_desc *tables, char *why, size_t len)
{
	for (int a = 0; a < VRID_NTYPES; a++)
		for (int b = a + 1; b < VRID_NTYPES; b++)
			if (overlaps(tables[a].by_virt_off, 16ull * tables[a].slots,
				     tables[b].by_virt_off, 16ull * tables[b].slots))
				return snprintf(why, len, "%s and %s indexes overlap",
						vrid_type_name((enum vrid_type)a),
						vrid_type_name((enum vrid_type)b));
	return 0;
}

static int check_semadj(struct vrid_table *t, const struct vrid_section *sec, uint32_t i,
			char *why, size_t len)
{
	if (sec->entry_size != sizeof(struct vrid_semadj) || sec->size < sizeof(struct vrid_semadj_area))
		return snprintf(why, len, "section %u: SEM_UNDO adjustments of %u bytes in %llu, "
				"want %zu in at least %zu", i, sec->entry_size,
				(unsigned long long)sec->size, sizeof(struct vrid_semadj),
				sizeof(struct vrid_semadj_area));
	t->semadj = (struct vrid_semadj_area *)((char *)t->hdr + sec->offset);
	t->semadj_cap = (uint32_t)((sec->size - sizeof(struct vrid_semadj_area)) /
				   sizeof(struct vrid_semadj));
	return 0;
}

/*
 * Every used section lies past the header, inside the file, apart from
 * the indexes and from the others; kinds the engine knows have their
 * shape, and unknown ones are skipped.  sec is a copy: the file is the
 * chain's to change meanwhile.
 */
static int check_sections(struct vrid_table *t, const struct vrid_section *sec, uint32_t n,
			  char *why, size_t len)
{
	if (n > VRID_SECTIONS_MAX)
		return snprintf(why, len, "%u sections, at most %d", n, VRID_SECTIONS_MAX);
	for (uint32_t i = 0; i < n; i++) {
		if (sec[i].offset % 64)
			return snprintf(why, len, "section %u: offset %llu not 64-aligned", i,
					(unsigned long long)sec[i].offset);
		if (sec[i].offset < VRID_HEADER_SIZE || sec[i].offset > t->size ||
		    sec[i].size > t->size - sec[i].offset)
			return snprintf(why, len, "section %u: %llu..%llu outside %d..%llu", i,
					(unsigned long long)sec[i].offset,
					(unsigned long long)(sec[i].offset + sec[i].size),
					VRID_HEADER_SIZE, (unsigned long long)t->size);
		for (int type = 0; type < VRID_NTYPES; type++)
			if (overlaps(sec[i].offset, sec[i].size,
				     (uint64_t)((char *)t->idx[type].by_virt - (char *)t->hdr),
				     16ull * (t->idx[type].mask + 1)))
				return snprintf(why, len, "section %u overlaps the %s indexes", i,
						vrid_type_name((enum vrid_type)type));
		for (uint32_t j = 0; j < i; j++)
			if (overlaps(sec[i].offset, sec[i].size, sec[j].offset, sec[j].size))
				return snprintf(why, len, "sections %u and %u overlap", j, i);
		if (sec[i].kind == VRID_SECTION_SEMADJ) {
			int err = check_semadj(t, &sec[i], i, why, len);

			if (err)
				return err;
			continue;
		}
		if (sec[i].kind != VRID_SECTION_IPC_RECORDS)
			continue;
		if (sec[i].entry_size != sizeof(struct vrid_ipc_record) ||
		    sec[i].size < sizeof(struct vrid_ipc_records))
			return snprintf(why, len, "section %u: IPC records of %u bytes in %llu, "
					"want %zu in at least %zu", i, sec[i].entry_size,
					(unsigned long long)sec[i].size, sizeof(struct vrid_ipc_record),
					sizeof(struct vrid_ipc_records));
		t->records = (struct vrid_ipc_records *)((char *)t->hdr + sec[i].offset);
		t->records_cap = (uint32_t)((sec[i].size - sizeof(struct vrid_ipc_records)) /
					    sizeof(struct vrid_ipc_record));
	}
	return 0;
}

static int check_header(const struct vrid_header *h, uint64_t size, char *why, size_t len)
{
	if (h->magic != VRID_MAGIC)
		return snprintf(why, len, "bad magic %#x", h->magic);
	if (h->version != VRID_VERSION)
		return snprintf(why, len, "unsupported version %u", h->version);
	if (h->header_size != VRID_HEADER_SIZE)
		return snprintf(why, len, "header size %u, want %d", h->header_size, VRID_HEADER_SIZE);
	if (h->file_size != size)
		return snprintf(why, len, "header says %llu bytes, file has %llu",
				(unsigned long long)h->file_size, (unsigned long long)size);
	if (memchr(h->name, 0, sizeof(h->name)) == NULL)
		return snprintf(why, len, "name not NUL-terminated");
	return 0;
}

int vrid_table_check(struct vrid_table *t, void *mem, uint64_t size, char *why, size_t len)
{
	struct vrid_table_desc tables[VRID_NTYPES];
	struct vrid_section sec[VRID_SECTIONS_MAX];
	struct vrid_header *h = mem;
	uint32_t nsections;

	if (size < VRID_HEADER_SIZE) {
		snprintf(why, len, "%llu bytes, shorter than the header", (unsigned long long)size);
		return -EINVAL;
	}
	/* What places bytes is copied once, then checked and used. */
	memcpy(tables, h->tables, sizeof(tables));
	memcpy(sec, h->sections, sizeof(sec));
	nsections = __atomic_load_n(&h->nsections, __ATOMIC_RELAXED);
	t->hdr = h;
	t->size = size;
	t->records = NULL;
	t->records_cap = 0;
	t->semadj = NULL;
	t->semadj_cap = 0;
	if (check_header(h, size, why, len))
		return -EINVAL;
	for (int type = 0; type < VRID_NTYPES; type++)
		if (check_desc(&tables[type], (enum vrid_type)type, size, why, len))
			return -EINVAL;
	if (check_overlap(tables, why, len))
		return -EINVAL;
	for (int type = 0; type < VRID_NTYPES; type++) {
		struct vrid_index *idx = &t->idx[type];

		idx->by_virt = (uint64_t *)((char *)h + tables[type].by_virt_off);
		idx->by_sys = idx->by_virt + tables[type].slots;
		idx->mask = tables[type].slots - 1;
		idx->shift = tables[type].shift;
		idx->desc = &h->tables[type];
	}
	if (check_sections(t, sec, nsections, why, len))
		return -EINVAL;
	return 0;
}
