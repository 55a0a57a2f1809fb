/* console_assets.h - the web console's files (src/console/assets/),
 * compiled into kcobrad by scripts/embed-assets.py at build time, so the
 * console works offline and with no file beside the binary. */
#ifndef KCI_CONSOLE_ASSETS_H
#define KCI_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct kci_console_asset {
    const char *path;         /* "/console/console.js" */
    const char *content_type; /* from the file's extension */
    const unsigned char *bytes;
    size_t len;
} kci_console_asset;

extern const kci_console_asset kci_console_assets[];
extern const size_t kci_console_asset_count;

/* The asset served at path (path_len bytes, not NUL-terminated); NULL if none. */
const kci_console_asset *kci_console_asset_find(const char *path, size_t path_len);

#endif
