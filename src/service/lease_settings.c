/* lease_settings.c - a part's lease settings (lease_settings.h). */
#include "service/lease_settings.h"

#include <stdio.h>
#include <stdlib.h>

#include "kingcobra/kingcobra.h"
#include "service/last_error.h"

kc_err kci_lease_settings_init(kci_lease_settings *settings, const char *role)
{
    *settings = (kci_lease_settings){
        .ttl_ms = KCI_LEASE_TTL_MS_DEFAULT,
        .renew_ms = KCI_LEASE_RENEW_MS_DEFAULT,
        .margin_ms = KCI_LEASE_MARGIN_MS_DEFAULT,
        .replicas = KCI_LEASE_REPLICAS_DEFAULT,
    };
    char bucket[KCI_LEASE_NAME_BYTES_MAX + 1];
    int length = snprintf(bucket, sizeof(bucket), "%s%s", KCI_LEASE_BUCKET_PREFIX, role);
    if (length < 0 || (size_t)length >= sizeof(bucket))
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "lease role \"%s\" too long", role);
    return kci_config_string_set(&settings->bucket, bucket);
}

void kci_lease_settings_apply(const kci_lease_settings *settings, kci_lease_config *config)
{
    config->bucket = settings->bucket;
    config->ttl_ms = settings->ttl_ms;
    config->renew_ms = settings->renew_ms;
    config->margin_ms = settings->margin_ms;
    config->replicas = (int)settings->replicas;
}

kc_err kci_lease_settings_check(const kci_lease_settings *settings, char *error, size_t error_size)
{
    kci_lease_config config;
    kci_lease_config_init(&config);
    kci_lease_settings_apply(settings, &config);
    config.key = "check";      /* any valid key: the part's role is not a setting */
    config.holder = "check/0"; /* likewise the holder */
    if (kci_lease_config_check(&config) == KC_OK) return KC_OK;
    snprintf(error, error_size, "%s", kc_last_error());
    return KC_ERR_CONFIG;
}

void kci_lease_settings_free(kci_lease_settings *settings)
{
    free(settings->bucket);
    settings->bucket = NULL;
}
