/* seqcast: the C ABI (libseqcast; `pkg-config --cflags --libs seqcast`).
 *
 * The same engine as the C++ API (seqcast.hpp), for C programs and language bindings (the Python
 * package `seqcast` uses it through ctypes). Opaque handles; functions that can fail return a
 * seqcast_status (0 or a negative code) and leave a message, and the name of the option at fault,
 * for seqcast_last_error() / seqcast_last_error_field() on the calling thread. Callbacks take a
 * user pointer and run inside the poll or do_work call that delivers them, on its thread.
 *
 * Threading is the C++ API's: a handle is used from one thread at a time; nothing runs in the
 * background. Options structs are filled with the CLI's defaults by their *_init function first;
 * the strings they point to are copied by create() and need not outlive it.
 *
 * ABI: SEQCAST_ABI_VERSION changes when a declaration here changes incompatibly (the soname's major
 * version with it). Each options struct starts with its own size, set by *_init, so a library can
 * accept structs from programs built against an older header that lacked later fields. */
#ifndef SEQCAST_SEQCAST_H
#define SEQCAST_SEQCAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEQCAST_ABI_VERSION 1

typedef enum seqcast_status {
    SEQCAST_OK = 0,
    SEQCAST_ERR_SETUP = -1,    /* a setting is not valid, or the socket or file it names could not be
                                  opened: seqcast_last_error_field() names the option ("max_message",
                                  "network.rcvbuf", "journal", ...) */
    SEQCAST_ERR_ARGUMENT = -2, /* a NULL handle or pointer, or an options struct of unknown size */
    SEQCAST_ERR_INTERNAL = -3  /* anything else (out of memory) */
} seqcast_status;

int seqcast_abi_version(void);
/* The last failure on this thread: its message and the option it concerns ("" when none). */
const char* seqcast_last_error(void);
const char* seqcast_last_error_field(void);
/* CRC32C (Castagnoli), incremental: start with 0xFFFFFFFF, finish with ~state. The checksum the
 * wire format and the CLI's digests use, for applications that verify what they received. */
uint32_t seqcast_crc32c_update(uint32_t state, const void* data, size_t length);

typedef struct seqcast_network_options {
    const char* interface; /* interface address for multicast send and joins ("127.0.0.1") */
    int32_t ttl;           /* multicast TTL (1) */
    int32_t loopback;      /* deliver multicast to receivers on this host (1) */
    uint64_t rcvbuf;       /* socket receive buffer, bytes (8 MiB) */
    uint64_t sndbuf;       /* socket send buffer, bytes (4 MiB) */
    int32_t use_uring;     /* io_uring sockets instead of recvmmsg/sendmmsg (0) */
    const char* auth_key_file; /* non-empty: authenticated frames ("") */
} seqcast_network_options;

/* More network settings, added after seqcast_network_options; each options struct below ends with
 * one, so a program built before it (passing the older size) still works and gets the defaults. */
typedef struct seqcast_network_extra {
    int32_t gso;          /* UDP GSO: runs of equal-size datagrams leave in one send (1) */
    int32_t gro;          /* UDP GRO: the kernel may coalesce arriving datagrams (1) */
    const char* allow;    /* receive only from these IPv4 networks ("10.1.0.0/16,127.0.0.1"); NULL or "": all */
    uint32_t auth_key_id; /* the key to sign with; 0: the highest id in auth_key_file */
} seqcast_network_extra;

/* ---- Publisher ---------------------------------------------------------------------------- */

typedef struct seqcast_publisher_options {
    uint32_t size; /* sizeof(seqcast_publisher_options), set by init */
    uint32_t stream;
    const char* sequencer; /* the sequencer's control address HOST:PORT */
    const char* bind;      /* local address (port 0: any) */
    uint32_t id;           /* 0: from the journal, else random */
    const char* journal;   /* "" or a journal file: restart without loss or duplicates */
    uint64_t mtu;
    uint32_t window;       /* unconfirmed messages (a power of two, <= 4096) */
    uint64_t window_bytes;
    uint32_t max_message;
    seqcast_network_options network;
    seqcast_network_extra network_extra;
} seqcast_publisher_options;

typedef struct seqcast_confirmation {
    uint64_t pub_seq;
    uint64_t offset;       /* the offset of its last fragment */
    int32_t offset_known;  /* 0: the sequencer had it already but no longer remembered where */
    uint64_t latency_ns;   /* offer to confirmation */
} seqcast_confirmation;

