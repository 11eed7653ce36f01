/*
 * schema_store.c -- Confluent schema id -> Avro writer schema, from a directory of
 * .avsc files and/or a Confluent-API schema registry, with a cache.
 *
 * How: one open-addressing hash table keyed by id holds every schema the store has
 * seen: directory schemas (loaded and parsed eagerly by tl_schema_store_new, so a
 * broken file fails at startup, not on the first record that needs it), registry
 * schemas (fetched on first use with libcurl) and negative entries (ids found
 * nowhere, or found but unusable, remembered for TL_SCHEMA_NEGATIVE_TTL_MS with
 * their message). A miss rescans the directory for that one id before asking the
 * registry, so a file dropped into schema.dir after startup is found. Registry
 * responses are parsed with core/json; schema text is parsed with avro-c.
 *
 * Invariants:
 *   - a positive entry is never removed or replaced, so the avro_schema_t handed out
 *     stays valid until destroy;
 *   - an HTTP 404 counts as "not found" only when the body is a registry error
 *     (error_code 404xx); any other failure (connection, timeout, 5xx, 401, a 404 page
 *     from something that is not a registry) is TL_SCHEMA_ERROR and is not cached,
 *     so a registry outage never turns good records into dead letters;
 *   - negative entries are bounded (TL_SCHEMA_MAX_NEGATIVE); past that they are all
 *     dropped at once;
 *   - user:password never appears in a message: it is passed with CURLOPT_USERPWD and
 *     any userinfo in the registry URL is removed from the URL we print.
 *
 * Threading: one mutex guards the table and the curl handle; requests are made with
 * it held (a fetch is rare and bounded by timeout_ms).
 *
 * Rejected alternatives: libserdes (not packaged for Debian, and brings its own
 * Avro binding); lazy parsing of the directory (errors would surface mid-stream as
 * dead letters instead of at startup); caching misses forever (a producer may
 * register a schema after its first records fail); one curl handle per request (the
 * reused handle keeps the connection and TLS session alive).
 */
#include "schema_store.h"

#include "arena.h"
#include "json.h"
#include "util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TL_SCHEMA_MAX_NEGATIVE 4096
#define TL_SCHEMA_MAX_FILE (16u << 20)
#define TL_SCHEMA_MAX_RESPONSE (16u << 20)

typedef enum ss_kind { SS_EMPTY = 0, SS_DIR, SS_REGISTRY, SS_NEGATIVE } ss_kind;

typedef struct ss_entry {
    int32_t id;
    ss_kind kind;
    avro_schema_t schema;     /* SS_DIR, SS_REGISTRY */
    char *path;               /* SS_DIR: the file it came from */
    int code;                 /* SS_NEGATIVE: TL_SCHEMA_NOT_FOUND or TL_SCHEMA_INVALID */
    char *msg;                /* SS_NEGATIVE: the message to repeat */
    int64_t until_ns;         /* SS_NEGATIVE: expiry (tl_mono_ns) */
} ss_entry;

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
    size_t cap, n, n_negative;
    uint64_t requests;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int nonempty(const char *s) { return s && *s; }

/* ------------------------------------------------------------------ table */

static size_t slot_of(int32_t id, size_t cap)
{
    uint32_t h = (uint32_t)id * 2654435761u;
    return (size_t)h & (cap - 1);
}

