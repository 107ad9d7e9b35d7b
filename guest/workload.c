/*
 * gangmig guest workload.
 *
 * Runs inside the test guest (started by /init).  Parameters come from
 * /proc/cmdline (or from argv[1], a cmdline-like string, for host testing):
 *
 *   gangmig.seed=N        per-VM seed (default 1)
 *   gangmig.mem_mib=M     anonymous memory to fill, MiB (default 64)
 *   gangmig.dirty_rate=R  pages/second re-dirtied after the fill (default 0)
 *   gangmig.shared_pct=P  percent of pages whose content is identical in
 *                         every VM (default 50)
 *
 * Page i is a "shared" page when hash(i) % 100 < P; this choice depends only
 * on i, so every VM has the same set of shared page indexes.  A shared page
 * holds content generated from a FIXED seed and i (byte-identical in all VMs
 * with the same P); any other page holds content generated from the per-VM
 * seed, i and a generation counter (unique to the VM).
 *
 * After the fill it prints "gangmig-guest: ready" on the console, then keeps
 * re-dirtying R random pages per second: a shared page gets its shared
 * content written again (the page is dirtied but still dedups against the
 * other VMs), any other page gets fresh unique content (generation + 1).
 * With R = 0 it just sleeps.
 *
 * Build: gcc -static -O2 -o gangmig-workload workload.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE 4096u
#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define SHARED_SEED 0x67616e676d696721ull /* "gangmig!" : same in every VM */
#define STEP_NS 10000000L                 /* 10 ms pacing step */

static int out_fd = -1;

static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    int fd = out_fd >= 0 ? out_fd : STDOUT_FILENO;
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (int)w;
    }
}

static inline uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t mix3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = a;
    s ^= splitmix64(&s) + b;
    s ^= splitmix64(&s) + c;
    return splitmix64(&s);
}

/* xorshift64* fill of one page from a 64-bit key (never all-zero). */
static void fill_page(uint64_t *page, uint64_t key)
{
    uint64_t x = key ? key : 0x2545f4914f6cdd1dull;
    for (unsigned i = 0; i < WORDS_PER_PAGE; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        page[i] = x * 0x2545f4914f6cdd1dull;
    }
}

static uint64_t g_seed = 1, g_mem_mib = 64, g_rate = 0, g_shared_pct = 50;

static int is_shared(uint64_t idx)
{
    return mix3(SHARED_SEED, idx, 0x5eed) % 100 < g_shared_pct;
}

static uint64_t shared_key(uint64_t idx) { return mix3(SHARED_SEED, idx, 0); }
static uint64_t unique_key(uint64_t idx, uint64_t gen)
{
    /* Distinct domain from shared_key (extra constant), per-VM seed. */
    return mix3(g_seed ^ 0x756e697175650000ull, idx, gen + 1);
}

static void parse_params(const char *cmdline)
{
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        const char *tok = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        size_t len = (size_t)(p - tok);
        char t[128];
        if (len == 0 || len >= sizeof t)
            continue;
        memcpy(t, tok, len);
        t[len] = 0;
        char *eq = strchr(t, '=');
        if (!eq || strncmp(t, "gangmig.", 8) != 0)
            continue;
        *eq = 0;
        const char *key = t + 8, *val = eq + 1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 0);
        if (errno || end == val || *end) {
            say("gangmig-guest: ignoring bad value %s=%s", t, val);
            continue;
        }
        if (!strcmp(key, "seed"))
            g_seed = v;
        else if (!strcmp(key, "mem_mib"))
            g_mem_mib = v;
        else if (!strcmp(key, "dirty_rate"))
            g_rate = v;
        else if (!strcmp(key, "shared_pct"))
            g_shared_pct = v > 100 ? 100 : v;
    }
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    out_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (out_fd < 0 || !isatty(out_fd)) {
        /* Host test run or no console: use stdout. */
        if (out_fd >= 0)
            close(out_fd);
        out_fd = -1;
    }
    if (argc > 1 && argv[1][0]) {
        if (out_fd >= 0) { /* explicit cmdline => host testing, use stdout */
            close(out_fd);
            out_fd = -1;
        }
        parse_params(argv[1]);
    } else {
        char buf[4096];
        int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = 0;
        parse_params(buf);
    }

    uint64_t npages = g_mem_mib * (1024 * 1024 / PAGE_SIZE);
    size_t bytes = (size_t)npages * PAGE_SIZE;
    uint8_t *mem = NULL;
    uint32_t *gen = NULL; /* per-page generation of unique content */
    if (npages) {
        mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        gen = calloc(npages, sizeof *gen);
        if (mem == MAP_FAILED || !gen) {
            say("gangmig-guest: error: cannot allocate %llu MiB: %s",
                (unsigned long long)g_mem_mib, strerror(errno));
            return 1;
        }
    }

    uint64_t t0 = now_ns(), nshared = 0;
    for (uint64_t i = 0; i < npages; i++) {
        uint64_t *pg = (uint64_t *)(mem + i * PAGE_SIZE);
        if (is_shared(i)) {
            fill_page(pg, shared_key(i));
            nshared++;
        } else {
            fill_page(pg, unique_key(i, 0));
        }
    }
    uint64_t t1 = now_ns();
    say("gangmig-guest: params seed=%llu mem_mib=%llu dirty_rate=%llu shared_pct=%llu "
        "pages=%llu shared_pages=%llu fill_ms=%llu",
        (unsigned long long)g_seed, (unsigned long long)g_mem_mib, (unsigned long long)g_rate,
        (unsigned long long)g_shared_pct, (unsigned long long)npages,
        (unsigned long long)nshared, (unsigned long long)((t1 - t0) / 1000000));
    say("gangmig-guest: ready");

    struct timespec step = {0, STEP_NS};
    if (g_rate == 0 || npages == 0) {
        for (;;)
            sleep(3600);
    }

    /* Re-dirty loop: keep the long-run rate at R pages/s, 10 ms steps. */
    uint64_t rng = mix3(g_seed, 0xd1e7, 0);
    uint64_t start = now_ns(), done = 0;
    for (;;) {
        nanosleep(&step, NULL);
        uint64_t due = (now_ns() - start) / 1000000ull * g_rate / 1000ull;
        /* After a long stall (VM paused), do not burst more than 1 s worth. */
        if (due > done + g_rate)
            done = due - g_rate;
        while (done < due) {
            uint64_t i = splitmix64(&rng) % npages;
            uint64_t *pg = (uint64_t *)(mem + i * PAGE_SIZE);
            if (is_shared(i))
                fill_page(pg, shared_key(i));
            else
                fill_page(pg, unique_key(i, ++gen[i]));
            done++;
        }
    }
}
