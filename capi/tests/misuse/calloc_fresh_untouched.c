// expect: ok
/* A large calloc of pages never used is not cleared again: fresh pages from the system read
 * as zero already, and clearing them would back every one (the resident set would grow by
 * the block). Its bytes read as zero all the same; once dirtied, freed and calloc'd again,
 * the reused block is cleared. */
#include "suite.h"
#include <unistd.h>

static long resident_kib(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f);
    CHECK(fscanf(f, "%ld %ld", &size, &resident) == 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
    const size_t size = 64 << 20;
    long before = resident_kib();
    unsigned char *p = calloc(1, size);
    CHECK(p);
    long grown = resident_kib() - before;
    if (grown >= 8 << 10) {
        fprintf(stderr, "calloc of 64 MiB of fresh pages backed %ld KiB of them\n", grown);
        return 1;
    }
    for (size_t i = 0; i < size; i += 61) CHECK(p[i] == 0);
    memset(p, 0xA5, size);
    free(p);
    p = calloc(1, size);
    CHECK(p);
    for (size_t i = 0; i < size; i += 61) CHECK(p[i] == 0);
    free(p);
    return 0;
}
