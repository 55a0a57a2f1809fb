/* lease_settings.h - the settings of a part's lease (lease.h) as config keys
 * (src/common/config_keys.h), for a part to embed: its settings struct holds
 * a kci_lease_settings member and its key table lists
 * KCI_LEASE_SETTINGS_KEYS(its struct, that member) among its own keys. That
 * gives the part's block in kcobrad's config and `kcobra <part> serve` the
 * keys lease_bucket, lease_ttl, lease_renew, lease_margin and lease_replicas
 * (flags --lease-bucket...), with the defaults of lease.h and the bucket
 * "kc_lease_<role>". The role (the KV key) and the holder id are not
 * settings: the part names its role, and the holder is made per process
 * (kci_lease_holder_make). */
#ifndef KCI_LEASE_SETTINGS_H
#define KCI_LEASE_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config_keys.h"
#include "service/lease.h"

/* The default bucket of a role: "kc_lease_<role>" (a bucket holds one lease). */
#define KCI_LEASE_BUCKET_PREFIX "kc_lease_"

typedef struct kci_lease_settings {
    char *bucket;     /* the KV bucket of this part's lease (one per role) */
    int64_t ttl_ms;   /* a holding lasts this long without a renewal */
    int64_t renew_ms; /* the holder renews, a standby reads, this often */
    int64_t margin_ms;
    int64_t replicas; /* of the bucket, when this part creates it */
} kci_lease_settings;

/* One key of a kci_lease_settings named member inside type. */
#define KCI_LEASE_KEY_(type, member, key_name, key_kind, field, ...)                               \
    {                                                                                              \
        .name = key_name, .kind = key_kind, .offset = offsetof(type, member.field), __VA_ARGS__    \
    }

/* Key table entries for a kci_lease_settings named member inside type. */
// clang-format off
#define KCI_LEASE_SETTINGS_KEYS(type, member)                                                      \
    KCI_LEASE_KEY_(type, member, "lease_bucket", KCI_KEY_STRING, bucket, .value_name = "NAME",     \
                   .help = "the JetStream KV bucket of this part's lease (kc_lease_<role>)"),      \
    KCI_LEASE_KEY_(type, member, "lease_ttl", KCI_KEY_DURATION_MS, ttl_ms,                         \
                   .value_name = "DURATION",                                                       \
                   .help = "a standby takes over once the active's lease went this long unrenewed"),\
    KCI_LEASE_KEY_(type, member, "lease_renew", KCI_KEY_DURATION_MS, renew_ms,                     \
                   .value_name = "DURATION",                                                       \
                   .help = "how often the active renews its lease and a standby looks"),           \
    KCI_LEASE_KEY_(type, member, "lease_margin", KCI_KEY_DURATION_MS, margin_ms,                   \
                   .zero_allowed = true, .value_name = "DURATION",                                 \
                   .help = "the active stops this long before its lease ends; a standby waits "    \
                           "this much longer"),                                                    \
    KCI_LEASE_KEY_(type, member, "lease_replicas", KCI_KEY_SIZE, replicas, .minimum = 1,           \
                   .maximum = KCI_LEASE_REPLICAS_MAX, .value_name = "N",                           \
                   .help = "replicas of the lease bucket when this part creates it (3 on a "       \
                           "cluster, 1 on one server)")
// clang-format on

/* The defaults for the part that plays role ("persister"); KC_ERR_NOMEM,
 * KC_ERR_INVALID_ARGUMENT if the role is too long for a bucket name. */
kc_err kci_lease_settings_init(kci_lease_settings *settings, const char *role);
/* KC_ERR_CONFIG with a message in error when the values do not fit together
 * (kci_lease_config_check's rules). */
kc_err kci_lease_settings_check(const kci_lease_settings *settings, char *error, size_t error_size);
/* Fills the settings' fields of config (pointers into settings); the caller
 * sets key (its role), holder and the callbacks. */
void kci_lease_settings_apply(const kci_lease_settings *settings, kci_lease_config *config);
void kci_lease_settings_free(kci_lease_settings *settings);

#endif
