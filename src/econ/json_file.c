/* json_file.c - see json_file.h. */
#include "json_file.h"

#include <stdio.h>

json_t *kci_econ_json_load_file(const char *path, kci_econ_error *error)
{
    json_error_t json_error;
    json_t *document = json_load_file(path, JSON_REJECT_DUPLICATES, &json_error);
    if (document != NULL) return document;
    /* jansson gives no position when the file cannot be opened or read. */
    if (json_error.line <= 0)
        kci_econ_error_set(error, "%s: %s", path, json_error.text);
    else
        kci_econ_error_set(error, "%s: line %d, column %d: %s", path, json_error.line,
                           json_error.column, json_error.text);
    return NULL;
}

json_t *kci_econ_json_load_text(const char *text, size_t length, kci_econ_error *error)
{
    json_error_t json_error;
    json_t *document = json_loadb(text, length, JSON_REJECT_DUPLICATES, &json_error);
    if (document == NULL)
        kci_econ_error_set(error, "line %d, column %d: %s", json_error.line, json_error.column,
                           json_error.text);
    return document;
}

void kci_econ_error_prefix_path(kci_econ_error *error, const char *path)
{
    char reason[KCI_ECON_ERROR_BYTES];
    snprintf(reason, sizeof reason, "%s", error->text);
    kci_econ_error_set(error, "%s: %s", path, reason);
}
