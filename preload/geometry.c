/*
 * geometry.c - the small-object side's geometry and settings: arena and block
 * size, the bitmap of arena starts, which features are on.  small_init
 * fixes them once; every small-object file reads them.  The lowest layer
 * of that side: it calls only options.c, util.c and catena.
 */
#include "arena.h"

size_t asz, bsize;
_Atomic uint64_t *arena_bits;
size_t arena_slots;
bool track;
size_t trim_blocks;
bool tc_on;
size_t mapsz;
unsigned bshift;
unsigned ashift;
uintptr_t tc_secret;

bool small_init(void)
{
    bsize = catena_block_size();
    /* 32 MiB arenas: the table (asz/2B bytes, written by catena_init) is
     * 512 KiB of RSS per arena, and 2^20 blocks index comfortably.  Builds
     * with 16-bit indexes cap a heap at 65534 blocks: use less. */
    bshift = (unsigned)__builtin_ctzl(bsize);
    asz = (size_t)32 << 20;
    for (;;) {
        if (asz <= 1024 * 1024 ||
            catena_arena_blocks(HDR, asz - HDR) <= catena_max_blocks())
            break;
        asz /= 2;
    }
    mapsz = asz >> bshift; /* one state byte per block of an arena */
    ashift = (unsigned)__builtin_ctzl(asz);
#if CATENA_INDEX_BITS == 32
    if (ashift != TC_ASHIFT) /* arena.h's constant is wrong */
        shim_die("arena size is not the one arena.h assumes");
#endif
    shim_opts_cap_large(asz / 4);
    /* 1 MiB of bits for 48-bit addresses and 32 MiB arenas; pages of it
     * are touched only where arenas are. */
    arena_slots = (size_t)1 << (ADDR_BITS - ashift);
    arena_bits = shim_map_aligned((arena_slots + 63) / 64 * 8, shim_page,
                                  true);
    track = shim_opt.stats || shim_opt.arena;
    if (shim_opt.trim)
        trim_blocks = shim_opt.trim >> bshift ? shim_opt.trim >> bshift : 1;
    if (trim_blocks > mapsz) /* more than an arena: as good as never */
        trim_blocks = mapsz;
    tc_on = shim_opt.tcache && !shim_opt.trace && bsize >= sizeof(void *) &&
            (bsize & (bsize - 1)) == 0 && bsize == TC_B;
    tc_secret = shim_secret();
    return arena_bits != NULL;
}