typedef enum seqcast_offer_result {
    SEQCAST_OFFER_ACCEPTED = 0,       /* copied; sent by the next do_work */
    SEQCAST_OFFER_BACK_PRESSURED = 1, /* the window is full: do_work, then offer again */
    SEQCAST_OFFER_TOO_LARGE = 2,
    SEQCAST_OFFER_NOT_CONNECTED = 3,  /* refused by the sequencer: seqcast_publisher_fatal_error() */
    SEQCAST_OFFER_CLAIM_OPEN = 4      /* a try_claim is open: commit or abort it first */
} seqcast_offer_result;

typedef struct seqcast_publisher seqcast_publisher;
typedef void (*seqcast_confirm_fn)(const seqcast_confirmation* confirmation, void* user);

void seqcast_publisher_options_init(seqcast_publisher_options* options);
/* on_confirm may be NULL. */
seqcast_status seqcast_publisher_create(const seqcast_publisher_options* options, seqcast_confirm_fn on_confirm,
                                        void* user, seqcast_publisher** out);
void seqcast_publisher_close(seqcast_publisher* publisher); /* NULL is ignored */
/* A seqcast_offer_result, or SEQCAST_ERR_ARGUMENT. */
int seqcast_publisher_offer(seqcast_publisher* publisher, const void* data, size_t length);
/* Zero copy: room for a message of up to max_length bytes; *buffer points at it. Write the message
 * there, then seqcast_publisher_commit(length <= max_length) publishes its first length bytes, or
 * seqcast_publisher_abort() gives the room back. A seqcast_offer_result, or SEQCAST_ERR_ARGUMENT. */
int seqcast_publisher_try_claim(seqcast_publisher* publisher, size_t max_length, void** buffer);
void seqcast_publisher_commit(seqcast_publisher* publisher, size_t length); /* no open claim: no effect */
void seqcast_publisher_abort(seqcast_publisher* publisher);
/* Opt in: an object's own thread drives it (see seqcast.hpp, Publisher::startThread). While it
 * runs, every call on that object is thread-safe, and its callbacks run on that thread. */
typedef struct seqcast_thread_options {
    uint32_t size;         /* sizeof(seqcast_thread_options), set by init */
    int32_t idle;          /* after a pass with no work: 0 back off (spin, yield, sleep), 1 busy spin, 2 yield */
    uint32_t max_sleep_us; /* back off's longest sleep (1..1000000) */
    int32_t cpu;           /* pin to this CPU; -1: not pinned */
} seqcast_thread_options;
void seqcast_thread_options_init(seqcast_thread_options* options);
/* options may be NULL (the defaults). SEQCAST_ERR_SETUP names "thread" (already running), "cpu", ... */
seqcast_status seqcast_publisher_start_thread(seqcast_publisher* publisher, const seqcast_thread_options* options);
void seqcast_publisher_stop_thread(seqcast_publisher* publisher); /* joins it; close does too */
/* Sends, resends, takes confirmations (on_confirm runs here). Work done (0: idle), or < 0. */
int seqcast_publisher_do_work(seqcast_publisher* publisher);
/* Sleeps until a datagram arrives for it or max_us passed (see seqcast.hpp: wait). */
void seqcast_publisher_wait(seqcast_publisher* publisher, uint32_t max_us);
uint32_t seqcast_publisher_id(const seqcast_publisher* publisher);
uint64_t seqcast_publisher_unconfirmed(const seqcast_publisher* publisher);
const char* seqcast_publisher_fatal_error(const seqcast_publisher* publisher); /* "" when none */

/* An object's own counters, by name (as seqcast stat shows them): fn is called once per counter.
 * Returns the number of counters, or SEQCAST_ERR_ARGUMENT. */
typedef void (*seqcast_counter_fn)(const char* name, uint64_t value, void* user);
int seqcast_publisher_counters(const seqcast_publisher* publisher, seqcast_counter_fn fn, void* user);

/* ---- Subscriber and replay ---------------------------------------------------------------- */

typedef enum seqcast_delivery {
    SEQCAST_AT_LEAST_ONCE = 0,
    SEQCAST_AT_MOST_ONCE = 1,
    SEQCAST_EXACTLY_ONCE = 2 /* commit_file required */
} seqcast_delivery;

