/*
 * schema_store.c -- Confluent schema id -> Avro writer schema, from a directory of
 * .avsc files and/or a Confluent-API schema registry, with a cache.
 *
 * How: one open-addressing hash table keyed by id holds every schema the store has
 * handed out: directory schemas (loaded and parsed eagerly by tl_schema_store_new, so a
 * broken file fails at startup, not on the first record that needs it), registry
 * schemas (fetched on first use with libcurl), and directory files that parse but fail
 * the checks (kept with their message, as a good file is kept with its schema). A
 * second, bounded table (the negative cache) remembers ids found nowhere and schemas
 * refused on a miss, with their message, for opts.negative_cache_ms. A miss rescans the directory
 * for that one id before asking the registry, so a file dropped into schema.dir after
 * startup is found; registry lookups pass a token bucket first. Registry responses are
 * parsed with lib/json; schema text is parsed with lib/json first (a named type
 * defined twice is refused there: avro-c leaks on it), then with avro-c, then checked
 * here.
 *
 * The checks. avro-c parses schemas that the Avro specification forbids and then
 * mishandles them: a record with two fields of one name keeps both but finds only the
 * last by name, an enum with a symbol twice maps it to its last index, a union may hold
 * two branches of one type, enum symbols and namespaces are not validated at all. And
 * its resolver (avro_resolved_writer_new, resolved-writer.c) frees memory twice when a
 * record fails to resolve after some of its fields did: the failure clean-up drops the
 * field resolvers one by one, but dropping a union's resolver frees the whole graph
 * under it without looking at reference counts, and the string->string resolver below
 * ["null","string"]-read-as-string is memoized and shared with the other string fields,
 * which then drop it again (and an array or map whose items do not resolve has its
 * never-made item resolver freed: a NULL dereference). tl_schema_check refuses the forbidden schemas (and ones
 * nested deeper than TL_SCHEMA_MAX_DEPTH or larger than TL_SCHEMA_MAX_NODES) before any
 * caller sees them; tl_schema_check_resolution decides, by avro-c's own rules and
 * without calling it, whether a resolution would succeed, so that a caller never lets
 * avro-c reach that clean-up.
 *
 * Invariants:
 *   - a positive entry is never removed or replaced, so the avro_schema_t handed out
 *     stays valid until destroy; every schema handed out passed tl_schema_check;
 *   - an HTTP 404 counts as "not found" only when the body is a registry error
 *     (error_code 404xx); any other failure (connection, timeout, 5xx, 401, a 404 page
 *     from something that is not a registry) is TL_SCHEMA_ERROR and is not cached,
 *     so a registry outage never turns good records into dead letters;
 *   - the negative cache holds at most opts.negative_cache_max ids; a new one past that evicts the
 *     oldest (entries share one lifetime, so the oldest is also the first to expire);
 *   - a rate-limited id is answered without a request and not remembered: it is looked
 *     up once the bucket has a token again. While the registry's last answer was a
 *     failure (TL_SCHEMA_ERROR) it is TL_SCHEMA_ERROR too (retry), not NOT_FOUND (dead
 *     letter);
 *   - user:password never appears in a message: it is passed with CURLOPT_USERPWD and
 *     any userinfo in the registry URL is removed from the URL we print.
 *
 * Threading: one mutex guards the tables, the counters and the curl handle; requests
 * are made with it held (a fetch is rare, rate-limited and bounded by timeout_ms).
 *
 * Rejected alternatives: libserdes (not packaged for Debian, and brings its own
 * Avro binding); lazy parsing of the directory (errors would surface mid-stream as
 * dead letters instead of at startup); caching misses forever (a producer may
 * register a schema after its first records fail); one curl handle per request (the
 * reused handle keeps the connection and TLS session alive); dropping every remembered
 * miss at once when the table is full (a flood of bogus ids would make every good miss
 * cost a request again); checking schemas on the JSON text (avro-c's parse is what the
 * codec uses, so the check looks at what avro-c made of it; the one exception is a named
 * type defined twice, which avro-c leaks on, so it must not see it: parse_schema);
 * patching avro-c's resolver or parser (the Debian package is what runs).
 */
#include "schema_store.h"

#include "lib/arena.h"
#include "lib/json.h"
#include "lib/util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TL_SCHEMA_MAX_FILE (16u << 20)
#define TL_SCHEMA_MAX_RESPONSE (16u << 20)
#define TL_SCHEMA_MAX_RESOLVE_STEPS 1000000L

typedef enum ss_kind {
    SS_EMPTY = 0,
    SS_DIR,
    SS_REGISTRY,
    SS_BAD
} ss_kind;

typedef struct ss_entry {
    int32_t id;
    ss_kind kind;
    avro_schema_t schema;     /* SS_DIR, SS_REGISTRY */
    char *path;               /* SS_DIR, SS_BAD: the file it came from */
    char *msg;                /* SS_BAD: why the file is refused */
} ss_entry;

/* One remembered miss or refusal. prev/next link the entries from oldest to newest. */
typedef struct neg_entry {
    int32_t id;
    int code;                 /* TL_SCHEMA_NOT_FOUND or TL_SCHEMA_INVALID */
    char *msg;                /* the message to repeat */
    int64_t until_ns;         /* expiry (the store's clock) */
    int32_t prev, next;       /* slab indices, -1: none; next also chains the free list */
} neg_entry;

typedef struct neg_cache {
    neg_entry *slab;          /* grows (doubling) up to max entries */
    size_t slab_cap, used;    /* used: slab slots ever handed out */
    int32_t free_head;        /* free slots, chained by next */
    int32_t *tab;             /* id -> slab index, -1 empty; linear probing */
    size_t tab_cap;           /* power of two >= 2 * slab_cap */
    size_t n, max;
    int32_t oldest, newest;
} neg_cache;

struct tl_schema_store {
    pthread_mutex_t lock;
    char *dir;                /* NULL when not configured */
    char *url;                /* trailing '/' removed; NULL when not configured */
    char *url_shown;          /* url without userinfo, for messages */
    char *basic_auth;
    char *ca_path;
    long timeout_ms;
    int lookup_only;          /* register() looks up, registers nothing */
    CURL *curl;
    ss_entry *tab;
    size_t cap, n;
    neg_cache neg;
    int64_t negative_ns;      /* lifetime of a negative entry */
    double rate;              /* registry lookups per second, and the bucket's size */
    double tokens;
    int64_t tokens_ns;        /* when tokens was last topped up */
    int registry_failing;     /* the last lookup ended in TL_SCHEMA_ERROR */
    int64_t (*clock_ns)(void *);
    void *clock_arg;
    tl_schema_store_stats st;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int nonempty(const char *s) { return s && *s; }

static int64_t mono_clock(void *arg)
{
    (void)arg;
    return tl_mono_ns();
}

static int64_t now_ns(tl_schema_store *s) { return s->clock_ns(s->clock_arg); }

/* Slot of id in a table of cap (a power of two) slots. Mixed, so that ids sharing
 * their low bits (ids chosen by whoever writes the records) do not share a slot. */
static size_t hash_id(int32_t id, size_t cap)
{
    uint32_t h = (uint32_t)id;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return (size_t)h & (cap - 1);
}

/* ------------------------------------------------------------------ table */

static ss_entry *tab_find(tl_schema_store *s, int32_t id)
{
    if (!s->cap) return NULL;
    for (size_t i = hash_id(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->tab[i].kind == SS_EMPTY) return NULL;
        if (s->tab[i].id == id) return &s->tab[i];
    }
}

static void entry_free(ss_entry *e)
{
    if (e->schema) avro_schema_decref(e->schema);
    free(e->path);
    free(e->msg);
    memset(e, 0, sizeof(*e));
}

static void tab_rehash(tl_schema_store *s, size_t cap)
{
    ss_entry *old = s->tab;
    size_t oldcap = s->cap;
    s->tab = tl_xcalloc(cap, sizeof(*s->tab));
    s->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].kind == SS_EMPTY) continue;
        size_t j = hash_id(old[i].id, cap);
        while (s->tab[j].kind != SS_EMPTY) j = (j + 1) & (cap - 1);
        s->tab[j] = old[i];
    }
    free(old);
}

