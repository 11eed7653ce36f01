/*
 * user.h -- a user's record: its interests, its journey, its last attributions, and their
 * encoding (user.c).
 *
 * The state model (docs/interests.md, docs/attribution.md): for every user, the
 * interest entries (dim, dim_id) -> decayed (f, h) at time t, and the journey: the
 * recent touchpoints not yet credited to a purchase (plus, for reading, the last
 * attributions: tl_last_attr). One record per user holds them all:
 * computing an interest delta's rank needs all of the user's entries anyway, so one
 * read (a cache hit, or one RocksDB Get) serves the whole event. A layout of
 * one RocksDB key per (user, dim, dim_id) would need a prefix scan per event instead.
 */
#ifndef TL_USER_H
#define TL_USER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "records.h"
#include "lib/util.h"

/* The most a user's expected purchases may be (a stored record with more does not decode):
 * a moment adds at most 1, and a user lives through a few thousand a year. */
#define TL_EXPECTED_MAX 1e9

typedef struct tl_interest {
    char *id;           /* dim_id, owned */
    uint32_t id_len;
    uint32_t id_hash;   /* of id (interest_hash), so a lookup seldom compares strings */
    double f, h;        /* as of t */
    int64_t t;
    uint8_t dim;        /* tl_dim */
} tl_interest;

typedef struct tl_journey_tp {
    char *event_id, *item_id, *category_id, *channel, *campaign;  /* one allocation:
                                                                     * event_id owns it */
    uint32_t len[5];    /* their lengths (0 for NULL), so encoding needs no strlen */
    int64_t ts;
    float share;        /* the category's share of the user's interest weight just before
                         * this touchpoint (a model feature known at that time), or -1 */
    float propensity;   /* the event's propensity, or -1 */
    int32_t dwell_ms;   /* or -1 */
    uint8_t type;       /* tl_event_type */
    uint64_t key_cache[2]; /* the conversion model's hashed keys of the channel and of the
                            * category (model/journey_features.c), 0 until it first needs
                            * them; not encoded */
} tl_journey_tp;

/* The user's last attributions (newest first), for reading (features/profile.h): the
 * attribution stage records each one it emits. */
#define TL_LAST_ATTR_MAX 3          /* attributions kept per user */
#define TL_LAST_ATTR_TEXT_MAX 240   /* bytes of explanation kept (cut at a UTF-8 boundary) */

typedef struct tl_last_attr {
    char *event_id, *item_id, *category_id, *explanation;  /* one allocation: event_id
                                                             * owns it; category_id may
                                                             * be NULL */
    uint32_t len[4];    /* their lengths */
    int64_t ts;         /* the purchase's */
    double p_conversion;   /* the model's p(purchase) of the journey; NaN without a model */
} tl_last_attr;

/* A moment whose purchase intent was scored and whose outcome (a purchase within the
 * intent window after it, or none) is not known yet (model/intent.h): what the intent
 * learns from once it is. */
#define TL_INTENT_PENDING_MAX 4
typedef struct tl_intent_moment {
    int64_t ts;          /* when it was scored */
    int64_t since_ts;    /* the user's last purchase then (since_purchase 1) or first event;
                          * INT64_MIN: neither known */
    uint32_t purchases;  /* the user's purchases before it */
    float z;             /* log of the model's rate integral then */
    float p;             /* the intent scored then */
    uint8_t since_purchase;
    uint8_t bought;      /* a purchase came within the window after it */
} tl_intent_moment;

