/* hlc.h - hybrid logical clock (Kulkarni et al., 2014): a timestamp is
 * (wall ms, counter). now() never goes backwards on a node; observe() moves
 * the clock past a timestamp received from another node, so an event caused
 * by a message always orders after the message's send event, whatever the
 * nodes' wall clocks say. A received timestamp more than drift_ms_max ahead
 * of the local wall clock is refused (KC_ERR_BAD_HEADER) rather than allowed
 * to drag the clock into the future. Text form: "<wall ms>.<counter>". */
#ifndef KCI_HLC_H
#define KCI_HLC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kingcobra/err.h"

enum {
    KCI_HLC_TEXT_BYTES_MAX = 32,
    KCI_HLC_DRIFT_MS_DEFAULT = 60 * 1000,
};

typedef struct kci_hlc_timestamp {
    int64_t wall_ms;
    uint32_t counter;
} kci_hlc_timestamp;

typedef int64_t (*kci_clock_ms)(void *context);

typedef struct kci_hlc {
    pthread_mutex_t lock;
    kci_hlc_timestamp last;
    kci_clock_ms clock; /* wall clock; tests pass a skewed one */
    void *clock_context;
    int64_t drift_ms_max;
} kci_hlc;

/* clock NULL: the system's real-time clock. drift_ms_max 0: the default. */
void kci_hlc_init(kci_hlc *hlc, kci_clock_ms clock, void *clock_context, int64_t drift_ms_max);
void kci_hlc_destroy(kci_hlc *hlc);
/* A local or send event. */
void kci_hlc_now(kci_hlc *hlc, kci_hlc_timestamp *out);
/* A receive event: *out is after both remote and every earlier local event. */
kc_err kci_hlc_observe(kci_hlc *hlc, const kci_hlc_timestamp *remote, kci_hlc_timestamp *out);
/* < 0, 0, > 0 like strcmp. */
int kci_hlc_compare(const kci_hlc_timestamp *a, const kci_hlc_timestamp *b);
/* Returns the length written (without NUL). */
size_t kci_hlc_format(const kci_hlc_timestamp *timestamp, char text[KCI_HLC_TEXT_BYTES_MAX]);
bool kci_hlc_parse(const char *text, size_t text_len, kci_hlc_timestamp *out);

/* Added by the implementation: */

/* The largest wall time a timestamp may carry: 48 bits of ms like a UUIDv7
 * (year 10889). The parser refuses more; the clock never reaches it. */
#define KCI_HLC_WALL_MS_MAX ((int64_t)0xFFFFFFFFFFFF)

/* The process's clock (the node's): real time, KCI_HLC_DRIFT_MS_DEFAULT,
 * made on first use and never destroyed. kci_headers_stamp reads it; the
 * receive path passes received Kc-Ts to kci_hlc_observe on it. */
kci_hlc *kci_process_hlc(void);
/* The system's real-time clock in ms, in kci_clock_ms form (context unused). */
int64_t kci_clock_real_ms(void *context);

#endif
