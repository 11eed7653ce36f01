/*
 * bench_latency.c -- end-to-end latency of a running `tally run`: the time from an
 * event's produce call to the moment its interest delta is visible to a read_committed
 * consumer.
 *
 *   bench_latency BOOTSTRAP IN_TOPIC OUT_TOPIC RATE SECONDS [WARMUP_SECONDS]
 *
 * A producer thread sends generated events (tally's generator, 20 events per user) at
 * RATE events/s for SECONDS, each with ts = the wall clock (ms) at its produce call. The
 * main thread consumes OUT_TOPIC read_committed and, for every interest delta of
 * dim "category" (one per event with the default
 * features.dims), records now - ts. Events of the first WARMUP_SECONDS
 * (default 2) are not counted. Prints one line: events=N p50_ms= p99_ms= max_ms=
 * sent_per_s= (the rate achieved) missing= (deltas never seen; exit status 1 if any).
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/source.h"
#include "lib/util.h"
#include "ingest/codec.h"
#include "ingest/gen.h"
#include "ingest/schema_store.h"

static int64_t wall_ms(void) { return tl_now_ms(); }
static double mono_s(void) { return (double)tl_mono_ns() / 1e9; }

typedef struct run {
    const char *bootstrap, *in_topic;
    double rate, seconds;
    int64_t counted_from_ms;   /* events produced before this are warm-up */
    long long sent;
    double send_s;
    atomic_int done;           /* set after sent and send_s are final */
} run;

static rd_kafka_t *kafka_new(rd_kafka_type_t type, const char *const kv[][2], size_t n)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "%s: %s\n", kv[i][0], err);
            exit(1);
        }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return rk;
}

static void *produce(void *arg)
{
    run *r = arg;
    char err[512];
    tl_schema_store_opts so = {.dir = TALLY_SCHEMA_DIR};
    tl_schema_store *store = tl_schema_store_new(&so, err, sizeof(err));
    tl_codec *codec =
        store ? tl_codec_new(store, TALLY_SCHEMA_DIR "/" TL_EVENT_SCHEMA, err, sizeof(err)) : NULL;
    if (!codec) {
        fprintf(stderr, "codec: %s\n", err);
        exit(1);
    }
    const char *const kv[][2] = {{"bootstrap.servers", r->bootstrap}, {"linger.ms", "1"}};
    rd_kafka_t *rk = kafka_new(RD_KAFKA_PRODUCER, kv, 2);
    tl_gen_params gp;
    tl_gen_params_default(&gp);
    gp.n_events = (uint64_t)(r->rate * r->seconds);
    gp.n_users = (uint32_t)(gp.n_events / 20 > 0 ? gp.n_events / 20 : 1);
    tl_source *src = tl_gen_source_new(&gp);
    tl_batch b;
    tl_batch_init(&b);
    tl_buf buf = {0};
    double t0 = mono_s();
    long long i = 0;
    int prc;
    do {
        prc = src->poll(src->ctx, &b, 1000, 0);
        for (int k = 0; k < b.n; k++, i++) {
            double due = t0 + (double)i / r->rate;
            double now = mono_s();
            if (due > now) {
                struct timespec d = {(time_t)(due - now),
                                     (long)((due - now - (time_t)(due - now)) * 1e9)};
                nanosleep(&d, NULL);
            }
            tl_event *ev = &b.events[k];
            ev->ts = wall_ms();
            tl_buf_clear(&buf);
            tl_codec_encode_event(codec, TL_EVENT_SCHEMA_ID, ev, &buf);
            while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(r->in_topic),
                                     RD_KAFKA_V_KEY(ev->user_id, strlen(ev->user_id)),
                                     RD_KAFKA_V_VALUE(buf.data, buf.len),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 10);
            rd_kafka_poll(rk, 0);
        }
    } while (prc == TL_SRC_OK);
    r->send_s = mono_s() - t0;
    r->sent = i;
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);
    tl_buf_free(&buf);
    tl_batch_destroy(&b);
    tl_gen_source_destroy(src);
    tl_codec_destroy(codec);
    tl_schema_store_destroy(store);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Avro binary: a zigzag varint at *p, advancing it; -1 past the end. */
