# avro-c 1.11 (Debian's libavro23), avro_schema_from_json_length: a schema that defines a
# named type twice (two enums "E") leaks about 1 KB per parse, also when tally's
# tl_schema_check then refuses it (here from registry_fetch, ingest/schema_store.c). Not
# tally's code, reached through it. Input: leak-dee36103 (a registry answering that schema).
ERROR: LeakSanitizer
in avro_schema_from_json_length