/* A new entry for id, which has none (kind set; data filled by the caller). */
static ss_entry *tab_add(tl_schema_store *s, int32_t id, ss_kind kind)
{
    if ((s->n + 1) * 2 > s->cap) tab_rehash(s, s->cap ? s->cap * 2 : 64);
    size_t i = hash_id(id, s->cap);
    while (s->tab[i].kind != SS_EMPTY) i = (i + 1) & (s->cap - 1);
    ss_entry *e = &s->tab[i];
    s->n++;
    e->id = id;
    e->kind = kind;
    return e;
}

/* ---------------------------------------------------------- negative cache */

static void neg_init(neg_cache *c, size_t max)
{
    memset(c, 0, sizeof(*c));
    c->max = max;
    c->free_head = c->oldest = c->newest = -1;
}

static void neg_destroy(neg_cache *c)
{
    for (int32_t i = c->oldest; i >= 0; i = c->slab[i].next) free(c->slab[i].msg);
    free(c->slab);
    free(c->tab);
}

/* The tab position holding id, or the empty position where it would go. */
static size_t neg_pos(const neg_cache *c, int32_t id)
{
    size_t i = hash_id(id, c->tab_cap);
    while (c->tab[i] >= 0 && c->slab[c->tab[i]].id != id) i = (i + 1) & (c->tab_cap - 1);
    return i;
}

static neg_entry *neg_find(neg_cache *c, int32_t id)
{
    if (!c->n) return NULL;
    int32_t k = c->tab[neg_pos(c, id)];
    return k >= 0 ? &c->slab[k] : NULL;
}

static void neg_tab_build(neg_cache *c, size_t cap)
{
    free(c->tab);
    c->tab = tl_xmalloc(cap * sizeof(*c->tab));
    c->tab_cap = cap;
    for (size_t i = 0; i < cap; i++) c->tab[i] = -1;
    for (int32_t k = c->oldest; k >= 0; k = c->slab[k].next) c->tab[neg_pos(c, c->slab[k].id)] = k;
}

/* Removes the entry of id (which is present): backward-shift deletion keeps every
 * other id reachable from its home position without tombstones. */
static void neg_remove(neg_cache *c, int32_t id)
{
    size_t i = neg_pos(c, id);
    int32_t k = c->tab[i];
    neg_entry *e = &c->slab[k];
    if (e->prev >= 0) c->slab[e->prev].next = e->next;
    else c->oldest = e->next;
    if (e->next >= 0) c->slab[e->next].prev = e->prev;
    else c->newest = e->prev;
    free(e->msg);
    e->msg = NULL;
    e->next = c->free_head;
    c->free_head = k;
    c->n--;
    size_t mask = c->tab_cap - 1;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (c->tab[j] < 0) break;
        size_t home = hash_id(c->slab[c->tab[j]].id, c->tab_cap);
        /* j's entry may move to i when its home is not in (i, j] (cyclically) */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            c->tab[i] = c->tab[j];
            i = j;
        }
    }
    c->tab[i] = -1;
}

/* Remembers id with its verdict until until_ns, replacing an older verdict; returns
 * 1 when an entry had to be evicted to make room. Expired entries go first. */
static int neg_put(neg_cache *c, int32_t id, int code, const char *msg, int64_t now,
                   int64_t until_ns)
{
    int evicted = 0;
    if (c->n && neg_find(c, id)) neg_remove(c, id);
    while (c->oldest >= 0 && c->slab[c->oldest].until_ns <= now)
        neg_remove(c, c->slab[c->oldest].id);
    if (c->n >= c->max) {
        neg_remove(c, c->slab[c->oldest].id);
        evicted = 1;
    }
    if (c->free_head < 0 && c->used == c->slab_cap) {
        size_t cap = c->slab_cap ? c->slab_cap * 2 : 64;
        if (cap > c->max) cap = c->max;
        c->slab = tl_xrealloc(c->slab, cap * sizeof(*c->slab));
        c->slab_cap = cap;
    }
    if (c->tab_cap < 2 * c->slab_cap) {
        size_t tc = 16;
        while (tc < 2 * c->slab_cap) tc *= 2;
        neg_tab_build(c, tc);
    }
    int32_t k;
    if (c->free_head >= 0) {
        k = c->free_head;
        c->free_head = c->slab[k].next;
    } else {
        k = (int32_t)c->used++;
    }
    neg_entry *e = &c->slab[k];
    e->id = id;
    e->code = code;
    e->msg = tl_xstrdup(msg);
    e->until_ns = until_ns;
    e->prev = c->newest;
    e->next = -1;
    if (c->newest >= 0) c->slab[c->newest].next = k;
    else c->oldest = k;
    c->newest = k;
    c->tab[neg_pos(c, id)] = k;
    c->n++;
    return evicted;
}

static void put_negative(tl_schema_store *s, int32_t id, int code, const char *msg)
{
    int64_t now = now_ns(s);
    s->st.negative_evictions +=
        (uint64_t)neg_put(&s->neg, id, code, msg, now, now + s->negative_ns);
}

/* ------------------------------------------------------------------ checks */

static int valid_name(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* NULL (no namespace) or dot-separated valid names. */
static int valid_namespace(const char *ns)
{
    if (!ns) return 1;
    char part[256];
    for (const char *p = ns;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof(part)) return 0;
        memcpy(part, p, n);
        part[n] = '\0';
        if (!valid_name(part)) return 0;
        if (!dot) return 1;
        p = dot + 1;
    }
}

