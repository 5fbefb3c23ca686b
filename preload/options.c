/*
 * options.c - the shim's runtime options: one table, read from the
 * environment at the first allocation.  `catena-run --help` prints the
 * same table (through CATENA_HELP=1), so documentation cannot drift.
 */
#include "shim.h"

#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

struct shim_opts shim_opt SHIM_HIDDEN = {
    .large = 128 * 1024,
    .abort_on_error = true,
    .tcache = true,
    .trim = 1024 * 1024,
};

enum kind { K_SIZE, K_BOOL, K_COUNT, K_PATH };

static const struct opt {
    const char *name;
    enum kind kind;
    const char *dflt;
    const char *help;
} table[] = {
    {"CATENA_ARENA", K_SIZE, "0 (grow)",
     "fixed pool for large objects, e.g. 64M: emulates a device's RAM; a "
     "large malloc fails with ENOMEM only when fewer free pages remain than "
     "it needs"},
    {"CATENA_LARGE", K_SIZE, "128K",
     "threshold: smaller objects are contiguous catena runs, larger ones "
     "are private anonymous pages in one range (realloc moves, never "
     "copies); at least 4K, at most a quarter of a small-object arena (8M; "
     "larger values are capped, with a warning)"},
    {"CATENA_STATS", K_BOOL, "0",
     "print statistics and a one-line fragmentation summary to stderr at "
     "exit"},
    {"CATENA_TRACE", K_PATH, "(none)",
     "record every malloc/free/realloc/memalign to this file (preload/"
     "trace.h format) for catena-bench replay; %p in PATH becomes the "
     "process id (programs that run others)"},
    {"CATENA_CHECK", K_COUNT, "0 (never)",
     "validate the heaps and the per-thread caches before and after "
     "every Nth call (corruption: one line, abort)"},
    {"CATENA_ABORT_ON_ERROR", K_BOOL, "1",
     "abort after reporting a bad free (double, foreign, interior); 0 "
     "reports it and ignores the call"},
    {"CATENA_TCACHE", K_BOOL, "1",
     "per-thread cache of freed small objects (up to 32 blocks, bounded, "
     "double frees still caught); 0 sends every call to the shared heaps "
     "(off while CATENA_TRACE records)"},
    {"CATENA_TRIM", K_SIZE, "1M",
     "give free small-object pages back to the OS (madvise) once an "
     "arena's free memory grew by this much since its last trim (more "
     "when trims were undone by regrowth: the slack doubles, then "
     "decays); 0 never returns them"},
    {"CATENA_HELP", K_BOOL, "0", "print this table to stderr at start-up"},
};
#define NOPT (sizeof table / sizeof table[0])

/* "64M", "4k", "1G", "12345": bytes, or SIZE_MAX when malformed. */
static size_t parse_size(const char *s)
{
    size_t v = 0;
    if (*s < '0' || *s > '9')
        return SIZE_MAX;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (SIZE_MAX - 9) / 10)
            return SIZE_MAX;
        v = v * 10 + (size_t)(*s - '0');
    }
    unsigned sh = 0;
    switch (*s) {
    case 'k': case 'K': sh = 10; s++; break;
    case 'm': case 'M': sh = 20; s++; break;
    case 'g': case 'G': sh = 30; s++; break;
    default: break;
    }
    if (*s == 'i' && sh) /* "64MiB" */
        s++;
    if (*s == 'b' || *s == 'B')
        s++;
    if (*s || (sh && v > (SIZE_MAX >> sh)))
        return SIZE_MAX;
    return v << sh;
}

static int parse_bool(const char *s)
{
    if (!strcmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
        !strcasecmp(s, "true") || !*s)
        return 1;
    if (!strcmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
        !strcasecmp(s, "false"))
        return 0;
    return -1;
}

static void bad(const char *name, const char *val)
{
    struct shim_line l = {.n = 0};
    ln_str(&l, "catena: ignoring bad value ");
    ln_str(&l, name);
    ln_str(&l, "=");
    ln_str(&l, val);
    ln_put(&l, 2);
}

