/* kcobra_submit_batch.h - `kcobra submit --batch` (kcobra_submit_batch.c). */
#ifndef KCOBRA_SUBMIT_BATCH_H
#define KCOBRA_SUBMIT_BATCH_H

#include <stdint.h>

#include "kcobra_common.h"

enum {
    KCOBRA_SUBMIT_WINDOW_DEFAULT = 1024, /* --window: submits in flight */
    KCOBRA_SUBMIT_WINDOW_MAX = 65536,    /* libkingcobra's bound */
};

/* Submits each line of path ("-": stdin) as a durable request of type, with
 * up to window in flight; prints the summary. KCOBRA_EXIT_OK when every line
 * was acknowledged, KCOBRA_EXIT_FAILURE when any failed. */
int kcobra_submit_batch(const kcobra_common *common, const char *type, const char *path,
                        int64_t window);

#endif