/* s quoted for a message: printable ASCII kept, anything else '?', at most 64 bytes. */
static const char *quoted(const char *s, char *buf, size_t n)
{
    size_t o = 0, max = n < 72 ? n : 72;
    buf[o++] = '"';
    for (; s && *s && o + 5 < max; s++) buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (s && *s) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* The full name of a named schema (record, enum, fixed; a link: its target's). */
static const char *full_name(avro_schema_t s, char *buf, size_t n)
{
    while (avro_typeof(s) == AVRO_LINK) s = avro_schema_link_target(s);
    const char *ns = avro_schema_namespace(s), *name = avro_schema_name(s);
    if (ns) snprintf(buf, n, "%s.%s", ns, name ? name : "");
    else snprintf(buf, n, "%s", name ? name : "");
    return buf;
}

static int is_named(avro_schema_t s)
{
    avro_type_t t = avro_typeof(s);
    return t == AVRO_RECORD || t == AVRO_ENUM || t == AVRO_FIXED || t == AVRO_LINK;
}

typedef struct chk {
    char *err;
    size_t errlen;
    size_t nodes;
    char **named;             /* full names of the named types defined, to find twins */
    size_t n_named, cap_named;
} chk;

static int chk_fail(chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int chk_fail(chk *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first string that occurs twice in v (sorted in place), or NULL. */
static const char *first_twin(char **v, size_t n)
{
    if (n < 2) return NULL;
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0) return v[i];
    return NULL;
}

/* A named type's name and namespace, noted for the twin check. */
static int chk_named(chk *c, avro_schema_t s, const char *kind)
{
    char q[80], fn[600];
    const char *name = avro_schema_name(s), *ns = avro_schema_namespace(s);
    if (!valid_name(name))
        return chk_fail(c, "%s name %s is not a valid Avro name ([A-Za-z_][A-Za-z0-9_]*)", kind,
                        quoted(name, q, sizeof(q)));
    if (!valid_namespace(ns))
        return chk_fail(c, "the namespace %s of %s %s is not a valid Avro namespace",
                        quoted(ns, q, sizeof(q)), kind, name);
    TL_GROW(c->named, c->n_named, c->cap_named, 16);
    c->named[c->n_named++] = tl_xstrdup(full_name(s, fn, sizeof(fn)));
    return 0;
}

static int chk_walk(chk *c, avro_schema_t s, int depth)
{
    char q[80], fn[600];
    if (++c->nodes > TL_SCHEMA_MAX_NODES)
        return chk_fail(c, "the schema has more than %d types, fields and symbols",
                        TL_SCHEMA_MAX_NODES);
    if (depth > TL_SCHEMA_MAX_DEPTH)
        return chk_fail(c, "types are nested more than %d deep", TL_SCHEMA_MAX_DEPTH);
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        if (chk_named(c, s, "record")) return -1;
        full_name(s, fn, sizeof(fn));
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            const char *f = avro_schema_record_field_name(s, (int)i);
            if (!valid_name(f))
                return chk_fail(c, "record %s has a field named %s, not a valid Avro name", fn,
                                quoted(f, q, sizeof(q)));
            /* avro-c finds a name's last field: an earlier one of that name is a twin */
            if (avro_schema_record_field_get_index(s, f) != (int)i)
                return chk_fail(c, "record %s has two fields named %s", fn, f);
            if (chk_walk(c, avro_schema_record_field_get_by_index(s, (int)i), depth + 1)) return -1;
        }
        return 0;
    }
    case AVRO_ENUM: {
        if (chk_named(c, s, "enum")) return -1;
        full_name(s, fn, sizeof(fn));
        int n = avro_schema_enum_number_of_symbols(s);
        for (int k = 0; k < n; k++) {
            const char *sym = avro_schema_enum_get(s, k);
            if (++c->nodes > TL_SCHEMA_MAX_NODES)
                return chk_fail(c, "the schema has more than %d types, fields and symbols",
                                TL_SCHEMA_MAX_NODES);
            if (!valid_name(sym))
                return chk_fail(c, "enum %s has the symbol %s, not a valid Avro name", fn,
                                quoted(sym, q, sizeof(q)));
            if (avro_schema_enum_get_by_name(s, sym) != k)
                return chk_fail(c, "enum %s has the symbol %s twice", fn, sym);
        }
        return 0;
    }
    case AVRO_FIXED:
        if (chk_named(c, s, "fixed")) return -1;
        if (avro_schema_fixed_size(s) < 0)
            return chk_fail(c, "fixed %s has a negative size", full_name(s, fn, sizeof(fn)));
        return 0;
    case AVRO_ARRAY: return chk_walk(c, avro_schema_array_items(s), depth + 1);
    case AVRO_MAP: return chk_walk(c, avro_schema_map_values(s), depth + 1);
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        char **keys = tl_xcalloc(n + 1, sizeof(*keys));
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            avro_schema_t b = avro_schema_union_branch(s, (int)i);
            if (avro_typeof(b) == AVRO_UNION) {
                rc = chk_fail(c, "a union has a union as a branch");
                break;
            }
            keys[i] =
                tl_xstrdup(is_named(b) ? full_name(b, fn, sizeof(fn)) : avro_schema_type_name(b));
            rc = chk_walk(c, b, depth + 1);
        }
        const char *twin = rc == 0 ? first_twin(keys, n) : NULL;
        if (twin) rc = chk_fail(c, "a union has two branches of type %s", twin);
        for (size_t i = 0; i < n; i++) free(keys[i]);
        free(keys);
        return rc;
    }
    default: return 0; /* primitives, and links: their target is checked where it is defined */
    }
}

int tl_schema_check(avro_schema_t schema, char *err, size_t errlen)
{
    chk c = {.err = err, .errlen = errlen};
    int rc = schema ? chk_walk(&c, schema, 1) : chk_fail(&c, "no schema");
    if (rc == 0) {
        const char *twin = first_twin(c.named, c.n_named);
        if (twin) rc = chk_fail(&c, "two types are named %s", twin);
    }
    for (size_t i = 0; i < c.n_named; i++) free(c.named[i]);
    free(c.named);
    return rc == 0 ? TL_SCHEMA_OK : TL_SCHEMA_INVALID;
}

/* ------------------------------------------------------------ schema text */

/*
 * Named types defined twice, found in the JSON text before avro-c parses it. avro-c 1.11
 * (avro_schema_from_json_t) refuses a second definition of a full name ("Cannot save
 * enum schema") but leaks the type it was building and its name, about 1 KB per parse:
 * a registry or schema.dir serving such a schema would leak on every lookup of its id
 * (negative entries expire), so avro-c must never see one. The full names are avro-c
 * 1.11's (tried against it): a name with a dot is the full name; otherwise the
 * "namespace" string (an empty one is none) or, when there is no such string, the
 * enclosing record's namespace is prepended. Definitions are counted wherever avro-c
 * would parse a type: the root, union branches, record field types, array items and
 * map values. tl_schema_check looks for the same twins in what avro-c made, for a
 * schema built in code.
 */

typedef struct twins {
    tl_arena *a;
    char **names;
    size_t n, cap;
} twins;

/* The full name of the named type whose JSON is j (full_name does the same for what avro-c
 * made), in the enclosing namespace ns (NULL: none); *own is set to the namespace its own
 * fields are in. NULL when j has no name. */
