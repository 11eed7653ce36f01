/*
 * avro_canon.h -- the Parsing Canonical Form of an Avro schema (Avro specification,
 * "Transforming into Parsing Canonical Form"): full names, only the attributes that
 * matter to the binary encoding, no docs, aliases, defaults or logical types. Two schemas
 * with the same form encode every value the same way: the codec's fast path compares a
 * writer's form with the reader's (codec.c).
 */
#ifndef TL_AVRO_CANON_H
#define TL_AVRO_CANON_H

#include <avro.h>

/* The canonical form of s as a new string (the caller frees it), or NULL for a type
 * avro-c 1.11 cannot hold in a schema; of a record, with only its first nf fields
 * (nf < 0: all of them). */
char *tl_avro_canonical_form(avro_schema_t s, int nf);

#endif
