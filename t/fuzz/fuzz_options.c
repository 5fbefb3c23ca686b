/*
 * fuzz_options.c - the shim's option parser (preload/options.c) on
 * arbitrary environments, linked alone: the two output helpers it uses
 * are replaced here by ones that capture the lines.
 *
 * The input is a list of NUL-separated environment entries; an entry's
 * first byte picks one of the option names (or none, to send raw text).
 * A reference parser written here from the documentation (sizes: digits,
 * an optional K/M/G with optional "i", an optional "B"; booleans: 1, yes,
 * on, true, empty / 0, no, off, false; CATENA_LARGE at least 4096) says
 * what each entry must do: the parsed options must equal it, every
 * rejected value must get exactly one "catena: ignoring bad value NAME=..."
 * line, and nothing else may be printed.
 */
#include "fuzz.h"
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c)) {                                                        \
            fprintf(stderr, "fuzz_options: %s:%d: %s\n", __FILE__,         \
                    __LINE__, #c);                                         \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* ---- the output helpers options.c calls (util.c's, capturing) ----------- */

static char lines[64][sizeof(((struct shim_line *)0)->buf)];
static size_t nlines;

void ln_str(struct shim_line *l, const char *s)
{
    while (*s && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = *s++;
}

/* Sizes in warnings (shim_opts_cap_large): any rendering will do here. */
void ln_kib(struct shim_line *l, uint64_t bytes)
{
    char d[24];
    size_t n = 0;
    do
        d[n++] = (char)('0' + bytes % 10);
    while ((bytes /= 10) && n < sizeof d);
    while (n && l->n < sizeof l->buf - 1)
        l->buf[l->n++] = d[--n];
}

void ln_put(struct shim_line *l, int fd)
{
    CHECK(fd == 2);
    CHECK(l->n < sizeof l->buf);
    if (nlines < 64) {
        memcpy(lines[nlines], l->buf, l->n);
        lines[nlines][l->n] = '\0';
    }
    nlines++;
    l->n = 0;
}

/* ---- the reference ---------------------------------------------------------- */

enum kind { SIZE, COUNT, BOOL, PATH };
static const struct {
    const char *name;
    enum kind kind;
} names[] = {
    {"CATENA_ARENA", SIZE},  {"CATENA_LARGE", SIZE},
    {"CATENA_STATS", BOOL},  {"CATENA_TRACE", PATH},
    {"CATENA_CHECK", COUNT}, {"CATENA_ABORT_ON_ERROR", BOOL},
    {"CATENA_TCACHE", BOOL}, {"CATENA_HELP", BOOL},
    {"CATENA_TRIM", SIZE},
};
#define NNAMES (sizeof names / sizeof names[0])

static bool ref_size(const char *s, size_t *out)
{
    size_t digits = strspn(s, "0123456789");
    if (!digits)
        return false;
    unsigned long long v = 0;
    for (size_t i = 0; i < digits; i++)
        if (__builtin_mul_overflow(v, 10ull, &v) ||
            __builtin_add_overflow(v, (unsigned long long)(s[i] - '0'), &v))
            return false;
    const char *u = s + digits;
    unsigned sh = 0;
    if (*u && strchr("kKmMgG", *u)) {
        sh = *u == 'k' || *u == 'K' ? 10 : *u == 'm' || *u == 'M' ? 20 : 30;
        u++;
        if (*u == 'i')
            u++;
    }
    if (*u == 'b' || *u == 'B')
        u++;
    /* the parser guards overflow a digit early: it takes at most
     * SIZE_MAX - 6 before the unit */
    if (*u || v > (SIZE_MAX - 9) / 10 * 10 + 9 || (v << sh >> sh) != v ||
        (v << sh) >= SIZE_MAX)
        return false;
    *out = (size_t)(v << sh);
    return true;
}

static int ref_bool(const char *s)
{
    static const char *const yes[] = {"1", "yes", "on", "true", ""};
    static const char *const no[] = {"0", "no", "off", "false"};
    for (size_t i = 0; i < 5; i++)
        if (!strcasecmp(s, yes[i]))
            return 1;
    for (size_t i = 0; i < 4; i++)
        if (!strcasecmp(s, no[i]))
            return 0;
    return -1;
}

/* Apply one entry to *o; false when the value must be rejected. */
static bool ref_apply(struct shim_opts *o, size_t k, const char *val)
{
    const char *n = names[k].name;
    size_t v;
    int b;
    switch (names[k].kind) {
    case SIZE:
    case COUNT:
        if (!ref_size(val, &v))
            return false;
        if (!strcmp(n, "CATENA_LARGE") && v < 4096)
            return false;
        if (!strcmp(n, "CATENA_ARENA"))
            o->arena = v;
        else if (!strcmp(n, "CATENA_LARGE"))
            o->large = v;
        else if (!strcmp(n, "CATENA_TRIM"))
            o->trim = v;
        else
            o->check = v;
        return true;
    case BOOL:
        if ((b = ref_bool(val)) < 0)
            return false;
        if (!strcmp(n, "CATENA_STATS"))
            o->stats = b;
        else if (!strcmp(n, "CATENA_HELP"))
            o->help = b;
        else if (!strcmp(n, "CATENA_TCACHE"))
            o->tcache = b;
        else
            o->abort_on_error = b;
        return true;
    default:
        o->trace = *val ? val : NULL;
        return true;
    }
}

/* ---- the harness ------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[4096];
    char *env[33];
    size_t nenv = 0, at = 0, nbad = 0;
    struct fuzz_in in = {data, size};
    /* entries: a name-picking byte, then text up to a NUL */
    while (in.n && nenv < 32 && at < sizeof text - 64) {
        unsigned pick = fuzz_byte(&in);
        env[nenv++] = text + at;
        if (pick < 2 * NNAMES) { /* half the choices: NAME= */
            at += (size_t)sprintf(text + at, "%s=", names[pick % NNAMES].name);
        }
        while (in.n && *in.p && at < sizeof text - 1)
            text[at++] = (char)fuzz_byte(&in);
        fuzz_byte(&in); /* the NUL */
        text[at++] = '\0';
    }
    env[nenv] = NULL;

    /* the expected options: defaults, then each entry in order */
    static const struct shim_opts dflt = {.large = 128 * 1024,
                                          .abort_on_error = true,
                                          .tcache = true,
                                          .trim = 1024 * 1024};
    struct shim_opts want = dflt;
    char bad[33][sizeof lines[0]];
    for (size_t i = 0; i < nenv; i++)
        for (size_t k = 0; k < NNAMES; k++) {
            size_t n = strlen(names[k].name);
            if (strncmp(env[i], names[k].name, n) || env[i][n] != '=')
                continue;
            if (!ref_apply(&want, k, env[i] + n + 1))
                snprintf(bad[nbad++], sizeof bad[0],
                         "catena: ignoring bad value %s", env[i]);
        }

    shim_opt = dflt;
    nlines = 0;
    char **saved = environ;
    environ = env;
    shim_opts_parse();
    environ = saved;

    CHECK(shim_opt.arena == want.arena && shim_opt.large == want.large);
    CHECK(shim_opt.check == want.check && shim_opt.trim == want.trim);
    CHECK(shim_opt.stats == want.stats && shim_opt.help == want.help);
    CHECK(shim_opt.tcache == want.tcache);
    CHECK(shim_opt.abort_on_error == want.abort_on_error);
    CHECK(shim_opt.trace == want.trace);
    CHECK(shim_opt.large >= 4096);
    CHECK(nlines == nbad);
    for (size_t i = 0; i < nbad && i < 64; i++) /* lines are truncated alike */
        CHECK(!strncmp(lines[i], bad[i], sizeof lines[0] - 1));
    return 0;
}
