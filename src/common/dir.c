/* dir.c - see dir.h. The open, fsync and close go through the I/O seam
 * (io.h), so the fault tests can fail a directory sync too. */
#include "common/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/io.h"

int kci_directory_sync(const char *directory)
{
    int fd = kci_io_retry_open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) return errno;
    int result = kci_io_retry_fsync(fd) == 0 ? 0 : errno;
    kci_io->close(fd);
    return result;
}

int kci_parent_directory_sync(const char *path, char *directory, size_t directory_size)
{
    snprintf(directory, directory_size, "%s", path);
    char *slash = strrchr(directory, '/');
    if (slash == NULL)
        snprintf(directory, directory_size, ".");
    else if (slash == directory)
        slash[1] = '\0'; /* a file in / */
    else
        *slash = '\0';
    return kci_directory_sync(directory);
}

int kci_directory_create_path(const char *directory, unsigned mode)
{
    char copy[4096];
    if (snprintf(copy, sizeof copy, "%s", directory) >= (int)sizeof copy) return ENAMETOOLONG;
    for (char *cursor = strchr(copy + 1, '/');; cursor = strchr(cursor + 1, '/')) {
        if (cursor != NULL) *cursor = '\0';
        if (copy[0] != '\0' && mkdir(copy, (mode_t)mode) != 0 && errno != EEXIST) return errno;
        if (cursor == NULL) return 0;
        *cursor = '/';
    }
}
