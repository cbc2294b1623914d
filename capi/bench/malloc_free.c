/* A C program that calls only malloc and free, in a loop: the allocator's speed as a C
 * program sees it, under whatever LD_PRELOAD supplies (`cargo xtask c-bench` sets
 * libacealloc against Debian's libmimalloc and glibc).
 *
 *   malloc_free [ops] [live]
 *
 * Keeps a ring of `live` blocks (default 1000): each step frees the oldest and allocates a
 * new one of 16 to 1024 bytes (a fixed xorshift sequence, so every allocator sees the same
 * requests); every 64th request is 1 to 16 KiB. Each block's first byte is written, so a block
 * is touched as a program would. Prints the steps per second on one line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long ops = argc > 1 ? atol(argv[1]) : 20000000;
    long live = argc > 2 ? atol(argv[2]) : 1000;
    char **ring = calloc((size_t)live, sizeof *ring);
    if (!ring) return 1;
    uint64_t s = 0x2545F4914F6CDD1Dull;
    unsigned long checksum = 0;
    double start = now();
    for (long i = 0; i < ops; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t size = (i & 63) == 0 ? 1024 + (size_t)(s >> 20) % 15360 : 16 + (size_t)(s >> 40) % 1009;
        long slot = i % live;
        if (ring[slot]) {
            checksum += (unsigned char)ring[slot][0];
            free(ring[slot]);
        }
        char *p = malloc(size);
        if (!p) return 1;
        p[0] = (char)i;
        ring[slot] = p;
    }
    double elapsed = now() - start;
    for (long i = 0; i < live; i++) free(ring[i]);
    free(ring);
    printf("%.0f ops/s (checksum %lu)\n", (double)ops / elapsed, checksum);
    return 0;
}
