/* Eight threads, each sending 8000 malloc'd messages of 8 B to 64 KiB (a few larger) to the
 * next thread's queue and receiving from the previous one's: the receiver checks each
 * message's contents and frees it, so most frees happen on another thread than the malloc.
 * Each thread also grows and shrinks a buffer with realloc and keeps a churning set of blocks.
 * The output (message counts and checksums per thread) depends only on the seeds. An
 * allocation that fails ends the whole process at once, loudly: a thread that stopped would
 * leave the next one waiting forever for its messages. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 8, MESSAGES = 8000, KEEP = 256 };

struct message {
    struct message *next;
    size_t size;
    uint64_t seed;
    unsigned char bytes[];
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct message *head, *tail;
};

static struct queue queues[THREADS];
static uint64_t sent_sum[THREADS], received_sum[THREADS], realloc_sum[THREADS];
static int bad[THREADS];

/* An allocation failed: say which and end every thread (exit status 2). */
static void out_of_memory(int me, const char *call, size_t size) {
    fprintf(stderr, "thread %d: %s of %zu bytes failed\n", me, call, size);
    exit(2);
}

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t message_size(uint64_t *s) {
    uint64_t r = next(s);
    if (r % 500 == 0) return 100000 + r % 400000;
    return 8 + (size_t)(r >> 8) % ((r & 1) ? 256 : 65536);
}

static void push(struct queue *q, struct message *m) {
    pthread_mutex_lock(&q->lock);
    m->next = NULL;
    if (q->tail) q->tail->next = m; else q->head = m;
    q->tail = m;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

static struct message *pop(struct queue *q) {
    pthread_mutex_lock(&q->lock);
    while (!q->head) pthread_cond_wait(&q->ready, &q->lock);
    struct message *m = q->head;
    q->head = m->next;
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    return m;
}

static void *run(void *arg) {
    int me = (int)(intptr_t)arg;
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(me + 1);
    void *keep[KEEP] = {0};
    unsigned char *buf = NULL;
    size_t buf_len = 0;
    for (int i = 0; i < MESSAGES; i++) {
        size_t size = message_size(&s);
        struct message *m = malloc(sizeof *m + size);
        if (!m) out_of_memory(me, "malloc", sizeof *m + size);
        m->size = size;
        m->seed = next(&s);
        for (size_t k = 0; k < size; k++) m->bytes[k] = (unsigned char)(m->seed >> (k % 8 * 8)) + (unsigned char)k;
        sent_sum[me] += m->seed ^ size;
        push(&queues[(me + 1) % THREADS], m);

        struct message *in = pop(&queues[me]);
        for (size_t k = 0; k < in->size; k++)
            if (in->bytes[k] != (unsigned char)((unsigned char)(in->seed >> (k % 8 * 8)) + (unsigned char)k)) { bad[me]++; break; }
        received_sum[me] += in->seed ^ in->size;
        free(in);

        int slot = (int)(next(&s) % KEEP);
        free(keep[slot]);
        size_t kept = 16 + next(&s) % 2000;
        keep[slot] = calloc(1, kept);
        if (!keep[slot]) out_of_memory(me, "calloc", kept);

        size_t want = (size_t)(next(&s) % 50000);
        unsigned char *grown = realloc(buf, want + 1);
        if (!grown) out_of_memory(me, "realloc", want + 1);
        size_t same = buf_len < want + 1 ? buf_len : want + 1;
        for (size_t k = 0; k < same; k += 4096) realloc_sum[me] += grown[k];
        memset(grown, me + i, want + 1);
        buf = grown;
        buf_len = want + 1;
    }
    free(buf);
    for (int k = 0; k < KEEP; k++) free(keep[k]);
    return NULL;
}

int main(void) {
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        pthread_mutex_init(&queues[t].lock, NULL);
        pthread_cond_init(&queues[t].ready, NULL);
    }
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, run, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    int failed = 0;
    for (int t = 0; t < THREADS; t++) {
        printf("thread %d: sent %016llx received %016llx realloc %llu bad %d\n", t,
               (unsigned long long)sent_sum[t], (unsigned long long)received_sum[t],
               (unsigned long long)realloc_sum[t], bad[t]);
        failed |= bad[t];
    }
    return failed ? 1 : 0;
}