static char *text_full_name(tl_arena *a, const tl_json *j, const char *ns, const char **own)
{
    const char *name = tl_json_str(tl_json_get(j, "name"));
    if (!name) return NULL;
    const tl_json *jns = tl_json_get(j, "namespace");
    const char *dot = strrchr(name, '.');
    *own = ns;
    if (dot) {
        *own = tl_arena_strndup(a, name, (size_t)(dot - name));
        return tl_arena_strndup(a, name, strlen(name));
    }
    if (jns && jns->type == TL_JSON_STRING) *own = jns->str[0] ? jns->str : NULL;
    size_t n = (*own ? strlen(*own) + 1 : 0) + strlen(name) + 1;
    char *full = tl_arena_alloc(a, n);
    snprintf(full, n, "%s%s%s", *own ? *own : "", *own ? "." : "", name);
    return full;
}

int tl_schema_full_name(const char *json, char *out, size_t n)
{
    tl_arena a;
    tl_arena_init(&a, 1024);
    char jerr[128];
    const char *own;
    const char *full =
        text_full_name(&a, tl_json_parse(json, strlen(json), &a, jerr, sizeof(jerr)), NULL, &own);
    if (full) snprintf(out, n, "%s", full);
    tl_arena_destroy(&a);
    return full ? 0 : -1;
}

static void twins_walk(twins *t, const tl_json *j, const char *ns)
{
    if (j && j->type == TL_JSON_ARRAY) { /* a union */
        for (size_t i = 0; i < j->len; i++) twins_walk(t, j->items[i], ns);
        return;
    }
    const char *type = tl_json_str(tl_json_get(j, "type"));
    if (!type) return; /* a type name (a string), or no type avro-c would make */
    if (!strcmp(type, "array")) {
        twins_walk(t, tl_json_get(j, "items"), ns);
        return;
    }
    if (!strcmp(type, "map")) {
        twins_walk(t, tl_json_get(j, "values"), ns);
        return;
    }
    if (strcmp(type, "record") && strcmp(type, "enum") && strcmp(type, "fixed")) return;
    const char *own;
    char *full = text_full_name(t->a, j, ns, &own);
    if (!full) return;
    TL_GROW(t->names, t->n, t->cap, 16);
    t->names[t->n++] = full;
    if (!strcmp(type, "record")) {
        const tl_json *fields = tl_json_get(j, "fields");
        for (size_t i = 0; i < tl_json_len(fields); i++)
            twins_walk(t, tl_json_get(tl_json_at(fields, i), "type"), own);
    }
}

enum {
    PARSE_OK,
    PARSE_NOT_AVRO,
    PARSE_REFUSED
};

/* Schema text -> an avro-c schema that passed tl_schema_check, for every schema tally
 * takes in (schema.dir files, registry answers, schemas to register). PARSE_OK with *out
 * a new reference; PARSE_NOT_AVRO (not JSON, or avro-c refuses it) or PARSE_REFUSED
 * (failing the checks) with the reason in why. */
static int parse_schema(const char *text, size_t len, avro_schema_t *out, char *why, size_t whylen)
{
    *out = NULL;
    tl_arena a;
    tl_arena_init(&a, 4096);
    twins t = {.a = &a};
    int rc = PARSE_OK;
    const tl_json *root = tl_json_parse(text, len, &a, why, whylen);
    if (!root) {
        rc = PARSE_NOT_AVRO;
        goto out;
    }
    twins_walk(&t, root, NULL);
    const char *twin = first_twin(t.names, t.n);
    if (twin) {
        snprintf(why, whylen, "two types are named %s", twin);
        rc = PARSE_REFUSED;
        goto out;
    }
    if (avro_schema_from_json_length(text, len, out) != 0) {
        *out = NULL;
        snprintf(why, whylen, "%s", avro_strerror());
        rc = PARSE_NOT_AVRO;
        goto out;
    }
    if (tl_schema_check(*out, why, whylen) != TL_SCHEMA_OK) {
        avro_schema_decref(*out);
        *out = NULL;
        rc = PARSE_REFUSED;
    }
out:
    free(t.names);
    tl_arena_destroy(&a);
    return rc;
}

/* ------------------------------------------------------ resolution, decided */

/*
 * avro_resolved_writer_new, decided without running it. Mirrors avro-c 1.11's
 * resolved-writer.c: avro_resolved_writer_new_memoized (writer unions: some branch
 * resolves; writer links: their target; a reader union: the first branch that matches,
 * stopping at a branch whose resolution fails half-way) and the try_* functions (names
 * of records and enums compared without namespace, reader fields looked up by name in
 * the writer, int->long->float->double promotions, fixed by avro_schema_equal). Pairs
 * being or already resolved count as resolved, as avro-c's memo does, which ends
 * recursion. A record that fails after some of its fields resolved is marked unsafe
 * even where an enclosing union makes the whole succeed: that is the clean-up which
 * frees shared resolvers twice. So is an array or map whose items do not resolve:
 * avro-c's clean-up then frees the item resolver it never made (a NULL dereference).
 */

typedef struct rs_pair {
    avro_schema_t w, r;
} rs_pair;

typedef struct rs {
    rs_pair *memo; /* open addressing; w == NULL empty, r == NULL deleted */
    size_t cap, used;
    long steps;
    int unsafe;
    char why[384]; /* the last reason a pair did not resolve */
    char unsafe_why[384];
} rs;

enum {
    RS_OK,
    RS_NO,
    RS_ERR
};

static size_t rs_hash(avro_schema_t w, avro_schema_t r, size_t cap)
{
    uintptr_t h = ((uintptr_t)w * 31u) ^ (uintptr_t)r;
    h ^= h >> 17;
    return (size_t)(h * 2654435761u) & (cap - 1);
}

static int rs_has(const rs *x, avro_schema_t w, avro_schema_t r)
{
    if (!x->cap) return 0;
    for (size_t i = rs_hash(w, r, x->cap);; i = (i + 1) & (x->cap - 1)) {
        if (!x->memo[i].w) return 0;
        if (x->memo[i].w == w && x->memo[i].r == r) return 1;
    }
}

static void rs_put(rs *x, avro_schema_t w, avro_schema_t r)
{
    if ((x->used + 1) * 2 > x->cap) {
        rs_pair *old = x->memo;
        size_t oldcap = x->cap;
        x->cap = x->cap ? x->cap * 2 : 64;
        x->memo = tl_xcalloc(x->cap, sizeof(*x->memo));
        x->used = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].w && old[i].r) {
                size_t j = rs_hash(old[i].w, old[i].r, x->cap);
                while (x->memo[j].w) j = (j + 1) & (x->cap - 1);
                x->memo[j] = old[i];
                x->used++;
            }
        free(old);
    }
    size_t i = rs_hash(w, r, x->cap);
    while (x->memo[i].w) i = (i + 1) & (x->cap - 1);
    x->memo[i] = (rs_pair){w, r};
    x->used++;
}

static void rs_del(rs *x, avro_schema_t w, avro_schema_t r)
{
    for (size_t i = rs_hash(w, r, x->cap);; i = (i + 1) & (x->cap - 1)) {
        if (!x->memo[i].w) return;
        if (x->memo[i].w == w && x->memo[i].r == r) {
            x->memo[i].r = NULL; /* deleted: keeps later probes going */
            return;
        }
    }
}

static avro_schema_t rs_deref(avro_schema_t s)
{
    while (s && avro_typeof(s) == AVRO_LINK) s = avro_schema_link_target(s);
    return s;
}