static ss_entry *tab_find(tl_schema_store *s, int32_t id)
{
    if (!s->cap) return NULL;
    for (size_t i = slot_of(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
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

static void tab_rehash(tl_schema_store *s, size_t cap, int drop_negative)
{
    ss_entry *old = s->tab;
    size_t oldcap = s->cap;
    s->tab = tl_xcalloc(cap, sizeof(*s->tab));
    s->cap = cap;
    s->n = s->n_negative = 0;
    for (size_t i = 0; i < oldcap; i++) {
        ss_entry *e = &old[i];
        if (e->kind == SS_EMPTY) continue;
        if (drop_negative && e->kind == SS_NEGATIVE) {
            entry_free(e);
            continue;
        }
        size_t j = slot_of(e->id, cap);
        while (s->tab[j].kind != SS_EMPTY) j = (j + 1) & (cap - 1);
        s->tab[j] = *e;
        s->n++;
        if (e->kind == SS_NEGATIVE) s->n_negative++;
    }
    free(old);
}

/* The entry for id, created empty-of-data (kind set by the caller) if missing. */
static ss_entry *tab_put(tl_schema_store *s, int32_t id, ss_kind kind)
{
    ss_entry *e = tab_find(s, id);
    if (e) {
        if (e->kind == SS_NEGATIVE) s->n_negative--;
        entry_free(e);
    } else {
        if (kind == SS_NEGATIVE && s->n_negative >= TL_SCHEMA_MAX_NEGATIVE)
            tab_rehash(s, s->cap, 1);
        if ((s->n + 1) * 2 > s->cap) tab_rehash(s, s->cap ? s->cap * 2 : 64, 0);
        size_t i = slot_of(id, s->cap);
        while (s->tab[i].kind != SS_EMPTY) i = (i + 1) & (s->cap - 1);
        e = &s->tab[i];
        s->n++;
    }
    e->id = id;
    e->kind = kind;
    if (kind == SS_NEGATIVE) s->n_negative++;
    return e;
}

static void put_negative(tl_schema_store *s, int32_t id, int code, const char *msg)
{
    ss_entry *e = tab_put(s, id, SS_NEGATIVE);
    e->code = code;
    e->msg = tl_xstrdup(msg);
    e->until_ns = tl_mono_ns() + (int64_t)TL_SCHEMA_NEGATIVE_TTL_MS * 1000000;
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
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    tl_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > TL_SCHEMA_MAX_FILE) {
            snprintf(err, errlen, "%s is larger than %u bytes", path, TL_SCHEMA_MAX_FILE);
            goto fail;
        }
        tl_buf_append(&b, chunk, n);
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = b.len;
    if (!b.data) b.data = tl_xstrdup("");
    return b.data;
fail:
    fclose(f);
    tl_buf_free(&b);
    return NULL;
}

/* Parses one schema file. TL_SCHEMA_OK, TL_SCHEMA_ERROR (unreadable) or INVALID. */
static int load_file(const char *path, avro_schema_t *out, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return TL_SCHEMA_ERROR;
    int rc = avro_schema_from_json_length(text, len, out);
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "%s is not a valid Avro schema: %s", path, avro_strerror());
        return TL_SCHEMA_INVALID;
    }
    return TL_SCHEMA_OK;
}

