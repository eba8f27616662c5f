/*
 * ksm-pages: map anonymous private memory, fill it with a page pattern,
 * mark it MADV_MERGEABLE and follow simple commands on stdin, so that the
 * real Linux KSM (ksmd) can be observed on a known pattern.
 *
 * Build: cc -O2 -pthread -o ksm-pages ksm-pages.c
 *
 * Usage: ksm-pages [--distinct D] [--copies C] [--zero Z] [--unique U]
 *                  [--salt S]
 *
 * Layout (page index i):
 *   [0, D*C)          distinct groups, copy-major: page c*D + d holds content d
 *                     (so the first page of group d is page d)
 *   [D*C, D*C+Z)      zero pages (a zero byte is written so they are present)
 *   [D*C+Z, +U)       unique pages
 * Every non-zero page is filled with 64-bit words derived from (salt, kind,
 * index): contents never collide with each other, with zero pages, or with
 * another instance that uses a different salt.
 *
 * Protocol: after setup prints "ready <pid> <pages>" on stdout.  Then reads
 * one command per line and answers exactly one line, "ok ..." or "err ...":
 *   volatile K [periodMs]  make the first K unique pages identical to each
 *                          other, then rewrite their first word (same value
 *                          in all K) every periodMs (default 2) from a
 *                          thread: they would merge if they held still, but
 *                          their checksum changes between two ksmd visits
 *   stopvolatile           stop that thread
 *   write K                write one byte into the first page of K distinct
 *                          groups (breaks KSM COW on those pages)
 *   ping                   liveness check
 *   exit                   unmap and exit
 * EOF on stdin (parent gone) exits too; PR_SET_PDEATHSIG covers a parent
 * that dies without closing the pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif

static long page_size;
static unsigned char *region;
static size_t npages, n_distinct, n_copies, n_zero, n_unique;
static uint64_t salt;

static pthread_t vol_thread;
static atomic_int vol_running;
static size_t vol_count;
static long vol_period_ms = 2;

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static unsigned char *page_at(size_t i)
{
	return region + i * (size_t)page_size;
}

static void fill_page(size_t i, uint64_t kind, uint64_t index)
{
	uint64_t *w = (uint64_t *)page_at(i);
	uint64_t seed = mix64(salt ^ (kind << 56) ^ index);
	size_t n = (size_t)page_size / sizeof(uint64_t);

	for (size_t k = 0; k < n; k++)
		w[k] = mix64(seed + k);
}

static size_t first_unique(void)
{
	return n_distinct * n_copies + n_zero;
}

static void *volatile_main(void *arg)
{
	uint64_t gen = 0;
	struct timespec ts = { vol_period_ms / 1000, (vol_period_ms % 1000) * 1000000L };

	(void)arg;
	while (atomic_load(&vol_running)) {
		uint64_t v = mix64(salt ^ 0x766f6cULL ^ ++gen);

		for (size_t k = 0; k < vol_count; k++)
			((volatile uint64_t *)page_at(first_unique() + k))[0] = v;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end != '\0')
		return -1;
	*out = (size_t)v;
	return 0;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void stop_volatile(void)
{
	if (atomic_load(&vol_running)) {
		atomic_store(&vol_running, 0);
		pthread_join(vol_thread, NULL);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: ksm-pages [--distinct D] [--copies C] [--zero Z] "
			"[--unique U] [--salt S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char line[256];
	size_t groups_written = 0;

	n_copies = 1;
	salt = mix64((uint64_t)getpid() ^ ((uint64_t)time(NULL) << 20));
	for (int i = 1; i < argc; i++) {
		size_t *dst = NULL;
		size_t v;

		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--distinct"))
			dst = &n_distinct;
		else if (!strcmp(argv[i], "--copies"))
			dst = &n_copies;
		else if (!strcmp(argv[i], "--zero"))
			dst = &n_zero;
		else if (!strcmp(argv[i], "--unique"))
			dst = &n_unique;
		else if (!strcmp(argv[i], "--salt")) {
			if (parse_size(argv[++i], &v))
				usage();
			salt = mix64(v);
			continue;
		} else
			usage();
		if (parse_size(argv[++i], dst))
			usage();
	}

	/* Die with the parent even if it cannot close our stdin. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;

	page_size = sysconf(_SC_PAGESIZE);
	npages = n_distinct * n_copies + n_zero + n_unique;
	if (npages == 0) {
		reply("err empty pattern");
		return 2;
	}
	region = mmap(NULL, npages * (size_t)page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		reply("err mmap: %s", strerror(errno));
		return 1;
	}
	/* Keep 4 KiB pages: a THP would have to be split before merging. */
	madvise(region, npages * (size_t)page_size, MADV_NOHUGEPAGE);

	for (size_t c = 0; c < n_copies; c++)
		for (size_t d = 0; d < n_distinct; d++)
			fill_page(c * n_distinct + d, 1, d);
	for (size_t z = 0; z < n_zero; z++)
		*(volatile unsigned char *)page_at(n_distinct * n_copies + z) = 0;
	for (size_t u = 0; u < n_unique; u++)
		fill_page(first_unique() + u, 2, u);

	if (madvise(region, npages * (size_t)page_size, MADV_MERGEABLE)) {
		reply("err madvise(MADV_MERGEABLE): %s", strerror(errno));
		return 1;
	}
	reply("ready %ld %zu", (long)getpid(), npages);

	while (fgets(line, sizeof(line), stdin)) {
		char cmd[32];
		long long k = 0, p = 0;
		int n;

		line[strcspn(line, "\r\n")] = '\0';
		n = sscanf(line, "%31s %lld %lld", cmd, &k, &p);
		if (n < 1)
			continue;
		if (!strcmp(cmd, "volatile") && n >= 2) {
			if (k < 0 || (size_t)k > n_unique) {
				reply("err volatile %lld > unique %zu", k, n_unique);
				continue;
			}
			stop_volatile();
			vol_count = (size_t)k;
			for (size_t j = 0; j < vol_count; j++)
				fill_page(first_unique() + j, 3, 0);
			vol_period_ms = (n >= 3 && p > 0) ? p : 2;
			atomic_store(&vol_running, 1);
			if (pthread_create(&vol_thread, NULL, volatile_main, NULL)) {
				atomic_store(&vol_running, 0);
				reply("err pthread_create");
				continue;
			}
			reply("ok volatile %zu %ld", vol_count, vol_period_ms);
		} else if (!strcmp(cmd, "stopvolatile")) {
			stop_volatile();
			reply("ok stopvolatile");
		} else if (!strcmp(cmd, "write") && n >= 2) {
			if (k < 0 || groups_written + (size_t)k > n_distinct) {
				reply("err write %lld: only %zu groups left", k,
				      n_distinct - groups_written);
				continue;
			}
			for (long long j = 0; j < k; j++) {
				volatile unsigned char *b = page_at(groups_written++);
				*b = (unsigned char)(*b ^ 0xff);
			}
			reply("ok write %lld", k);
		} else if (!strcmp(cmd, "ping")) {
			reply("ok ping");
		} else if (!strcmp(cmd, "exit")) {
			break;
		} else {
			reply("err unknown command: %s", line);
		}
	}
	stop_volatile();
	munmap(region, npages * (size_t)page_size);
	reply("ok exit");
	return 0;
}