typedef struct seqcast_subscriber_options {
    uint32_t size; /* sizeof(seqcast_subscriber_options), set by init */
    uint32_t stream;
    const char* group;     /* the stream's multicast group:port */
    const char* start;     /* "latest", "earliest" or an offset */
    const char* archiver;  /* "" or HOST:PORT: replays and old repairs */
    const char* sequencer; /* "" (the stream's source) or where NAKs go */
    int32_t delivery;      /* a seqcast_delivery */
    const char* commit_file;
    uint64_t reorder_bytes;
    uint64_t max_datagram;
    uint32_t max_message;
    uint64_t nak_deadline_ms;
    seqcast_network_options network;
    seqcast_network_extra network_extra;
    uint64_t nak_initial_rtt_us; /* the round-trip time assumed until one is measured (200) */
} seqcast_subscriber_options;

typedef struct seqcast_message {
    uint64_t offset; /* the offset of its last fragment */
    uint32_t publisher;
    uint32_t epoch;
    uint64_t pub_seq;
    uint64_t publish_ts_ns;   /* the publisher's CLOCK_REALTIME at offer */
    uint64_t sequenced_ts_ns; /* the sequencer's CLOCK_REALTIME when it sent it */
    int32_t repaired;         /* arrived through a retransmission or a replay */
    const void* payload;      /* valid until the callback returns */
    uint64_t length;
} seqcast_message;

typedef void (*seqcast_message_fn)(const seqcast_message* message, void* user);
/* Offsets [first, first + count) will never be delivered. */
typedef void (*seqcast_loss_fn)(uint64_t first, uint64_t count, void* user);

typedef struct seqcast_subscriber seqcast_subscriber;

void seqcast_subscriber_options_init(seqcast_subscriber_options* options);
seqcast_status seqcast_subscriber_create(const seqcast_subscriber_options* options, seqcast_subscriber** out);
void seqcast_subscriber_close(seqcast_subscriber* subscriber);
/* Delivers what is in order to on_message and losses to on_loss (may be NULL). Never blocks.
 * Work done (0: idle), or < 0. */
int seqcast_subscriber_poll(seqcast_subscriber* subscriber, seqcast_message_fn on_message, seqcast_loss_fn on_loss,
                            void* user);
/* Sleeps until a datagram arrives for it, one of its timers is due, or max_us passed. */
void seqcast_subscriber_wait(seqcast_subscriber* subscriber, uint32_t max_us);
/* Opt in: the subscriber's own thread polls it into these callbacks (on_loss may be NULL). */
seqcast_status seqcast_subscriber_start_thread(seqcast_subscriber* subscriber, seqcast_message_fn on_message,
                                               seqcast_loss_fn on_loss, void* user, const seqcast_thread_options* options);
void seqcast_subscriber_stop_thread(seqcast_subscriber* subscriber);
int seqcast_subscriber_started(const seqcast_subscriber* subscriber);
int seqcast_subscriber_end_of_stream(const seqcast_subscriber* subscriber);
uint64_t seqcast_subscriber_next_offset(const seqcast_subscriber* subscriber);
uint64_t seqcast_subscriber_head_offset(const seqcast_subscriber* subscriber);
int seqcast_subscriber_counters(const seqcast_subscriber* subscriber, seqcast_counter_fn fn, void* user);

typedef struct seqcast_replay_options {
    uint32_t size; /* sizeof(seqcast_replay_options), set by init */
    uint32_t stream;
    const char* archiver;
    uint64_t from;
    uint64_t to;      /* exclusive; UINT64_MAX: up to the archiver's head */
    int32_t earliest; /* start at the earliest retained offset if `from` is older */
    seqcast_network_options network;
    double speed;     /* 0: as fast as taken; > 0: paced as published, times speed */
    int32_t wait_for_data; /* offsets not recorded yet: wait for them (1) or fail (0) */
    const char* bind;      /* local address HOST:PORT; NULL or "": the interface, any port */
    seqcast_network_extra network_extra;
} seqcast_replay_options;

typedef struct seqcast_replay seqcast_replay;

void seqcast_replay_options_init(seqcast_replay_options* options);
seqcast_status seqcast_replay_create(const seqcast_replay_options* options, seqcast_replay** out);
void seqcast_replay_close(seqcast_replay* replay);
int seqcast_replay_poll(seqcast_replay* replay, seqcast_message_fn on_message, seqcast_loss_fn on_loss, void* user);
void seqcast_replay_wait(seqcast_replay* replay, uint32_t max_us); /* as seqcast_subscriber_wait */
int seqcast_replay_finished(const seqcast_replay* replay);
const char* seqcast_replay_failure(const seqcast_replay* replay); /* "" when none */
uint64_t seqcast_replay_next_offset(const seqcast_replay* replay);
int seqcast_replay_counters(const seqcast_replay* replay, seqcast_counter_fn fn, void* user);

#ifdef __cplusplus
}
#endif

#endif /* SEQCAST_SEQCAST_H */
