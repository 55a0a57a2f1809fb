/* auth_cache.h - remembers bcrypt verifications that succeeded, so a storm
 * of reconnecting clients costs one bcrypt per distinct credential, not one
 * per connection.
 *
 * An entry is a SHA-256 digest of (a random per-process key, the user name,
 * the password given, the configured hash), each length-prefixed; nothing
 * else is kept: no password, no user name. The random key makes the digests
 * useless outside this process (no precomputed tables). Trade-off, stated:
 * someone who can read this process's memory (key and digests) can test
 * guesses at SHA-256 speed rather than bcrypt speed for the credentials in
 * the table; they can read the passwords of clients as they connect anyway.
 * Only successes are cached: each wrong guess still costs a bcrypt.
 *
 * Bounded (KCI_AUTH_CACHE_ENTRIES), least recently used entry replaced.
 * Because the configured hash is part of the digest, a changed password
 * misses by itself; kcobrad also clears the table on every reload. Not
 * thread-safe: the event loop owns it. */
#ifndef KCI_AUTH_CACHE_H
#define KCI_AUTH_CACHE_H

#include <stdbool.h>
#include <stdint.h>

enum {
    KCI_AUTH_CACHE_ENTRIES = 256,
    KCI_AUTH_CACHE_DIGEST_BYTES = 32, /* SHA-256 */
};

typedef struct kci_auth_cache {
    uint8_t key[KCI_AUTH_CACHE_DIGEST_BYTES];
    uint8_t digests[KCI_AUTH_CACHE_ENTRIES][KCI_AUTH_CACHE_DIGEST_BYTES];
    uint64_t last_used[KCI_AUTH_CACHE_ENTRIES]; /* 0: the entry is empty */
    uint64_t use_clock;
    uint64_t hit_count;
    uint64_t miss_count;
} kci_auth_cache;

/* Draws the random key; the table starts empty. */
void kci_auth_cache_init(kci_auth_cache *cache);
/* user is NULL for a token. True if this verification succeeded before. */
bool kci_auth_cache_lookup(kci_auth_cache *cache, const char *user, const char *secret,
                           const char *hash);
void kci_auth_cache_insert(kci_auth_cache *cache, const char *user, const char *secret,
                           const char *hash);
/* Forgets every entry (the key stays). */
void kci_auth_cache_clear(kci_auth_cache *cache);

#endif