/* Loads the directory's files. With only_id >= 0, loads just that id (a miss) and
 * returns TL_SCHEMA_NOT_FOUND when no file has it. */
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
        if (e && e->kind == SS_DIR) {
            snprintf(err, errlen, "schema.dir %s has two files for schema id %d: %s and %s",
                     s->dir, (int)id, e->path, path);
            free(path);
            rc = TL_SCHEMA_ERROR;
            break;
        }
        avro_schema_t schema;
        int lrc = load_file(path, &schema, err, errlen);
        if (lrc != TL_SCHEMA_OK) {
            free(path);
            rc = lrc;
            break;
        }
        e = tab_put(s, (int32_t)id, SS_DIR);
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
    if (b->len + k > TL_SCHEMA_MAX_RESPONSE) return 0;   /* aborts the transfer */
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
    hdr = curl_slist_append(hdr, "Accept: application/vnd.schemaregistry.v1+json, "
                                 "application/json");
    if (post_body) {
        hdr = curl_slist_append(hdr, "Content-Type: application/vnd.schemaregistry.v1+json");
        hdr = curl_slist_append(hdr, "Expect:");   /* no 100-continue round trip */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post_body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);

    s->requests++;
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
        snprintf(err, errlen, "schema id %d not found in schema.dir %s nor at %s", (int)id,
                 s->dir, s->url_shown);
    else if (s->dir)
        snprintf(err, errlen, "schema id %d not found in schema.dir %s", (int)id, s->dir);
    else if (s->url)
        snprintf(err, errlen, "schema id %d not found at %s", (int)id, s->url_shown);
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

    const tl_json *body = tl_json_parse(resp.data ? resp.data : "", resp.len, &a, jerr,
                                        sizeof(jerr));
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
        snprintf(err, errlen, "schema registry %s: the response for schema id %d has no "
                 "\"schema\" string", s->url_shown, (int)id);
        rc = TL_SCHEMA_ERROR;
        goto out;
    }
    const char *type = tl_json_str(tl_json_get(body, "schemaType"));
    if (type && strcmp(type, "AVRO") != 0) {
        snprintf(err, errlen, "schema id %d at %s is a %s schema, not Avro", (int)id,
                 s->url_shown, type);
        rc = TL_SCHEMA_INVALID;
        goto out;
    }
    if (avro_schema_from_json_length(text->str, text->len, out) != 0) {
        snprintf(err, errlen, "schema id %d at %s is not a valid Avro schema: %s", (int)id,
                 s->url_shown, avro_strerror());
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
    free(s->tab);
    if (s->curl) curl_easy_cleanup(s->curl);
    free(s->dir);
    free(s->url);
    free(s->url_shown);
    if (s->basic_auth) memset(s->basic_auth, 0, strlen(s->basic_auth));
    free(s->basic_auth);
    free(s->ca_path);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int get_locked(tl_schema_store *s, int32_t id, avro_schema_t *out, char *err,
                      size_t errlen)
{
    ss_entry *e = tab_find(s, id);
    if (e && e->kind != SS_NEGATIVE) {
        *out = e->schema;
        return TL_SCHEMA_OK;
    }
    if (e && tl_mono_ns() < e->until_ns) {
        snprintf(err, errlen, "%s", e->msg);
        return e->code;
    }

    int rc = TL_SCHEMA_NOT_FOUND;
    if (s->dir) {
        rc = id < 0 ? TL_SCHEMA_NOT_FOUND : scan_dir(s, id, err, errlen);
        if (rc == TL_SCHEMA_OK) {
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
        avro_schema_t schema;
        rc = registry_fetch(s, id, &schema, err, errlen);
        if (rc == TL_SCHEMA_OK) {
            e = tab_put(s, id, SS_REGISTRY);
            e->schema = schema;
            *out = schema;
            return rc;
        }
        if (rc == TL_SCHEMA_ERROR) return rc;
        if (rc == TL_SCHEMA_INVALID) {
            put_negative(s, id, rc, err);
            return rc;
        }
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
    const tl_json *body = tl_json_parse(resp.data ? resp.data : "", resp.len, &a, jerr,
                                        sizeof(jerr));
    const tl_json *id = tl_json_get(body, "id");
    if (status == 200 && id && id->type == TL_JSON_NUMBER && id->is_int && id->i >= 0 &&
        id->i <= INT32_MAX) {
        *id_out = (int)id->i;
        ss_entry *e = tab_find(s, (int32_t)id->i);
        if (!e || e->kind == SS_NEGATIVE) {
            e = tab_put(s, (int32_t)id->i, SS_REGISTRY);
            e->schema = avro_schema_incref(parsed);
        }
        rc = TL_SCHEMA_OK;
        goto out;
    }
    int64_t code = body ? registry_error(body, &message) : 0;
    if (!body) message = "response is not JSON";
    if (s->lookup_only && status == 404 && (code == 40401 || code == 40403)) {
        snprintf(err, errlen, "subject %s %s at schema registry %s, and "
                 "schema.registry.auto.register=false forbids registering it (%s)", subject,
                 code == 40401 ? "is not registered" : "does not hold this schema",
                 s->url_shown, message);
        rc = TL_SCHEMA_NOT_FOUND;
        goto out;
    }
    snprintf(err, errlen, "schema registry %s refused to %s subject %s (HTTP %ld): %s",
             s->url_shown, s->lookup_only ? "look up the schema of" : "register", subject,
             status, message);
    rc = status == 422 ? TL_SCHEMA_INVALID : TL_SCHEMA_ERROR;
out:
    tl_arena_destroy(&a);
    tl_buf_free(&req);
    tl_buf_free(&resp);
    free(url);
    return rc;
}

static int register_dir(tl_schema_store *s, const char *subject, avro_schema_t parsed,
                        int *id_out, char *err, size_t errlen)
{
    int64_t best = -1;
    for (size_t i = 0; i < s->cap; i++) {
        ss_entry *e = &s->tab[i];
        if (e->kind == SS_DIR && (best < 0 || e->id < best) && avro_schema_equal(e->schema, parsed))
            best = e->id;
    }
    if (best < 0) {
        snprintf(err, errlen, "no file in schema.dir %s holds the schema of subject %s "
                 "(add it as <id>-%s.avsc, or set schema.registry.url)", s->dir, subject,
                 subject);
        return TL_SCHEMA_NOT_FOUND;
    }
    *id_out = (int)best;
    return TL_SCHEMA_OK;
}

int tl_schema_store_register(tl_schema_store *s, const char *subject, const char *schema_json,
                             int *id_out, char *err, size_t errlen)
{
    avro_schema_t parsed;
    if (!schema_json || avro_schema_from_json_length(schema_json, strlen(schema_json), &parsed)) {
        snprintf(err, errlen, "the schema of subject %s is not a valid Avro schema: %s", subject,
                 schema_json ? avro_strerror() : "none given");
        return TL_SCHEMA_INVALID;
    }
    int rc;
    pthread_mutex_lock(&s->lock);
    if (s->url) {
        rc = register_registry(s, subject, schema_json, parsed, id_out, err, errlen);
    } else if (s->dir) {
        rc = register_dir(s, subject, parsed, id_out, err, errlen);
    } else {
        snprintf(err, errlen, "cannot find an id for subject %s: neither schema.dir nor "
                 "schema.registry.url is set", subject);
        rc = TL_SCHEMA_NOT_FOUND;
    }
    pthread_mutex_unlock(&s->lock);
    avro_schema_decref(parsed);
    return rc;
}

uint64_t tl_schema_store_registry_requests(tl_schema_store *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}
