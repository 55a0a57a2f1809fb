/* json_file.h - reading the JSON documents kcobra econ takes (edge files,
 * market files, bills of materials), from a file or from memory, with one
 * error form for all of them: "[<path>: ]line L, column C: <what jansson
 * says>", or "<path>: <reason>" for what the document's reader refuses. */
#ifndef KCI_ECON_JSON_FILE_H
#define KCI_ECON_JSON_FILE_H

#include <jansson.h>

#include "graph.h"

/* The parsed document (duplicate keys refused), or NULL with error set. */
json_t *kci_econ_json_load_file(const char *path, kci_econ_error *error);
/* The same for text in memory ("line L, column C: ..."). */
json_t *kci_econ_json_load_text(const char *text, size_t length, kci_econ_error *error);
/* Puts "<path>: " before error's text. */
void kci_econ_error_prefix_path(kci_econ_error *error, const char *path);

#endif
