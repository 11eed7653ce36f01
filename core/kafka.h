/*
 * kafka.h -- what the librdkafka consumers of ingest/ and sink/ share.
 *
 * Leaving a group. librdkafka 2.0 (Debian bookworm's) can hang in rd_kafka_consumer_close()
 * when, under the cooperative protocol, an assignment arrives while the consumer is
 * closing (confluentinc/librdkafka#4527, fixed in 2.4): the group state waits for an
 * assign call that close has turned into an unassign. It happens when members leave
 * together -- a group stopped at once -- and tally's shutdown then waited until
 * shutdown.timeout.ms. The workaround the issue gives: unsubscribe first, serve the
 * rebalance callbacks until nothing is assigned, then close.
 */
#ifndef TL_KAFKA_H
#define TL_KAFKA_H

#include <librdkafka/rdkafka.h>

/* Unsubscribes rk, polls it (serving its rebalance callback; records polled meanwhile are
 * dropped: nothing of them was committed) until it holds no partition or timeout_ms has
 * passed, then closes it. 0, or -1 when the assignment was still not empty at the timeout
 * (the consumer is closed anyway). */
int tl_kafka_consumer_leave(rd_kafka_t *rk, int timeout_ms);

#endif
