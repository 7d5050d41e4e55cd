/* The C ABI in one file: a subscriber and a publisher in one process, N messages through a
 * sequencer (half offered, half written in place by try_claim while the publisher runs on its own
 * thread), every one delivered once, in order (repaired when the network drops some).
 *   cc c_roundtrip.c $(pkg-config --libs seqcast) -I$(pkg-config --variable=includedir seqcast)
 *   ./c_roundtrip SEQUENCER GROUP [N]      e.g. 127.0.0.1:40000 239.1.1.1:40001 10000 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <seqcast/seqcast.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tally {
    uint64_t delivered, repaired, lost, next;
    int out_of_order;
};

static void on_message(const seqcast_message* m, void* user) {
    struct tally* t = user;
    if (m->offset != t->next) t->out_of_order = 1;
    t->next = m->offset + 1;
    t->delivered++;
    t->repaired += m->repaired ? 1 : 0;
}

static void on_loss(uint64_t first, uint64_t count, void* user) {
    struct tally* t = user;
    fprintf(stderr, "lost offsets [%llu, %llu)\n", (unsigned long long)first, (unsigned long long)(first + count));
    t->lost += count;
    t->next = first + count;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SEQUENCER GROUP [N]\n", argv[0]);
        return 2;
    }
    const uint64_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000;
    seqcast_publisher_options po;
    seqcast_publisher_options_init(&po);
    po.window = 3; /* not a power of two: refused, and the error names the field */
    seqcast_publisher* pub = NULL;
    if (seqcast_publisher_create(&po, NULL, NULL, &pub) != SEQCAST_ERR_SETUP || strcmp(seqcast_last_error_field(), "window") != 0) {
        fprintf(stderr, "a bad window was not refused by name\n");
        return 1;
    }
    po.window = 1024;
    po.sequencer = argv[1];
    seqcast_subscriber_options so;
    seqcast_subscriber_options_init(&so);
    so.group = argv[2];
    seqcast_subscriber* sub = NULL;
    if (seqcast_subscriber_create(&so, &sub) != SEQCAST_OK || seqcast_publisher_create(&po, NULL, NULL, &pub) != SEQCAST_OK) {
        fprintf(stderr, "%s: %s\n", seqcast_last_error_field(), seqcast_last_error());
        return 1;
    }
    struct tally t = {0, 0, 0, 0, 0};
    const double deadline = now_s() + 120;
    while (!seqcast_subscriber_started(sub) && now_s() < deadline) seqcast_subscriber_poll(sub, on_message, on_loss, &t);
    t.next = seqcast_subscriber_next_offset(sub);
    /* The first half is offered from this thread, which drives the publisher; the second half is
     * written in place (try_claim) while the publisher's own thread drives it. */
    char msg[64];
    for (uint64_t i = 0; i < n && now_s() < deadline;) {
        if (i == n / 2 && seqcast_publisher_start_thread(pub, NULL) != SEQCAST_OK) {
            fprintf(stderr, "%s\n", seqcast_last_error());
            return 1;
        }
        const int len = snprintf(msg, sizeof msg, "message %llu", (unsigned long long)i);
        void* buf = NULL;
        if (i < n / 2) {
            if (seqcast_publisher_offer(pub, msg, (size_t)len) == SEQCAST_OFFER_ACCEPTED) i++;
            seqcast_publisher_do_work(pub);
        } else if (seqcast_publisher_try_claim(pub, sizeof msg, &buf) == SEQCAST_OFFER_ACCEPTED) {
            memcpy(buf, msg, (size_t)len);
            seqcast_publisher_commit(pub, (size_t)len);
            i++;
        }
        seqcast_subscriber_poll(sub, on_message, on_loss, &t);
    }
    while (t.delivered + t.lost < n && now_s() < deadline) seqcast_subscriber_poll(sub, on_message, on_loss, &t);
    seqcast_publisher_stop_thread(pub);
    printf("c_roundtrip: %llu delivered (%llu repaired), %llu lost, %s, publisher %u\n", (unsigned long long)t.delivered,
           (unsigned long long)t.repaired, (unsigned long long)t.lost, t.out_of_order ? "OUT OF ORDER" : "in order",
           seqcast_publisher_id(pub));
    seqcast_publisher_close(pub);
    seqcast_subscriber_close(sub);
    return t.delivered == n && t.lost == 0 && !t.out_of_order ? 0 : 1;
}
