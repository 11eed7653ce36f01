# avro-c 1.11 (Debian's libavro23), avro_schema_from_json_length: a schema that defines a
# named type twice (two enums "E") leaks about 1 KB per parse, also when tally's
# tl_schema_check then refuses it (ingest/schema_store.c load_file / registry_fetch). Not
# tally's code: reached through it with any writer schema. Input: leak-fa824032.
ERROR: LeakSanitizer
in avro_schema_from_json_length