/* "enum tally.EventKind", "string", ... for messages. */
static const char *rs_desc(avro_schema_t s, char *buf, size_t n)
{
    s = rs_deref(s);
    avro_type_t t = avro_typeof(s);
    char fn[400];
    if (t == AVRO_RECORD || t == AVRO_ENUM || t == AVRO_FIXED)
        snprintf(buf, n, "%s %s",
                 t == AVRO_RECORD     ? "record"
                     : t == AVRO_ENUM ? "enum"
                                      : "fixed",
                 full_name(s, fn, sizeof(fn)));
    else snprintf(buf, n, "%s", avro_schema_type_name(s));
    return buf;
}

static void rs_mismatch(rs *x, avro_schema_t w, avro_schema_t r)
{
    char a[160], b[160];
    snprintf(x->why, sizeof(x->why), "the writer's %s cannot be read as %s",
             rs_desc(w, a, sizeof(a)), rs_desc(r, b, sizeof(b)));
}

static int rs_compat(rs *x, avro_schema_t w, avro_schema_t r);

static int rs_simple(rs *x, avro_schema_t w, avro_schema_t r, avro_schema_t root)
{
    avro_type_t rt = avro_typeof(r);
    int ok;
    switch (avro_typeof(w)) {
    case AVRO_NULL: ok = rt == AVRO_NULL; break;
    case AVRO_BOOLEAN: ok = rt == AVRO_BOOLEAN; break;
    case AVRO_BYTES: ok = rt == AVRO_BYTES; break;
    case AVRO_STRING: ok = rt == AVRO_STRING; break;
    case AVRO_INT32:
        ok = rt == AVRO_INT32 || rt == AVRO_INT64 || rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
        break;
    case AVRO_INT64: ok = rt == AVRO_INT64 || rt == AVRO_FLOAT || rt == AVRO_DOUBLE; break;
    case AVRO_FLOAT: ok = rt == AVRO_FLOAT || rt == AVRO_DOUBLE; break;
    case AVRO_DOUBLE: ok = rt == AVRO_DOUBLE; break;
    case AVRO_ENUM:
        ok = rt == AVRO_ENUM && strcmp(avro_schema_name(w), avro_schema_name(r)) == 0;
        break;
    case AVRO_FIXED: ok = avro_schema_equal(w, r) != 0; break;
    case AVRO_ARRAY:
    case AVRO_MAP: {
        int arr = avro_typeof(w) == AVRO_ARRAY;
        if (rt != avro_typeof(w)) {
            ok = 0;
            break;
        }
        rs_put(x, w, root);
        if (rs_compat(x, arr ? avro_schema_array_items(w) : avro_schema_map_values(w),
                      arr ? avro_schema_array_items(r) : avro_schema_map_values(r)))
            return RS_OK;
        rs_del(x, w, root);
        /* avro-c frees the half-built resolver's missing child: a NULL dereference */
        char inner[sizeof(x->why)];
        snprintf(inner, sizeof(inner), "%s", x->why);
        snprintf(x->why, sizeof(x->why), "%s %s: %.300s", arr ? "array" : "map",
                 arr ? "items" : "values", inner);
        if (!x->unsafe) {
            x->unsafe = 1;
            snprintf(x->unsafe_why, sizeof(x->unsafe_why), "%s", x->why);
        }
        return RS_ERR;
    }
    case AVRO_RECORD: {
        if (rt != AVRO_RECORD || strcmp(avro_schema_name(w), avro_schema_name(r)) != 0) {
            ok = 0;
            break;
        }
        rs_put(x, w, root);
        size_t n = avro_schema_record_size(r), resolved = 0;
        for (size_t i = 0; i < n; i++) {
            const char *f = avro_schema_record_field_name(r, (int)i);
            int wi = avro_schema_record_field_get_index(w, f);
            if (wi < 0) {
                char d[160];
                snprintf(x->why, sizeof(x->why), "the writer's %s has no field %s",
                         rs_desc(w, d, sizeof(d)), f);
            } else if (rs_compat(x, avro_schema_record_field_get_by_index(w, wi),
                                 avro_schema_record_field_get_by_index(r, (int)i))) {
                resolved++;
                continue;
            } else {
                char inner[sizeof(x->why)];
                snprintf(inner, sizeof(inner), "%s", x->why);
                snprintf(x->why, sizeof(x->why), "field %.60s: %.300s", f, inner);
            }
            rs_del(x, w, root);
            if (resolved && !x->unsafe) {
                x->unsafe = 1;
                snprintf(x->unsafe_why, sizeof(x->unsafe_why), "%s", x->why);
            }
            return RS_ERR;
        }
        return RS_OK;
    }
    default: ok = 0; break;
    }
    if (!ok) rs_mismatch(x, w, r);
    return ok ? RS_OK : RS_NO;
}

static int rs_compat(rs *x, avro_schema_t w, avro_schema_t r)
{
    r = rs_deref(r);
    if (++x->steps > TL_SCHEMA_MAX_RESOLVE_STEPS) return 0;
    if (rs_has(x, w, r)) return 1;
    avro_type_t wt = avro_typeof(w);
    if (wt == AVRO_UNION) {
        rs_put(x, w, r);
        int any = 0;
        for (size_t i = 0; i < avro_schema_union_size(w); i++)
            any |= rs_compat(x, avro_schema_union_branch(w, (int)i), r);
        if (!any) {
            char d[160];
            rs_del(x, w, r);
            snprintf(x->why, sizeof(x->why), "no branch of the writer's union can be read as %s",
                     rs_desc(r, d, sizeof(d)));
        }
        return any;
    }
    if (wt == AVRO_LINK) {
        rs_put(x, w, r);
        if (rs_compat(x, avro_schema_link_target(w), r)) return 1;
        rs_del(x, w, r);
        return 0;
    }
    if (avro_typeof(r) != AVRO_UNION) return rs_simple(x, w, r, r) == RS_OK;
    for (size_t i = 0; i < avro_schema_union_size(r); i++) {
        int rc = rs_simple(x, w, rs_deref(avro_schema_union_branch(r, (int)i)), r);
        if (rc == RS_OK) return 1;
        if (rc == RS_ERR) return 0;
    }
    char a[160];
    snprintf(x->why, sizeof(x->why),
             "the writer's %s cannot be read as any branch of the "
             "reader's union",
             rs_desc(w, a, sizeof(a)));
    return 0;
}

int tl_schema_check_resolution(avro_schema_t writer, avro_schema_t reader, char *err, size_t errlen)
{
    rs x = {0};
    int ok = rs_compat(&x, writer, reader);
    int rc = TL_SCHEMA_OK;
    if (x.steps > TL_SCHEMA_MAX_RESOLVE_STEPS) {
        snprintf(err, errlen,
                 "resolving the writer schema to the reader schema takes more "
                 "than %ld steps",
                 TL_SCHEMA_MAX_RESOLVE_STEPS);
        rc = TL_SCHEMA_INVALID;
    } else if (!ok) {
        snprintf(err, errlen, "%s", x.why);
        rc = TL_SCHEMA_INVALID;
    } else if (x.unsafe) {
        snprintf(err, errlen, "%s (in a union branch that avro-c cannot resolve safely)",
                 x.unsafe_why);
        rc = TL_SCHEMA_INVALID;
    }
    free(x.memo);
    return rc;
}

