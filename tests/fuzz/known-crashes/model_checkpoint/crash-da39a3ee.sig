# model/model.c, model_restore: an empty checkpoint file leaves b.data NULL and
# "b.data + b.len" is pointer arithmetic on NULL (UBSan). Input: crash-da39a3ee (empty).
applying zero offset to null pointer
in model_restore
