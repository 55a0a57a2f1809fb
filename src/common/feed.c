/* feed.c - the console's store of named JSON documents (see feed.h). One
 * mutex guards the table: a put or a get copies the bytes under it, which
 * is a memcpy of a few kilobytes, so the broker's loop waits no longer
 * than that. */
#include "feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct feed_entry {
    char name[KCI_FEED_NAME_BYTES_MAX];
    char *text;
    size_t len;
    int64_t wall_ms;
} feed_entry;

static pthread_mutex_t feed_lock = PTHREAD_MUTEX_INITIALIZER;
static feed_entry feed_entries[KCI_FEED_NAMES_MAX];
static int64_t feed_wanted_ms;

/* The entry named name, or a free one when create (NULL: none). */
static feed_entry *find_entry(const char *name, bool create)
{
    feed_entry *free_entry = NULL;
    for (size_t i = 0; i < KCI_FEED_NAMES_MAX; i++) {
        if (feed_entries[i].name[0] == '\0') {
            if (free_entry == NULL) free_entry = &feed_entries[i];
        } else if (strcmp(feed_entries[i].name, name) == 0) {
            return &feed_entries[i];
        }
    }
    return create ? free_entry : NULL;
}

static char *copy_text(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    return copy;
}

bool kci_feed_put(const char *name, const char *text, size_t len, int64_t wall_ms)
{
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len >= KCI_FEED_NAME_BYTES_MAX || len > KCI_FEED_DOCUMENT_BYTES_MAX)
        return false;
    char *copy = copy_text(text, len);
    if (copy == NULL) return false;
    pthread_mutex_lock(&feed_lock);
    feed_entry *entry = find_entry(name, true);
    if (entry != NULL) {
        free(entry->text);
        memcpy(entry->name, name, name_len + 1);
        entry->text = copy;
        entry->len = len;
        entry->wall_ms = wall_ms;
    }
    pthread_mutex_unlock(&feed_lock);
    if (entry == NULL) free(copy);
    return entry != NULL;
}

char *kci_feed_get(const char *name, size_t *len, int64_t *wall_ms)
{
    char *copy = NULL;
    pthread_mutex_lock(&feed_lock);
    const feed_entry *entry = find_entry(name, false);
    if (entry != NULL) {
        copy = copy_text(entry->text, entry->len);
        if (copy != NULL) {
            *len = entry->len;
            *wall_ms = entry->wall_ms;
        }
    }
    pthread_mutex_unlock(&feed_lock);
    return copy;
}

void kci_feed_want(int64_t wall_ms)
{
    pthread_mutex_lock(&feed_lock);
    feed_wanted_ms = wall_ms;
    pthread_mutex_unlock(&feed_lock);
}

int64_t kci_feed_wanted_ms(void)
{
    pthread_mutex_lock(&feed_lock);
    int64_t wanted_ms = feed_wanted_ms;
    pthread_mutex_unlock(&feed_lock);
    return wanted_ms;
}

void kci_feed_clear(void)
{
    pthread_mutex_lock(&feed_lock);
    for (size_t i = 0; i < KCI_FEED_NAMES_MAX; i++) {
        free(feed_entries[i].text);
        feed_entries[i] = (feed_entry){0};
    }
    feed_wanted_ms = 0;
    pthread_mutex_unlock(&feed_lock);
}