/* -------------------------------------------------------------- directory */

/* The id of a file name "<id>-<anything>.avsc", or -1. */
static int64_t file_id(const char *name)
{
    size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 5, ".avsc") != 0) return -1;
    int64_t id = 0;
    size_t i = 0;
    while (name[i] >= '0' && name[i] <= '9') {
        id = id * 10 + (name[i] - '0');
        if (id > INT32_MAX) return -1;
        i++;
    }
    if (i == 0 || name[i] != '-') return -1;
    return id;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    tl_buf b = {0};
    if (tl_buf_read_file(&b, path, TL_SCHEMA_MAX_FILE, err, errlen) != 0) {
        tl_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    if (!b.data) b.data = tl_xstrdup("");
    return b.data;
}

enum {
    LOAD_OK,
    LOAD_UNREADABLE,
    LOAD_UNPARSEABLE,
    LOAD_REFUSED
};

/* Parses and checks one schema file; *out set on LOAD_OK, err on anything else. */
static int load_file(const char *path, int32_t id, avro_schema_t *out, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return LOAD_UNREADABLE;
    char why[256];
    int rc = parse_schema(text, len, out, why, sizeof(why));
    free(text);
    if (rc == PARSE_NOT_AVRO) {
        snprintf(err, errlen, "%s is not a valid Avro schema: %s", path, why);
        return LOAD_UNPARSEABLE;
    }
    if (rc == PARSE_REFUSED) {
        snprintf(err, errlen, "schema id %d (%s) is refused: %s", (int)id, path, why);
        return LOAD_REFUSED;
    }
    return LOAD_OK;
}

/* Loads the directory's files. At startup (only_id < 0) an unreadable or unparseable
 * file, or two files of one id, is TL_SCHEMA_ERROR, and a file failing the checks is
 * kept as SS_BAD. With only_id >= 0 (a miss), loads just that id: TL_SCHEMA_OK,
 * TL_SCHEMA_INVALID (unparseable or refused; err says why), TL_SCHEMA_ERROR
 * (unreadable) or TL_SCHEMA_NOT_FOUND when no file has it. */
static int scan_dir(tl_schema_store *s, int64_t only_id, char *err, size_t errlen)
{
    DIR *d = opendir(s->dir);
    if (!d) {
        snprintf(err, errlen, "cannot open schema.dir %s: %s", s->dir, strerror(errno));
        return TL_SCHEMA_ERROR;
    }
    int rc = only_id >= 0 ? TL_SCHEMA_NOT_FOUND : TL_SCHEMA_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t id = file_id(de->d_name);
        if (id < 0 || (only_id >= 0 && id != only_id)) continue;
        size_t plen = strlen(s->dir) + strlen(de->d_name) + 2;
        char *path = tl_xmalloc(plen);
        snprintf(path, plen, "%s/%s", s->dir, de->d_name);
        ss_entry *e = tab_find(s, (int32_t)id);
        if (e && e->path) {
            snprintf(err, errlen, "schema.dir %s has two files for schema id %d: %s and %s", s->dir,
                     (int)id, e->path, path);
            free(path);
            rc = TL_SCHEMA_ERROR;
            break;
        }
        avro_schema_t schema = NULL;
        int lrc = load_file(path, (int32_t)id, &schema, err, errlen);
        if (lrc == LOAD_REFUSED) s->st.invalid++;
        if (lrc == LOAD_REFUSED && only_id < 0) {
            e = tab_add(s, (int32_t)id, SS_BAD);
            e->path = path;
            e->msg = tl_xstrdup(err);
            continue;
        }
        if (lrc != LOAD_OK) {
            free(path);
            rc = lrc == LOAD_UNREADABLE ? TL_SCHEMA_ERROR
                : only_id >= 0          ? TL_SCHEMA_INVALID
                                        : TL_SCHEMA_ERROR;
            if (lrc == LOAD_UNPARSEABLE && only_id >= 0) s->st.invalid++;
            break;
        }
        e = tab_add(s, (int32_t)id, SS_DIR);
        e->schema = schema;
        e->path = path;
        if (only_id >= 0) rc = TL_SCHEMA_OK;
    }
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------------- http */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    tl_buf *b = arg;
    size_t k = size * n;
    if (b->len + k > TL_SCHEMA_MAX_RESPONSE) return 0; /* aborts the transfer */
    tl_buf_append(b, p, k);
    return k;
}

/* One request to the registry. TL_SCHEMA_OK with *status set, or TL_SCHEMA_ERROR. */
static int http(tl_schema_store *s, const char *url, const char *post_body, long *status,
                tl_buf *resp, char *err, size_t errlen)
{
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    CURL *c = s->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tally");
    if (s->basic_auth) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, s->basic_auth);
    }
    if (s->ca_path) curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_path);
    hdr = curl_slist_append(hdr,
                            "Accept: application/vnd.schemaregistry.v1+json, "
                            "application/json");
    if (post_body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/vnd.schemaregistry.v1+json");
        hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post_body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);

    s->st.requests++;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "schema registry %s: %s", s->url_shown,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        return TL_SCHEMA_ERROR;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return TL_SCHEMA_OK;
}

/* The registry's error body {"error_code":N,"message":"..."}: code (0 if none). */
static int64_t registry_error(const tl_json *body, const char **message)
{
    const tl_json *code = tl_json_get(body, "error_code");
    const char *m = tl_json_str(tl_json_get(body, "message"));
    *message = m ? m : "no message";
    return code && code->type == TL_JSON_NUMBER && code->is_int ? code->i : 0;
}

static void not_found_msg(tl_schema_store *s, int32_t id, char *err, size_t errlen)
{
    if (s->dir && s->url)
        snprintf(err, errlen, "schema id %d not found in schema.dir %s nor at %s", (int)id, s->dir,
                 s->url_shown);
    else if (s->dir)
        snprintf(err, errlen, "schema id %d not found in schema.dir %s", (int)id, s->dir);
    else if (s->url) snprintf(err, errlen, "schema id %d not found at %s", (int)id, s->url_shown);
    else
        snprintf(err, errlen,
                 "schema id %d not found: neither schema.dir nor schema.registry.url is set",
                 (int)id);
}

