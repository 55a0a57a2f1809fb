/* dir.h - making what was created in a directory durable: after a file is
 * created (or removed), its directory entry reaches the disk only when the
 * directory itself is synced. */
#ifndef KCI_DIR_H
#define KCI_DIR_H

#include <stddef.h>

/* fsync of directory: 0, or the errno of the open or the fsync. */
int kci_directory_sync(const char *directory);
/* The same for the directory that holds path ("." for a bare name);
 * directory gets its name, for messages. */
int kci_parent_directory_sync(const char *path, char *directory, size_t directory_size);
/* mkdir -p of directory, mode for what it creates: 0, ENAMETOOLONG, or the
 * errno of the mkdir that failed. */
int kci_directory_create_path(const char *directory, unsigned mode);

#endif
