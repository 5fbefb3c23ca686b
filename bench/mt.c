/*
 * mt.c - catena-bench-mt: allocator workloads that need threads (or a
 * whole process of their own), run on whatever serves plain malloc in this
 * process.  catena-bench runs it once per process allocator with
 * LD_PRELOAD set to libcatena-preload.so, jemalloc or mimalloc (or
 * nothing: glibc), and takes the peak RSS from wait4.
 *
 *   catena-bench-mt larson|xmalloc|churn SCALE [THREADS]
 *
 * Prints one line: `ok workload=W threads=T ops=N seconds=S hwm_kib=K
 * check=C`; hwm_kib is this process's VmHWM (a parent's wait4 would also
 * count the parent's own RSS at the fork).
 * These are our own versions of the classic workloads, written from their
 * descriptions (doc/bench.md):
 *
 * larson  - a server simulation: each thread owns an array of objects and
 *           replaces random ones (free, then malloc 16-1024 B); every round
 *           the arrays move on to freshly created threads, so most frees
 *           are of objects another (by then finished) thread allocated.
 * xmalloc - producer/consumer: producers malloc 16-512 B objects and pass
 *           them in batches through a bounded queue to consumers, which
 *           free them: every free is cross-thread.
 * churn   - one thread, a live set of 20000 objects replaced at random,
 *           mostly 16-256 B with some 1-64 KiB ones, each written once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double dnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void die(const char *what)
{
    fprintf(stderr, "catena-bench-mt: %s\n", what);
    exit(2);
}

/* ---- larson ------------------------------------------------------------ */

#define L_SLOTS 4000

struct larson_arg {
    unsigned char **slots;
    uint64_t seed;
    size_t ops;
    uint64_t check;
};

static void *larson_thread(void *v)
{
    struct larson_arg *a = v;
    uint64_t s = a->seed, sum = 0;
    for (size_t i = 0; i < a->ops; i++) {
        size_t k = (size_t)(rnd(&s) % L_SLOTS);
        unsigned char *p = a->slots[k];
        if (p)
            sum += p[0];
        free(p);
        size_t n = 16 + (size_t)(rnd(&s) % 1009);
        p = malloc(n);
        if (!p)
            die("out of memory");
        p[0] = (unsigned char)n;
        p[n - 1] = 1;
        a->slots[k] = p;
    }
    a->seed = s;
    a->check += sum;
    return NULL;
}

static size_t larson(double scale, int nt, uint64_t *check)
{
    struct larson_arg arg[64];
    unsigned char **arrays[64];
    uint64_t s = 12345;
    for (int t = 0; t < nt; t++) {
        arrays[t] = calloc(L_SLOTS, sizeof(void *));
        if (!arrays[t])
            die("out of memory");
        for (size_t k = 0; k < L_SLOTS; k++) {
            size_t n = 16 + (size_t)(rnd(&s) % 1009);
            arrays[t][k] = malloc(n);
            if (!arrays[t][k])
                die("out of memory");
            arrays[t][k][0] = (unsigned char)n;
        }
        arg[t].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
        arg[t].check = 0;
    }
    int rounds = 20;
    size_t per = (size_t)(scale * 2e6 / rounds / nt) + 1;
    for (int r = 0; r < rounds; r++) {
        pthread_t th[64];
        for (int t = 0; t < nt; t++) {
            arg[t].slots = arrays[(t + r) % nt]; /* arrays move on */
            arg[t].ops = per;
            if (pthread_create(&th[t], NULL, larson_thread, &arg[t]))
                die("pthread_create");
        }
        for (int t = 0; t < nt; t++)
            pthread_join(th[t], NULL);
    }
    for (int t = 0; t < nt; t++) {
        for (size_t k = 0; k < L_SLOTS; k++)
            free(arrays[t][k]);
        free(arrays[t]);
        *check += arg[t].check;
    }
    return per * (size_t)rounds * (size_t)nt * 2; /* a free + a malloc */
}

/* ---- xmalloc ----------------------------------------------------------- */

#define X_BATCH 256
#define X_QCAP 32

struct xq {
    pthread_mutex_t m;
    pthread_cond_t nonempty, nonfull;
    void **q[X_QCAP];
    size_t head, n;
    int producers_left;
};

struct xarg {
    struct xq *q;
    size_t batches;
    uint64_t seed, check;
};

static void *producer(void *v)
{
    struct xarg *a = v;
    uint64_t s = a->seed;
    for (size_t b = 0; b < a->batches; b++) {
        void **batch = malloc(X_BATCH * sizeof *batch);
        if (!batch)
            die("out of memory");
        for (size_t i = 0; i < X_BATCH; i++) {
            size_t n = 16 + (size_t)(rnd(&s) % 497);
            unsigned char *p = malloc(n);
            if (!p)
                die("out of memory");
            p[0] = (unsigned char)n;
            batch[i] = p;
        }
        pthread_mutex_lock(&a->q->m);
        while (a->q->n == X_QCAP)
            pthread_cond_wait(&a->q->nonfull, &a->q->m);
        a->q->q[(a->q->head + a->q->n++) % X_QCAP] = batch;
        pthread_cond_signal(&a->q->nonempty);
        pthread_mutex_unlock(&a->q->m);
    }
    pthread_mutex_lock(&a->q->m);
    a->q->producers_left--;
    pthread_cond_broadcast(&a->q->nonempty);
    pthread_mutex_unlock(&a->q->m);
    return NULL;
}

