# model/model.c, tl_model_tick: "now < m->window_start + len" overflows (UBSan
# signed-integer-overflow) when a checkpoint's Markov window start is near INT64_MAX;
# model_restore takes window_start from the file unchecked. Input: crash-84b6efea (the
# generated "trained" checkpoint with window_start = 0x7fffffffffffff00).
signed integer overflow
in tl_model_tick
