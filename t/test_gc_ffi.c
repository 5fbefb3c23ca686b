/*
 * test_gc_ffi.c - GC-managed libffi closures: callable through libffi
 * while referenced, across collections; released by the finaliser once
 * unreachable (valgrind's leak check sees no closure left behind).
 */
#include "catena_ffi.h"
#include "unit.h"

#define BS CATENA_BLOCK_SIZE
static uint64_t arena[64 * 1024 / 8];
static catena_heap_t *h;
static int nfinal_other;

/* int add(int a, int b) + *user */
static void add_fn(ffi_cif *cif, void *ret, void **args, void *user)
{
    (void)cif;
    int a = *(int *)args[0], b = *(int *)args[1];
    *(ffi_arg *)ret = (ffi_arg)(a + b + *(int *)user);
}

static int call2(ffi_cif *cif, void *code, int a, int b)
{
    void *args[2] = {&a, &b};
    ffi_arg ret;
    ffi_call(cif, FFI_FN(code), &ret, args);
    return (int)ret;
}

/* A finaliser that handles closures and the application's own objects. */
static void mixed_final(void *ctx, catena_heap_t *hh, void *obj)
{
    (void)ctx;
    if (!catena_ffi_release(hh, obj))
        nfinal_other++;
}

static ffi_type *argt[2];

static void gc(void **roots, size_t n)
{
    UNIT_EQ(catena_collect_start(h), 0);
    catena_collect_root(h, roots, n);
    UNIT_EQ(catena_collect_end(h), 0);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_closure)
{
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    catena_gc_set_finaliser(h, catena_ffi_finaliser, NULL);
    /* the cif and the user data live in the heap, kept by the closure */
    ffi_cif *cif = catena_alloc_flags(h, sizeof(ffi_cif), CATENA_NOSCAN);
    argt[0] = argt[1] = &ffi_type_sint;
    UNIT_ASSERT(cif && catena_is_contiguous(h, cif));
    UNIT_EQ(ffi_prep_cif(cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, argt),
            FFI_OK);
    int *extra = catena_alloc_flags(h, sizeof(int), CATENA_NOSCAN);
    *extra = 100;
    void *code = NULL;
    void *cl = catena_ffi_closure(h, cif, add_fn, extra, &code);
    UNIT_ASSERT(cl != NULL && code != NULL);
    UNIT_ASSERT(catena_ffi_code(h, cl) == code);
    UNIT_ASSERT(catena_ffi_code(h, extra) == NULL);
    UNIT_EQ(call2(cif, code, 2, 3), 105);

    void *roots[1] = {cl};
    for (int i = 0; i < 3; i++) {
        gc(roots, 1);
        UNIT_EQ(catena_size(h, cif) != 0, 1);
        UNIT_EQ(catena_size(h, extra) != 0, 1);
        UNIT_EQ(call2(cif, code, i, 10), 110 + i);
    }
    struct catena_stats s;
    catena_stats(h, &s);
    UNIT_EQ(s.gc_finalised, 0);
    UNIT_EQ(s.objects, 3);

    /* the last reference dropped: the closure, its cif and data go */
    gc(NULL, 0);
    catena_stats(h, &s);
    UNIT_EQ(s.gc_finalised, 1);
    UNIT_EQ(s.objects, 0);
}

UNIT_TEST(t_many)
{
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    catena_gc_set_finaliser(h, mixed_final, NULL);
    nfinal_other = 0;
    static ffi_cif cif; /* outside the heap: ignored by the collector */
    static int extra[64];
    argt[0] = argt[1] = &ffi_type_sint;
    UNIT_EQ(ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_sint, argt),
            FFI_OK);
    enum { N = 64 };
    void *cl[N], *code[N];
    for (int i = 0; i < N; i++) {
        extra[i] = i * 1000;
        cl[i] = catena_ffi_closure(h, &cif, add_fn, &extra[i], &code[i]);
        UNIT_ASSERT(cl[i] != NULL);
        UNIT_ASSERT(catena_alloc_flags(h, 3 * BS, CATENA_FINAL) != NULL);
    }
    /* keep the even ones */
    void *roots[N / 2];
    for (int i = 0; i < N; i += 2)
        roots[i / 2] = cl[i];
    gc(roots, N / 2);
    struct catena_stats s;
    catena_stats(h, &s);
    UNIT_EQ(s.gc_finalised, N / 2 + N);
    UNIT_EQ(nfinal_other, N);
    for (int i = 0; i < N; i += 2)
        UNIT_EQ(call2(&cif, code[i], 1, 2), 3 + i * 1000);
    /* a released object stays released: no double free */
    UNIT_ASSERT(catena_ffi_release(h, cl[0]));
    UNIT_ASSERT(!catena_ffi_release(h, cl[0]));
    UNIT_ASSERT(catena_ffi_code(h, cl[0]) == NULL);
    gc(NULL, 0);
    catena_stats(h, &s);
    UNIT_EQ(s.objects, 0);
    UNIT_EQ(s.gc_finalised, N + N);
    UNIT_EQ(nfinal_other, N + 1); /* cl[0], already released */
}

static const unit_case cases[] = {UNIT_CASE(t_closure), UNIT_CASE(t_many)};
UNIT_MAIN("gc_ffi", cases)