static int read_long(const unsigned char **p, const unsigned char *end, int64_t *v)
{
    uint64_t u = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        u |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return 0;
        }
    }
    return -1;
}

/* An InterestDelta (schemas/2-interest_delta.avsc) begins user_id, dim, dim_id,
 * event_id, ts: the event's ts if dim is "category", else -1. */
static int64_t category_delta_ts(const rd_kafka_message_t *m)
{
    if (!m->payload || m->len < 5) return -1;
    const unsigned char *p = (const unsigned char *)m->payload + 5, *end = p + m->len - 5;
    int cat = 0;
    for (int f = 0; f < 4; f++) {
        int64_t n;
        if (read_long(&p, end, &n) || n < 0 || n > end - p) return -1;
        if (f == 1) cat = n == 8 && memcmp(p, "category", 8) == 0;
        p += n;
    }
    int64_t ts;
    return cat && !read_long(&p, end, &ts) ? ts : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(
            stderr,
            "usage: bench_latency BOOTSTRAP IN_TOPIC OUT_TOPIC RATE SECONDS [WARMUP_SECONDS]\n");
        return 2;
    }
    run r = {
        .bootstrap = argv[1], .in_topic = argv[2], .rate = atof(argv[4]), .seconds = atof(argv[5])};
    double warmup = argc == 7 ? atof(argv[6]) : 2.0;
    if (r.rate <= 0 || r.seconds <= warmup) {
        fprintf(stderr, "bench_latency: RATE must be > 0 and SECONDS > WARMUP_SECONDS\n");
        return 2;
    }
    const char *const kv[][2] = {
        {"bootstrap.servers", argv[1]},    {"group.id", "bench-latency"},
        {"auto.offset.reset", "earliest"}, {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},   {"fetch.wait.max.ms", "5"},
    };
    rd_kafka_t *rk = kafka_new(RD_KAFKA_CONSUMER, kv, sizeof(kv) / sizeof(kv[0]));
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, argv[3], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);

    r.counted_from_ms = wall_ms() + (int64_t)(warmup * 1000);
    pthread_t th;
    pthread_create(&th, NULL, produce, &r);
    size_t cap = (size_t)(r.rate * r.seconds) + 1, n = 0, seen = 0;
    int64_t *lat = malloc(cap * sizeof(*lat));
    double idle_since = 0;
    /* Until every event's delta arrived, or 10 s without one after the producer ended. */
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        int64_t now = wall_ms();
        if (m && !m->err) {
            int64_t ts = category_delta_ts(m);
            if (ts >= 0) {
                seen++;
                if (ts >= r.counted_from_ms && n < cap) lat[n++] = now - ts;
            }
            idle_since = 0;
        }
        if (m) rd_kafka_message_destroy(m);
        if (atomic_load(&r.done) && seen >= (size_t)r.sent) break;
        if (atomic_load(&r.done) && !m) {
            if (idle_since == 0) idle_since = mono_s();
            else if (mono_s() - idle_since > 10) break;
        }
    }
    pthread_join(th, NULL);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (seen < (size_t)r.sent)
        fprintf(stderr, "bench_latency: %zu of %lld deltas seen\n", seen, r.sent);
    if (!n) {
        fprintf(stderr, "bench_latency: no latency measured\n");
        return 1;
    }
    qsort(lat, n, sizeof(*lat), cmp_i64);
    printf("events=%zu p50_ms=%lld p99_ms=%lld max_ms=%lld sent_per_s=%.0f missing=%lld\n", n,
           (long long)lat[n / 2], (long long)lat[(size_t)(n * 0.99)], (long long)lat[n - 1],
           (double)r.sent / r.send_s, r.sent - (long long)seen);
    free(lat);
    return seen < (size_t)r.sent;
}
