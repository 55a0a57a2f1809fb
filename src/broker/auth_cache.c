/* auth_cache.c - the table of successful bcrypt verifications (see
 * auth_cache.h). A linear scan of 256 digests costs well under a
 * microsecond, next to the 50-300 ms of one bcrypt it saves. */
#include "auth_cache.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/random.h>

/* Each field length-prefixed, so ("ab", "c") and ("a", "bc") differ. */
static bool digest_update_field(EVP_MD_CTX *context, const char *field)
{
    uint64_t len = field != NULL ? strlen(field) : UINT64_MAX; /* NULL: a token, not a user */
    if (EVP_DigestUpdate(context, &len, sizeof len) != 1) return false;
    return field == NULL || EVP_DigestUpdate(context, field, (size_t)len) == 1;
}

static bool digest_of(const kci_auth_cache *cache, const char *user, const char *secret,
                      const char *hash, uint8_t digest[KCI_AUTH_CACHE_DIGEST_BYTES])
{
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (context == NULL) return false;
    unsigned int digest_len = 0;
    bool ok = EVP_DigestInit_ex(context, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(context, cache->key, sizeof cache->key) == 1 &&
              digest_update_field(context, user) && digest_update_field(context, secret) &&
              digest_update_field(context, hash) &&
              EVP_DigestFinal_ex(context, digest, &digest_len) == 1;
    EVP_MD_CTX_free(context);
    assert(!ok || digest_len == KCI_AUTH_CACHE_DIGEST_BYTES);
    return ok;
}

void kci_auth_cache_init(kci_auth_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    if (getrandom(cache->key, sizeof cache->key, 0) != (ssize_t)sizeof cache->key &&
        RAND_bytes(cache->key, (int)sizeof cache->key) != 1) {
        /* No randomness at all: the digests are still not the secrets. */
        memset(cache->key, 0x5a, sizeof cache->key);
    }
}

static int find(const kci_auth_cache *cache, const uint8_t digest[KCI_AUTH_CACHE_DIGEST_BYTES])
{
    for (int i = 0; i < KCI_AUTH_CACHE_ENTRIES; i++)
        if (cache->last_used[i] != 0 &&
            CRYPTO_memcmp(cache->digests[i], digest, KCI_AUTH_CACHE_DIGEST_BYTES) == 0)
            return i;
    return -1;
}

bool kci_auth_cache_lookup(kci_auth_cache *cache, const char *user, const char *secret,
                           const char *hash)
{
    uint8_t digest[KCI_AUTH_CACHE_DIGEST_BYTES];
    int found = digest_of(cache, user, secret, hash, digest) ? find(cache, digest) : -1;
    if (found < 0) {
        cache->miss_count++;
        return false;
    }
    cache->hit_count++;
    cache->last_used[found] = ++cache->use_clock;
    return true;
}

void kci_auth_cache_insert(kci_auth_cache *cache, const char *user, const char *secret,
                           const char *hash)
{
    uint8_t digest[KCI_AUTH_CACHE_DIGEST_BYTES];
    if (!digest_of(cache, user, secret, hash, digest)) return; /* then it is not cached */
    int slot = find(cache, digest);
    for (int i = 0; slot < 0 && i < KCI_AUTH_CACHE_ENTRIES; i++)
        if (cache->last_used[i] == 0) slot = i;
    if (slot < 0) { /* full: replace the least recently used */
        slot = 0;
        for (int i = 1; i < KCI_AUTH_CACHE_ENTRIES; i++)
            if (cache->last_used[i] < cache->last_used[slot]) slot = i;
    }
    memcpy(cache->digests[slot], digest, KCI_AUTH_CACHE_DIGEST_BYTES);
    cache->last_used[slot] = ++cache->use_clock;
}

void kci_auth_cache_clear(kci_auth_cache *cache)
{
    memset(cache->digests, 0, sizeof cache->digests);
    memset(cache->last_used, 0, sizeof cache->last_used);
}