typedef struct tl_user {
    char *user_id;      /* owned */
    tl_interest *ent;
    int n_ent, cap_ent;
    tl_journey_tp *tp;  /* journey order: (ts, arrival); tp[0..n_tp) */
    int n_tp, cap_tp;   /* cap_tp counts from tp_alloc */
    tl_journey_tp *tp_alloc;  /* the allocation tp points into: dropping the oldest
                               * touchpoints advances tp instead of moving the rest */
    int64_t timer;      /* event time at which the journey expires (0: none); set with
                         * tl_store_set_timer */
    int64_t timer_saved;  /* the timer as the store has it */
    int64_t timer_queued; /* the time of this user's entry in the timer heap (0: none
                           * known); the heap holds one entry per user, not one per
                           * re-arm */
    int64_t labelled;   /* newest touchpoint time already in a closed Markov path
                         * (INT64_MIN: none), so a touchpoint is in one path at most */
    int64_t sampled;    /* event time up to which the user's control moments are learned
                         * (INT64_MIN: none yet; model.c) */
    int64_t first_ts;   /* the time of the user's first event (INT64_MIN: none yet) */
    uint32_t purchases; /* purchases so far: with first_ts and last_purchase, the model's
                         * view of the user's own history (an intent proxy) */
    int64_t last_purchase;  /* the time of the user's last purchase (INT64_MIN: none) */
    double expected;    /* the purchases the model expected of the user so far at an
                         * average intent (model/journey_features.h, tl_jf_user), in
                         * [0, TL_EXPECTED_MAX] */
    double intent;      /* the purchase intent last published for the user (model/intent.h) */
    int64_t intent_ts;  /* and its time (INT64_MIN: none yet) */
    tl_intent_moment *pend;   /* pend[0..n_pend), oldest first; room for
                               * TL_INTENT_PENDING_MAX, allocated at the first */
    int n_pend;
    unsigned char *nc;  /* the next-category view last published (nextcat.h's bytes), or NULL */
    uint32_t nc_len;
    tl_last_attr *attr; /* attr[0..n_attr), newest first; room for TL_LAST_ATTR_MAX,
                         * allocated at the user's first attribution */
    int n_attr;
    /* cache bookkeeping (state.c) */
    struct tl_user *hnext, *lru_prev, *lru_next;
    uint64_t hash;
    size_t mem;         /* bytes held, kept current by the editing functions */
    size_t mem_counted; /* the part of mem included in the store's cache total */
    uint8_t dirty;
    uint8_t changed;    /* touched since the last tl_store_take_changed */
    uint8_t staged;     /* its encoding, as taken, is in the store's staged WriteBatch */
} tl_user;

/* Record editing, for the stages. */
tl_interest *tl_user_find_interest(tl_user *u, tl_dim dim, const char *id);
tl_interest *tl_user_add_interest(tl_user *u, tl_dim dim, const char *id);
void tl_user_remove_interest(tl_user *u, int index);
/* Inserts in (ts, arrival) order and returns the slot's index; share as above. */
int tl_user_add_tp(tl_user *u, const tl_event *ev, float share);
void tl_user_remove_tps(tl_user *u, int from, int n);
/* Records an attribution as the newest (the oldest of TL_LAST_ATTR_MAX goes); the
 * explanation is cut to TL_LAST_ATTR_TEXT_MAX bytes. NULL strings but category_id are
 * kept as "". */
void tl_user_add_attribution(tl_user *u, const char *event_id, const char *item_id,
                             const char *category_id, int64_t ts, double p_conversion,
                             const char *explanation);

/* Appends a pending intent moment (at most TL_INTENT_PENDING_MAX: 0 when full, else 1),
 * and removes the one at index i. */
int tl_user_add_intent_moment(tl_user *u, const tl_intent_moment *m);
void tl_user_remove_intent_moment(tl_user *u, int i);
/* Keeps a copy of the next-category view's bytes (len 0: none). */
void tl_user_set_nc(tl_user *u, const void *bytes, size_t len);

/* Serialisation (the RocksDB value and, later, the changelog value). */
void tl_user_encode(const tl_user *u, tl_buf *out);
int tl_user_decode(tl_user *u, const void *buf, size_t len);  /* u->user_id set by caller */
void tl_user_clear(tl_user *u);                                /* frees contents */
/* The most bytes tl_user_encode writes for a user whose strings have at most max_string
 * bytes, with at most max_interests entries and max_touchpoints touchpoints: the bound
 * of a changelog record's value, checked against the producer's limit at start. */
size_t tl_user_encoded_bound(size_t max_string, size_t max_interests, size_t max_touchpoints);

/* The bytes a new record holds before any entry: the struct, its id, its slot in a store's
 * table (the cache's accounting, state.c). */
size_t tl_user_base_mem(const char *user_id);
/* The timer of an encoded record (its first field), without decoding the rest: 0, or -1
 * when the bytes are not a record this build reads. */
int tl_user_encoded_timer(const void *value, size_t len, int64_t *timer);

#endif
