/*
 * libFuzzer's driver, for fuzzers that keep their own main (SwiftPM gives every
 * executable one). Linked by -sanitize=fuzzer; nothing links it in ordinary builds,
 * where the fuzzers only replay files and never call it.
 */
#ifndef NBDTOP_CLIBFUZZER_H
#define NBDTOP_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*test_one_input)(const uint8_t *data, size_t size));

#endif
