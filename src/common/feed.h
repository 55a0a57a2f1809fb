/* feed.h - the console's feed: a process-wide store of named JSON
 * documents (the latest answer of each component query), written by the
 * console's gatherer thread (src/cmd/console_gather.c) and read by the
 * monitoring port's console endpoints (src/broker/console.c) on the
 * broker's loop.
 *
 * Why a store and not a call: the monitor runs on the broker's event loop,
 * and a request to a component travels through that same loop, so the loop
 * cannot wait for the answer. The gatherer asks on its own thread and the
 * monitor answers from what it last got, at once, with its age. */
#ifndef KCI_FEED_H
#define KCI_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KCI_FEED_NAMES_MAX = 16,               /* documents held */
    KCI_FEED_NAME_BYTES_MAX = 32,          /* a name and its NUL */
    KCI_FEED_DOCUMENT_BYTES_MAX = 4 << 20, /* a larger document is refused */
};

/* Stores a copy of text (a JSON document, len bytes) under name, replacing
 * the previous one, stamped with wall_ms. False when out of memory, the
 * table is full, or the name or the text is too long. */
bool kci_feed_put(const char *name, const char *text, size_t len, int64_t wall_ms);
/* A malloc'd, NUL-terminated copy of the document under name (*len its
 * length, *wall_ms when it was put), or NULL when there is none. */
char *kci_feed_get(const char *name, size_t *len, int64_t *wall_ms);
/* The console was asked for a document at wall_ms: the gatherer gathers
 * only while someone watches (gather.h), so an unwatched console costs
 * the components nothing and adds nothing to the broker's counters. */
void kci_feed_want(int64_t wall_ms);
/* The last kci_feed_want's wall_ms (0: never). */
int64_t kci_feed_wanted_ms(void);
/* Forgets every document (tests; kcobrad at stop). */
void kci_feed_clear(void);

#endif