/* GET {url}/schemas/ids/{id}. On OK *out holds a new reference. */
static int registry_fetch(tl_schema_store *s, int32_t id, avro_schema_t *out, char *err,
                          size_t errlen)
{
    size_t ulen = strlen(s->url) + 32;
    char *url = tl_xmalloc(ulen);
    snprintf(url, ulen, "%s/schemas/ids/%d", s->url, (int)id);
    tl_buf resp = {0};
    tl_arena a;
    tl_arena_init(&a, 4096);
    long status = 0;
    char jerr[128];
    int rc = http(s, url, NULL, &status, &resp, err, errlen);
    if (rc != TL_SCHEMA_OK) goto out;

    const tl_json *body =
        tl_json_parse(resp.data ? resp.data : "", resp.len, &a, jerr, sizeof(jerr));
    const char *message;
    if (status == 404 && body && registry_error(body, &message) / 100 == 404) {
        not_found_msg(s, id, err, errlen);
        rc = TL_SCHEMA_NOT_FOUND;
        goto out;
    }
    if (status != 200) {
        if (body) registry_error(body, &message);
        else message = "response is not JSON";
        snprintf(err, errlen, "schema registry %s answered HTTP %ld for schema id %d: %s",
                 s->url_shown, status, (int)id, message);
        rc = TL_SCHEMA_ERROR;
        goto out;
    }
    const tl_json *text = tl_json_get(body, "schema");
    if (!body || !text || text->type != TL_JSON_STRING) {
        snprintf(err, errlen,
                 "schema registry %s: the response for schema id %d has no "
                 "\"schema\" string",
                 s->url_shown, (int)id);
        rc = TL_SCHEMA_ERROR;
        goto out;
    }
    const char *type = tl_json_str(tl_json_get(body, "schemaType"));
    if (type && strcmp(type, "AVRO") != 0) {
        snprintf(err, errlen, "schema id %d at %s is a %s schema, not Avro", (int)id, s->url_shown,
                 type);
        rc = TL_SCHEMA_INVALID;
        goto out;
    }
    char why[256];
    int prc = parse_schema(text->str, text->len, out, why, sizeof(why));
    if (prc != PARSE_OK) {
        snprintf(err, errlen, "schema id %d at %s is %s: %s", (int)id, s->url_shown,
                 prc == PARSE_NOT_AVRO ? "not a valid Avro schema" : "refused", why);
        rc = TL_SCHEMA_INVALID;
        goto out;
    }
    rc = TL_SCHEMA_OK;
out:
    tl_arena_destroy(&a);
    tl_buf_free(&resp);
    free(url);
    return rc;
}

/* ----------------------------------------------------------------- public */

/* The URL without "user:password@", for messages. */
static char *url_without_userinfo(const char *url)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    if (!at || (slash && at > slash)) return tl_xstrdup(url);
    size_t n = (size_t)(host - url);
    char *out = tl_xmalloc(strlen(url) + 1);
    memcpy(out, url, n);
    strcpy(out + n, at + 1);
    return out;
}

tl_schema_store *tl_schema_store_new(const tl_schema_store_opts *o, char *err, size_t errlen)
{
    tl_schema_store *s = tl_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : TL_SCHEMA_DEFAULT_TIMEOUT_MS;
    s->lookup_only = o->lookup_only;
    s->negative_ns = (int64_t)(o->negative_cache_ms > 0 ? o->negative_cache_ms
                                                        : TL_SCHEMA_DEFAULT_NEGATIVE_CACHE_MS) *
        1000000;
    neg_init(&s->neg,
             o->negative_cache_max > 0 ? (size_t)o->negative_cache_max
                                       : TL_SCHEMA_DEFAULT_NEGATIVE_CACHE_MAX);
    s->rate = o->max_lookups_per_second > 0 ? o->max_lookups_per_second
                                            : TL_SCHEMA_DEFAULT_MAX_LOOKUPS_PER_SECOND;
    s->clock_ns = o->clock_ns ? o->clock_ns : mono_clock;
    s->clock_arg = o->clock_arg;
    s->tokens = s->rate < 1 ? 1 : s->rate;
    s->tokens_ns = now_ns(s);
    if (nonempty(o->dir)) {
        s->dir = tl_xstrdup(o->dir);
        size_t n = strlen(s->dir);
        while (n > 1 && s->dir[n - 1] == '/') s->dir[--n] = '\0';
        if (scan_dir(s, -1, err, errlen) != TL_SCHEMA_OK) goto fail;
    }
    if (nonempty(o->registry_url)) {
        s->url = tl_xstrdup(o->registry_url);
        size_t n = strlen(s->url);
        while (n > 0 && s->url[n - 1] == '/') s->url[--n] = '\0';
        s->url_shown = url_without_userinfo(s->url);
        if (nonempty(o->basic_auth)) s->basic_auth = tl_xstrdup(o->basic_auth);
        if (nonempty(o->ca_path)) s->ca_path = tl_xstrdup(o->ca_path);
        pthread_once(&curl_once, curl_init_once);
        if (curl_init_rc != CURLE_OK || !(s->curl = curl_easy_init())) {
            snprintf(err, errlen, "cannot initialise libcurl for the schema registry");
            goto fail;
        }
    }
    return s;
fail:
    tl_schema_store_destroy(s);
    return NULL;
}

void tl_schema_store_destroy(tl_schema_store *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].kind != SS_EMPTY) entry_free(&s->tab[i]);
    neg_destroy(&s->neg);
    if (s->curl) curl_easy_cleanup(s->curl);
    if (s->basic_auth) memset(s->basic_auth, 0, strlen(s->basic_auth));
    pthread_mutex_destroy(&s->lock);
    TL_FREE_ALL(s->tab, s->dir, s->url, s->url_shown, s->basic_auth, s->ca_path, s);
}

/* Takes a token for one registry lookup: 1, or 0 when the bucket is empty. The bucket
 * holds rate tokens (at least one) and refills at rate per second of the time not
 * spent in lookups (get_locked moves tokens_ns past each request): so lookups are at
 * most rate a second on the wall clock, and a slow registry cannot make them fill it
 * (20 a second of a registry answering in 65 ms would be the partition's whole time). */
static int take_token(tl_schema_store *s)
{
    int64_t now = now_ns(s);
    double size = s->rate < 1 ? 1 : s->rate;
    if (now > s->tokens_ns) {
        s->tokens += (double)(now - s->tokens_ns) * 1e-9 * s->rate;
        if (s->tokens > size) s->tokens = size;
    }
    s->tokens_ns = now;
    if (s->tokens < 1) return 0;
    s->tokens -= 1;
    return 1;
}

