/*
 * stress.h - what the stress programs share: a splitmix64 step on a
 * caller-owned state (one per thread, so no locking and no shared
 * sequence).
 */
#ifndef CATENA_STRESS_H
#define CATENA_STRESS_H
#include <stdint.h>

static inline uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
#endif
