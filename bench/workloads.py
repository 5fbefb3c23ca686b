#!/usr/bin/python3
"""workloads.py - real-program workloads under an LD_PRELOAD allocator.

    workloads.py [--shim PATH] [--alloc NAME[,NAME...]] [--peer NAME=SO]
                 [WORKLOAD...]

NAME: catena (libcatena-preload.so, --shim), jemalloc, mimalloc, glibc
(nothing preloaded); --peer jemalloc=/path/libjemalloc.so.2 overrides where
a peer library is.  WORKLOAD: redis, python, sqlite (default: all).
Prints one line per run, for bench/ to collect:

    workload=redis alloc=catena secs=4.21 peak_rss_kib=123456 frag_fill=1.20 ...

redis: fill 300k keys of 200 B, delete 80 %, refill to the same number of
keys; mem_fragmentation_ratio (RSS / used_memory) after each phase.
python: PYTHONMALLOC=malloc dict/list/str churn.  sqlite: in-memory
inserts, index, deletes, queries.  Missing programs are skipped.
"""
import os, resource, shutil, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = {"jemalloc": LIBDIR + "/libjemalloc.so.2",
         "mimalloc": LIBDIR + "/libmimalloc.so.2"}

PY_CHURN = r"""
import random
random.seed(1)
live = {}
for step in range(600000):
    k = random.randrange(100000)
    r = random.random()
    if r < 0.4:
        live[k] = "s" * random.randrange(1, 200)
    elif r < 0.7:
        live[k] = [k] * random.randrange(0, 40)
    elif r < 0.8:
        live[k] = {i: str(i) for i in range(random.randrange(1, 20))}
    else:
        live.pop(k, None)
print(len(live))
"""

SQL = """
create table t(a integer primary key, b integer, c text);
insert into t select value, value * 7 % 1000003, hex(randomblob(value % 200))
  from generate_series(1, 400000);
create index tb on t(b);
delete from t where a % 3 = 0;
update t set c = c || c where a % 5 = 0;
select count(*), sum(b) from t where b between 1000 and 900000;
select count(*) from t a join t b on a.b = b.a where a.a < 50000;
"""


def env_for(alloc, shim):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    if alloc == "catena":
        e["LD_PRELOAD"] = shim
    elif alloc in PEERS:
        e["LD_PRELOAD"] = PEERS[alloc]
    return e


def timed(cmd, env, stdin=None):
    """Run cmd once; seconds, the child's own peak RSS (KiB, from wait4)
    and its output."""
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
            tempfile.TemporaryFile() as ferr:
        if stdin:
            fin.write(stdin.encode())
            fin.seek(0)
        t = time.time()
        p = subprocess.Popen(cmd, env=env, stdin=fin, stdout=fout,
                             stderr=ferr)
        # reap it ourselves: wait4 gives this child's own rusage
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.time() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read().decode(), ferr.read().decode()
    if p.returncode:
        raise RuntimeError("%s failed: %s" % (cmd[0], err[-500:]))
    return secs, ru.ru_maxrss, out


def run_python(alloc, shim):
    env = env_for(alloc, shim)
    env["PYTHONMALLOC"] = "malloc"
    s, peak, out = timed(["/usr/bin/python3", "-c", PY_CHURN], env)
    return {"secs": "%.2f" % s, "peak_rss_kib": peak, "out": out.strip()}


def run_sqlite(alloc, shim):
    s, peak, out = timed(["sqlite3", ":memory:"], env_for(alloc, shim), SQL)
    return {"secs": "%.2f" % s, "peak_rss_kib": peak,
            "out": out.strip().replace("\n", ";")}


def redis_cmds(lo, hi, size):
    return "".join("SET key:%d %s\r\n" % (i, ("%08d" % i) * (size // 8))
                   for i in range(lo, hi)).encode()


def run_redis(alloc, shim, keys=300000):
    port = free_port()
    d = tempfile.mkdtemp(prefix="catena-redis.")
    env = env_for(alloc, shim)
    if alloc == "glibc":  # Debian's redis links jemalloc itself
        return None
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind",
                            "127.0.0.1", "--save", "", "--appendonly", "no",
                            "--dir", d], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    t0 = time.time()
    try:
        cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
        for _ in range(100):
            if subprocess.run(cli + ["ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.1)

        def pipe(data):
            subprocess.run(cli + ["--pipe"], input=data, check=True,
                           capture_output=True)

        def info():
            out = subprocess.run(cli + ["info", "memory"], capture_output=True,
                                 text=True).stdout
            f = dict(l.strip().split(":", 1) for l in out.splitlines() if ":" in l)
            return f

        def hwm():
            with open("/proc/%d/status" % srv.pid) as f:
                for l in f:
                    if l.startswith("VmHWM:"):
                        return int(l.split()[1])
            return 0

        res = {}
        pipe(redis_cmds(0, keys, 200))
        res["frag_fill"] = info()["mem_fragmentation_ratio"]
        pipe("".join("DEL key:%d\r\n" % i for i in range(keys)
                     if i % 5).encode())
        time.sleep(1)  # let RSS settle (jemalloc purges with a delay)
        res["frag_delete"] = info()["mem_fragmentation_ratio"]
        pipe(redis_cmds(keys, keys + keys * 4 // 5, 200))
        f = info()
        res["frag_refill"] = f["mem_fragmentation_ratio"]
        res["used_kib"] = int(f["used_memory"]) // 1024
        res["rss_kib"] = int(f["used_memory_rss"]) // 1024
        res["peak_rss_kib"] = hwm()
        res["secs"] = "%.2f" % (time.time() - t0)
        return res
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(d, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main(argv):
    shim = os.path.join(HERE, "..", ".libs", "libcatena-preload.so")
    for cand in (shim, os.path.join(os.getcwd(), ".libs",
                                    "libcatena-preload.so")):
        if os.path.exists(cand):
            shim = cand
    allocs = ["catena", "jemalloc", "mimalloc", "glibc"]
    works = []
    i = 0
    while i < len(argv):
        if argv[i] == "--shim":
            shim, i = argv[i + 1], i + 2
        elif argv[i] == "--alloc":
            allocs, i = argv[i + 1].split(","), i + 2
        elif argv[i] == "--peer":
            name, _, path = argv[i + 1].partition("=")
            if path:
                PEERS[name] = path
            i += 2
        elif argv[i] in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            works.append(argv[i])
            i += 1
    works = works or ["redis", "python", "sqlite"]
    need = {"redis": ["redis-server", "redis-cli"], "python": ["/usr/bin/python3"],
            "sqlite": ["sqlite3"]}
    fns = {"redis": run_redis, "python": run_python, "sqlite": run_sqlite}
    for w in works:
        if not all(shutil.which(p) for p in need[w]):
            print("workload=%s skipped=missing-program" % w)
            continue
        for a in allocs:
            if a == "catena" and not os.path.exists(shim):
                print("workload=%s alloc=catena skipped=no-shim" % w)
                continue
            if a in PEERS and not os.path.exists(PEERS[a]):
                continue
            r = fns[w](a, shim)
            if r is None:
                print("workload=%s alloc=%s skipped=links-jemalloc" % (w, a))
                continue
            print("workload=%s alloc=%s %s" % (w, a, " ".join(
                "%s=%s" % (k, str(v).replace(" ", "_")) for k, v in r.items())),
                flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