static void apply(const struct opt *o, const char *val)
{
    size_t sz;
    int b;
    switch (o->kind) {
    case K_SIZE:
    case K_COUNT:
        sz = parse_size(val);
        if (sz == SIZE_MAX) {
            bad(o->name, val);
            return;
        }
        if (!strcmp(o->name, "CATENA_ARENA"))
            shim_opt.arena = sz;
        else if (!strcmp(o->name, "CATENA_LARGE")) {
            if (sz < 4096) { /* a large object is at least one page */
                bad(o->name, val);
                return;
            }
            shim_opt.large = sz;
        } else if (!strcmp(o->name, "CATENA_TRIM"))
            shim_opt.trim = sz;
        else
            shim_opt.check = sz;
        return;
    case K_BOOL:
        b = parse_bool(val);
        if (b < 0) {
            bad(o->name, val);
            return;
        }
        if (!strcmp(o->name, "CATENA_STATS"))
            shim_opt.stats = b;
        else if (!strcmp(o->name, "CATENA_HELP"))
            shim_opt.help = b;
        else if (!strcmp(o->name, "CATENA_TCACHE"))
            shim_opt.tcache = b;
        else
            shim_opt.abort_on_error = b;
        return;
    case K_PATH:
        shim_opt.trace = *val ? val : NULL;
        return;
    }
}

/* The environment block of the process from /proc, for a call so early
 * that libc has not set `environ` yet.  Static: read once. */
static char proc_env[16384];

static void scan(char **env)
{
    for (char **e = env; *e; e++) {
        if (strncmp(*e, "CATENA_", 7))
            continue;
        for (size_t i = 0; i < NOPT; i++) {
            size_t n = strlen(table[i].name);
            if (!strncmp(*e, table[i].name, n) && (*e)[n] == '=')
                apply(&table[i], *e + n + 1);
        }
    }
}

void shim_opts_parse(void)
{
    if (environ) {
        scan(environ);
        return;
    }
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t got = read(fd, proc_env, sizeof proc_env - 2);
    close(fd);
    if (got <= 0)
        return;
    proc_env[got] = proc_env[got + 1] = '\0';
    char *ptrs[256];
    size_t n = 0;
    for (char *p = proc_env; *p && n < 255; p += strlen(p) + 1)
        ptrs[n++] = p;
    ptrs[n] = NULL;
    scan(ptrs);
}

void shim_opts_cap_large(size_t max)
{
    if (shim_opt.large <= max)
        return;
    struct shim_line l = {.n = 0};
    ln_str(&l, "catena: CATENA_LARGE (");
    ln_kib(&l, shim_opt.large);
    ln_str(&l, ") is above the largest threshold (a quarter of an arena): "
               "using ");
    ln_kib(&l, max);
    ln_put(&l, 2);
    shim_opt.large = max;
}

void shim_opts_help(int fd)
{
    struct shim_line l;
    l.n = 0;
    ln_str(&l, "libcatena-preload.so options (environment variables):");
    ln_put(&l, fd);
    for (size_t i = 0; i < NOPT; i++) {
        l.n = 0;
        ln_str(&l, "  ");
        ln_str(&l, table[i].name);
        ln_str(&l, "=");
        ln_str(&l, table[i].kind == K_SIZE    ? "SIZE"
                   : table[i].kind == K_BOOL  ? "0|1"
                   : table[i].kind == K_COUNT ? "N"
                                              : "PATH");
        ln_str(&l, "  (default ");
        ln_str(&l, table[i].dflt);
        ln_str(&l, ")");
        ln_put(&l, fd);
        l.n = 0;
        ln_str(&l, "      ");
        ln_str(&l, table[i].help);
        ln_put(&l, fd);
    }
    l.n = 0;
    ln_str(&l, "  SIZE takes K, M, G suffixes (powers of 1024).");
    ln_put(&l, fd);
}