static int get_locked(tl_schema_store *s, int32_t id, avro_schema_t *out, char *err, size_t errlen)
{
    ss_entry *e = tab_find(s, id);
    if (e && e->kind == SS_BAD) {
        s->st.negative_cache_hits++;
        snprintf(err, errlen, "%s", e->msg);
        return TL_SCHEMA_INVALID;
    }
    if (e) {
        *out = e->schema;
        return TL_SCHEMA_OK;
    }
    neg_entry *ne = neg_find(&s->neg, id);
    if (ne && now_ns(s) < ne->until_ns) {
        s->st.negative_cache_hits++;
        snprintf(err, errlen, "%s", ne->msg);
        return ne->code;
    }

    int rc = TL_SCHEMA_NOT_FOUND;
    if (s->dir) {
        rc = id < 0 ? TL_SCHEMA_NOT_FOUND : scan_dir(s, id, err, errlen);
        if (rc == TL_SCHEMA_OK) {
            if (ne) neg_remove(&s->neg, id);
            *out = tab_find(s, id)->schema;
            return rc;
        }
        if (rc == TL_SCHEMA_INVALID) {
            put_negative(s, id, rc, err);
            return rc;
        }
        if (rc == TL_SCHEMA_ERROR) return rc;
    }
    if (s->url) {
        if (!take_token(s)) {
            s->st.rate_limited++;
            if (s->registry_failing) {
                snprintf(err, errlen,
                         "schema registry %s is failing, and schema id %d waits "
                         "its turn (schema.registry.max.lookups.per.second=%g)",
                         s->url_shown, (int)id, s->rate);
                return TL_SCHEMA_ERROR;
            }
            snprintf(err, errlen,
                     "schema id %d was not looked up at %s: more than %g new "
                     "schema ids per second (schema.registry.max.lookups.per.second); the "
                     "record can be replayed",
                     (int)id, s->url_shown, s->rate);
            return TL_SCHEMA_NOT_FOUND;
        }
        avro_schema_t schema;
        s->st.lookups++;
        rc = registry_fetch(s, id, &schema, err, errlen);
        s->tokens_ns = now_ns(s); /* time spent waiting for the registry earns no token */
        s->registry_failing = rc == TL_SCHEMA_ERROR;
        if (rc == TL_SCHEMA_OK) {
            if (ne) neg_remove(&s->neg, id);
            e = tab_add(s, id, SS_REGISTRY);
            e->schema = schema;
            *out = schema;
            return rc;
        }
        if (rc == TL_SCHEMA_ERROR) {
            s->st.lookup_errors++;
            return rc;
        }
        if (rc == TL_SCHEMA_INVALID) {
            s->st.invalid++;
            put_negative(s, id, rc, err);
            return rc;
        }
        s->st.not_found++;
    }
    not_found_msg(s, id, err, errlen);
    put_negative(s, id, TL_SCHEMA_NOT_FOUND, err);
    return TL_SCHEMA_NOT_FOUND;
}

int tl_schema_store_get(tl_schema_store *s, int32_t id, avro_schema_t *out, char *err,
                        size_t errlen)
{
    pthread_mutex_lock(&s->lock);
    int rc = get_locked(s, id, out, err, errlen);
    pthread_mutex_unlock(&s->lock);
    return rc;
}
/* POST {url}/subjects/{subject}/versions (register), or with lookup_only
 * POST {url}/subjects/{subject} (look up: Confluent answers 404 with error_code 40401
 * for an unknown subject, 40403 for a schema the subject does not have). */
static int register_registry(tl_schema_store *s, const char *subject, const char *schema_json,
                             avro_schema_t parsed, int *id_out, char *err, size_t errlen)
{
    char *esc = curl_easy_escape(s->curl, subject, 0);
    size_t ulen = strlen(s->url) + strlen(esc) + 32;
    char *url = tl_xmalloc(ulen);
    snprintf(url, ulen, "%s/subjects/%s%s", s->url, esc, s->lookup_only ? "" : "/versions");
    curl_free(esc);

    tl_buf req = {0}, resp = {0};
    tl_buf_puts(&req, "{\"schema\":");
    tl_json_put_str(&req, schema_json);
    tl_buf_putc(&req, '}');
    tl_arena a;
    tl_arena_init(&a, 1024);
    long status = 0;
    char jerr[128];
    const char *message;
    int rc = http(s, url, req.data, &status, &resp, err, errlen);
    if (rc != TL_SCHEMA_OK) goto out;
    const tl_json *body =
        tl_json_parse(resp.data ? resp.data : "", resp.len, &a, jerr, sizeof(jerr));
    const tl_json *id = tl_json_get(body, "id");
    if (status == 200 && id && id->type == TL_JSON_NUMBER && id->is_int && id->i >= 0 &&
        id->i <= INT32_MAX) {
        *id_out = (int)id->i;
        if (!tab_find(s, (int32_t)id->i)) {
            if (neg_find(&s->neg, (int32_t)id->i)) neg_remove(&s->neg, (int32_t)id->i);
            ss_entry *e = tab_add(s, (int32_t)id->i, SS_REGISTRY);
            e->schema = avro_schema_incref(parsed);
        }
        rc = TL_SCHEMA_OK;
        goto out;
    }
    int64_t code = body ? registry_error(body, &message) : 0;
    if (!body) message = "response is not JSON";
    if (s->lookup_only && status == 404 && (code == 40401 || code == 40403)) {
        snprintf(err, errlen,
                 "subject %s %s at schema registry %s, and "
                 "schema.registry.auto.register=false forbids registering it (%s)",
                 subject, code == 40401 ? "is not registered" : "does not hold this schema",
                 s->url_shown, message);
        rc = TL_SCHEMA_NOT_FOUND;
        goto out;
    }
    snprintf(err, errlen, "schema registry %s refused to %s subject %s (HTTP %ld): %s",
             s->url_shown, s->lookup_only ? "look up the schema of" : "register", subject, status,
             message);
    rc = status == 422 ? TL_SCHEMA_INVALID : TL_SCHEMA_ERROR;
out:
    tl_arena_destroy(&a);
    tl_buf_free(&req);
    tl_buf_free(&resp);
    free(url);
    return rc;
}

static int register_dir(tl_schema_store *s, const char *subject, avro_schema_t parsed, int *id_out,
                        char *err, size_t errlen)
{
    int64_t best = -1;
    for (size_t i = 0; i < s->cap; i++) {
        ss_entry *e = &s->tab[i];
        if (e->kind == SS_DIR && (best < 0 || e->id < best) && avro_schema_equal(e->schema, parsed))
            best = e->id;
    }
    if (best < 0) {
        snprintf(err, errlen,
                 "no file in schema.dir %s holds the schema of subject %s "
                 "(add it as <id>-%s.avsc, or set schema.registry.url)",
                 s->dir, subject, subject);
        return TL_SCHEMA_NOT_FOUND;
    }
    *id_out = (int)best;
    return TL_SCHEMA_OK;
}

int tl_schema_store_register(tl_schema_store *s, const char *subject, const char *schema_json,
                             int *id_out, char *err, size_t errlen)
{
    avro_schema_t parsed;
    char why[256] = "none given";
    int prc = schema_json
        ? parse_schema(schema_json, strlen(schema_json), &parsed, why, sizeof(why))
        : PARSE_NOT_AVRO;
    if (prc != PARSE_OK) {
        snprintf(err, errlen, "the schema of subject %s is %s: %s", subject,
                 prc == PARSE_NOT_AVRO ? "not a valid Avro schema" : "refused", why);
        return TL_SCHEMA_INVALID;
    }
    int rc;
    pthread_mutex_lock(&s->lock);
    if (s->url) {
        rc = register_registry(s, subject, schema_json, parsed, id_out, err, errlen);
    } else if (s->dir) {
        rc = register_dir(s, subject, parsed, id_out, err, errlen);
    } else {
        snprintf(err, errlen,
                 "cannot find an id for subject %s: neither schema.dir nor "
                 "schema.registry.url is set",
                 subject);
        rc = TL_SCHEMA_NOT_FOUND;
    }
    pthread_mutex_unlock(&s->lock);
    avro_schema_decref(parsed);
    return rc;
}

uint64_t tl_schema_store_registry_requests(tl_schema_store *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->st.requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void tl_schema_store_stats_get(tl_schema_store *s, tl_schema_store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->st;
    out->negative_entries = s->neg.n;
    pthread_mutex_unlock(&s->lock);
}
