/*
 * catena_trace.h - the allocation trace format written by
 * libcatena-preload.so (CATENA_TRACE=path, preload/trace.c) and replayed by
 * catena-bench (`catena-bench replay`, bench/trace.c).  Shared by both
 * parts, so it lives beside the public header; it is not installed (it is
 * a file format, not API).
 *
 * A file is a 16-byte header followed by fixed 32-byte records, all
 * little-endian:
 *
 *   header: "CATRACE1" (8 bytes), uint32 version (= 1), uint32 reserved (0)
 *   record: uint8  op       (enum catena_trace_op)
 *           uint8  pad[3]   (0)
 *           uint32 tid      (small per-process thread number, 0 = first)
 *           uint64 id       (object id: nonzero, unique while the object lives;
 *                            0 for a failed allocation)
 *           uint64 size     (requested bytes; for FREE the object's size)
 *           uint64 arg      (REALLOC: the old id (0 if none);
 *                            MEMALIGN: the alignment; otherwise 0)
 *
 * Ids, not addresses, name objects, so a replay does not depend on where
 * the recording allocator put things.  REALLOC frees `arg` and creates
 * `id` (they may be equal when the object did not move).  A record is
 * written after the call returns.
 *
 * A file may end in zero bytes: the writer maps the file in chunks of
 * CATENA_TRACE_CHUNK bytes, and a process that ended without running its
 * exit destructor (_exit, abort, exec, a signal) leaves the rest of its
 * last chunk zero (less than CATENA_TRACE_CHUNK bytes, not a multiple of
 * 32).  A record whose op is 0 therefore ends the trace; only zero bytes
 * may follow it.  Nothing recorded before the end is lost.
 */
#ifndef CATENA_TRACE_H
#define CATENA_TRACE_H
#include <stdint.h>

#define CATENA_TRACE_MAGIC "CATRACE1"
#define CATENA_TRACE_VERSION 1u
#define CATENA_TRACE_CHUNK (1u << 20) /* the zero tail is shorter */

enum catena_trace_op {
    CATENA_TR_MALLOC = 1,
    CATENA_TR_CALLOC = 2,
    CATENA_TR_REALLOC = 3,
    CATENA_TR_MEMALIGN = 4, /* posix_memalign, aligned_alloc, memalign, ... */
    CATENA_TR_FREE = 5
};

struct catena_trace_hdr {
    char magic[8];
    uint32_t version, reserved;
};

struct catena_trace_rec {
    uint8_t op, pad[3];
    uint32_t tid;
    uint64_t id, size, arg;
};

#endif
