/*
 * replay.c - main() for a harness built without libFuzzer: run the harness
 * on every file of its corpus directory (FUZZ_CORPUS, compiled in) and of
 * the directories or files named on the command line.  A harness reports
 * a failure by aborting, so the exit status says whether all passed.
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64 /* 32-bit builds: readdir fails on 64-bit inodes */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static size_t run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* a heap copy of exactly n bytes, so that ASan sees overreads */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        exit(1);
    memcpy(copy, buf, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 1;
}

static size_t run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(1);
    }
    size_t n = 0;
    struct dirent *e;
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        n += run_path(sub);
    }
    if (errno) {
        perror(path);
        exit(1);
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    size_t n = 0;
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            n += run_path(argv[i]);
    else
        n = run_path(FUZZ_CORPUS);
    /* an empty corpus would make this test pass vacuously */
    if (!n) {
        printf("%s: no inputs found\n", argv[0]);
        return 1;
    }
    printf("%s: %zu inputs replayed, all passed\n", argv[0], n);
    return 0;
}