static void *consumer(void *v)
{
    struct xarg *a = v;
    uint64_t sum = 0;
    for (;;) {
        pthread_mutex_lock(&a->q->m);
        while (a->q->n == 0 && a->q->producers_left > 0)
            pthread_cond_wait(&a->q->nonempty, &a->q->m);
        if (a->q->n == 0) {
            pthread_mutex_unlock(&a->q->m);
            break;
        }
        void **batch = a->q->q[a->q->head];
        a->q->head = (a->q->head + 1) % X_QCAP;
        a->q->n--;
        pthread_cond_signal(&a->q->nonfull);
        pthread_mutex_unlock(&a->q->m);
        for (size_t i = 0; i < X_BATCH; i++) {
            sum += ((unsigned char *)batch[i])[0];
            free(batch[i]);
        }
        free(batch);
    }
    a->check = sum;
    return NULL;
}

static size_t xmalloc(double scale, int nt, uint64_t *check)
{
    struct xq q;
    pthread_mutex_init(&q.m, NULL);
    pthread_cond_init(&q.nonempty, NULL);
    pthread_cond_init(&q.nonfull, NULL);
    q.head = q.n = 0;
    int np = nt / 2 > 0 ? nt / 2 : 1, nc = nt - np > 0 ? nt - np : 1;
    q.producers_left = np;
    struct xarg pa[64], ca[64];
    pthread_t th[128];
    size_t batches = (size_t)(scale * 3e6 / X_BATCH / np) + 1;
    for (int i = 0; i < nc; i++) {
        ca[i].q = &q;
        if (pthread_create(&th[np + i], NULL, consumer, &ca[i]))
            die("pthread_create");
    }
    for (int i = 0; i < np; i++) {
        pa[i].q = &q;
        pa[i].batches = batches;
        pa[i].seed = 0x2545F4914F6CDD1DULL * (uint64_t)(i + 1);
        if (pthread_create(&th[i], NULL, producer, &pa[i]))
            die("pthread_create");
    }
    for (int i = 0; i < np + nc; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < nc; i++)
        *check += ca[i].check;
    return batches * (size_t)np * X_BATCH; /* frees (= mallocs) */
}

/* ---- churn (one thread) ------------------------------------------------ */

#define C_SLOTS 20000

static size_t churn(double scale, uint64_t *check)
{
    unsigned char **slot = calloc(C_SLOTS, sizeof *slot);
    size_t *len = calloc(C_SLOTS, sizeof *len);
    if (!slot || !len)
        die("out of memory");
    uint64_t s = 777, sum = 0;
    size_t ops = (size_t)(scale * 3e6) + 1, calls = 0;
    for (size_t i = 0; i < ops; i++) {
        size_t k = (size_t)(rnd(&s) % C_SLOTS);
        uint64_t r = rnd(&s);
        size_t n = r % 64 == 0 ? 1024 + (size_t)(r >> 8) % (63 * 1024)
                               : 16 + (size_t)(r >> 8) % 241;
        if (slot[k]) {
            sum += slot[k][len[k] - 1];
            if (r % 7 == 0) { /* grow or shrink in place, as strings do */
                unsigned char *q = realloc(slot[k], n);
                if (!q)
                    die("out of memory");
                if (n > len[k])
                    memset(q + len[k], (int)(n & 0xff), n - len[k]);
                else
                    q[n - 1] = (unsigned char)n;
                slot[k] = q;
                len[k] = n;
                calls++;
                continue;
            }
            free(slot[k]);
            calls++;
        }
        slot[k] = malloc(n);
        if (!slot[k])
            die("out of memory");
        memset(slot[k], (int)(n & 0xff), n);
        len[k] = n;
        calls++;
    }
    for (size_t k = 0; k < C_SLOTS; k++)
        free(slot[k]);
    free(slot);
    free(len);
    *check = sum;
    return calls;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s larson|xmalloc|churn SCALE [THREADS]\n",
                argv[0]);
        return 2;
    }
    double scale = atof(argv[2]);
    int nt = argc > 3 ? atoi(argv[3]) : 2;
    if (scale <= 0 || nt < 1 || nt > 64)
        die("bad SCALE or THREADS");
    uint64_t check = 0;
    size_t ops;
    double t0 = dnow();
    if (!strcmp(argv[1], "larson"))
        ops = larson(scale, nt, &check);
    else if (!strcmp(argv[1], "xmalloc"))
        ops = xmalloc(scale, nt, &check);
    else if (!strcmp(argv[1], "churn"))
        ops = churn(scale, &check), nt = 1;
    else
        die("unknown workload");
    double sec = dnow() - t0;
    unsigned long hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6))
                hwm = strtoul(line + 6, NULL, 10);
        fclose(f);
    }
    printf("ok workload=%s threads=%d ops=%zu seconds=%.6f hwm_kib=%lu "
           "check=%llu\n",
           argv[1], nt, ops, sec, hwm, (unsigned long long)check);
    return 0;
}
