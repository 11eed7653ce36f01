# core/json.c, tl_json_put_strn writes the bytes of a string as they are: text that is not
# UTF-8 (from a corrupt stored record, a path file in another encoding, a percent-decoded
# request path) makes JSON that is not JSON. Seen in the profile (features/profile.c), the
# paths --output file (cmd/paths.c) and the 404 body of /v1/users/{id} (cmd/observe.c).
FUZZ CHECK FAILED
invalid UTF-8 in string
