/*
 * record.c - the traces of workloads replay and python3: sqlite3 and a
 * python3 request loop run under libcatena-preload.so with CATENA_TRACE,
 * or a trace given with --trace, or (no shim, no sqlite3) a synthetic one.
 */
#define _GNU_SOURCE
#include "ctx.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* A small web-request loop for python3, run under the shim to record a
 * real program's trace (PYTHONMALLOC=malloc: every object is a malloc). */
static const char py_script[] =
    "import json, re, sys\n"
    "cache = {}\n"
    "out = []\n"
    "pat = re.compile(r'(\\w+)=(\\d+)')\n"
    "for i in range(int(sys.argv[1])):\n"
    "    req = json.dumps({'id': i, 'path': '/item/%d' % (i % 97),\n"
    "                      'q': 'a=%d&b=%d' % (i, i * 7), 'body': 'x' * (i % "
    "700)})\n"
    "    r = json.loads(req)\n"
    "    params = dict(pat.findall(r['q']))\n"
    "    words = r['body'].split('x')[:20]\n"
    "    resp = '<html>%s %s %d</html>' % (r['path'], params, len(words))\n"
    "    if i % 10 == 0:\n"
    "        cache[r['path']] = resp * (1 + i % 5)\n"
    "    out.append(len(resp))\n"
    "    if len(out) > 500:\n"
    "        out = out[250:]\n"
    "print(len(cache), sum(out))\n";

static const char sql_script[] =
    "create table kv(k integer primary key, v text, b blob);\n"
    "with recursive c(x) as (select 1 union all select x+1 from c where x < "
    "3000)\n"
    "insert into kv select x, printf('value-%d-%s', x, substr(hex("
    "zeroblob(200)), 1, x % 300)), zeroblob(x % 1000) from c;\n"
    "create index kv_v on kv(v);\n"
    "delete from kv where k % 5 != 0;\n"
    "with recursive c(x) as (select 1 union all select x+1 from c where x < "
    "2000)\n"
    "insert into kv select 10000 + x, printf('new-%d', x), zeroblob(500 + x "
    "% 3000) from c;\n"
    "select count(*), sum(length(b)) from kv;\n"
    "select v from kv order by v limit 3;\n";

/* Record `prog` under the shim into path: the script text goes to a file
 * in the output directory, given as argument (python3, with `arg`) or as
 * standard input (sqlite3).  0 or -1. */
static int record_prog(const struct bench_ctx *ctx, const char *prog,
                       const char *sname, const char *text, bool on_stdin,
                       const char *arg, const char *path)
{
    if (!ctx->driver_path[A_PRELOAD][0] || !ctx->opt.preload)
        return -1;
    char script[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s/%s", ctx->opt.out, sname);
    FILE *f = fopen(script, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    unlink(path);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        if (on_stdin) {
            int in = open(script, O_RDONLY);
            if (in < 0)
                _exit(126);
            dup2(in, 0);
        }
        setenv("CATENA_TRACE", path, 1);
        setenv("PYTHONMALLOC", "malloc", 1);
        setenv("LD_PRELOAD", ctx->opt.preload, 1);
        if (on_stdin)
            execlp(prog, prog, arg, (char *)NULL);
        else
            execlp(prog, prog, script, arg, (char *)NULL);
        _exit(127);
    }
    int st = 1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && file_ok(path)
               ? 0
               : -1;
}

/* Workload W_REPLAY (--trace FILE, else sqlite3 recorded now, else a
 * synthetic trace) or W_PYTHON (python3 recorded now).  false: skip. */
/* Documented in ctx.h. */
bool load_trace(struct bench_ctx *ctx, int w, struct bstream *s)
{
    char err[512], path[PATH_MAX + 64], *note = ctx->trace_note[w == W_PYTHON];
    size_t nlen = sizeof ctx->trace_note[0];
    int iters = 300;
    if (w == W_PYTHON) {
        snprintf(path, sizeof path, "%s/python3.trace", ctx->opt.out);
        char arg[32];
        snprintf(arg, sizeof arg, "%d", iters);
        if (record_prog(ctx, "python3", "python3-workload.py", py_script,
                        false, arg, path) != 0 ||
            trace_load(path, s, err, sizeof err) != 0)
            return false;
        snprintf(note, nlen,
                 "`python3 python3-workload.py %d` (a JSON request loop: "
                 "json.dumps/loads, a regex, string formatting, a dict "
                 "cache; the script is in the output directory) recorded by "
                 "libcatena-preload.so with CATENA_TRACE and "
                 "PYTHONMALLOC=malloc, start-up and exit included "
                 "(`python3.trace`).",
                 iters);
        s->name = "python3";
        s->title = "trace replay: python3";
    } else if (ctx->opt.trace) {
        if (trace_load(ctx->opt.trace, s, err, sizeof err) != 0)
            die("%s", err);
        snprintf(note, nlen, "replayed `%s`.", ctx->opt.trace);
        s->name = "replay";
        s->title = "trace replay";
    } else {
        snprintf(path, sizeof path, "%s/sqlite3.trace", ctx->opt.out);
        if (record_prog(ctx, "sqlite3", "sqlite3-workload.sql", sql_script,
                        true, ":memory:", path) == 0 &&
            trace_load(path, s, err, sizeof err) == 0) {
            snprintf(note, nlen,
                     "`sqlite3 :memory: < sqlite3-workload.sql` (create a "
                     "table of 3000 rows of text and blobs, index it, delete "
                     "80 %%, insert 2000 larger rows, query; the script is "
                     "in the output directory) recorded by "
                     "libcatena-preload.so with CATENA_TRACE "
                     "(`sqlite3.trace`).");
            s->title = "trace replay: sqlite3";
        } else {
            /* no shim or no sqlite3: the kv workload (a quarter of its
             * scale) written as a trace, which exercises the trace path */
            struct wparams p = ctx->opt.wp;
            p.scale *= 0.25;
            struct bstream k;
            workload_gen(W_KV, &p, &k);
            snprintf(path, sizeof path, "%s/synthetic.trace", ctx->opt.out);
            if (trace_save(&k, path) != 0)
                die("cannot write %s", path);
            bstream_free(&k);
            if (trace_load(path, s, err, sizeof err) != 0)
                die("%s", err);
            snprintf(note, nlen,
                     "the shim or sqlite3 is missing, so the `kv` workload "
                     "at a quarter of its scale was written as a trace "
                     "(`synthetic.trace`) and replayed: this checks the "
                     "trace path, it is not a real program.");
            s->title = "trace replay: synthetic";
        }
        s->name = "replay";
    }
    s->desc = "Replay of an allocation trace in the format of "
              "include/catena_trace.h (object ids mapped to slots; failed "
              "allocations skipped; frees of memory allocated before the "
              "recording ignored).";
    return true;
}
