/* segment.c - naming and listing the log's segment files (see segment.h). */
#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kci_segment_path(char path[PATH_MAX], const char *directory, uint32_t number)
{
    int wrote = snprintf(path, PATH_MAX, "%s/%0*u%s", directory, KCI_SEGMENT_NAME_DIGITS, number,
                         KCI_SEGMENT_SUFFIX);
    return wrote > 0 && wrote < PATH_MAX;
}

/* A segment name: exactly 20 digits and the suffix, number 1 .. UINT32_MAX. */
static bool segment_number_of(const char *name, uint32_t *number)
{
    size_t length = strlen(name);
    size_t suffix_length = strlen(KCI_SEGMENT_SUFFIX);
    if (length != KCI_SEGMENT_NAME_DIGITS + suffix_length) return false;
    if (strcmp(name + KCI_SEGMENT_NAME_DIGITS, KCI_SEGMENT_SUFFIX) != 0) return false;
    uint64_t value = 0;
    for (int index = 0; index < KCI_SEGMENT_NAME_DIGITS; index++) {
        if (name[index] < '0' || name[index] > '9') return false;
        value = value * 10 + (uint64_t)(name[index] - '0');
        if (value > UINT32_MAX) return false;
    }
    if (value == 0) return false;
    *number = (uint32_t)value;
    return true;
}

static int compare_numbers(const void *a, const void *b)
{
    uint32_t left = *(const uint32_t *)a, right = *(const uint32_t *)b;
    return (left > right) - (left < right);
}

kc_err kci_segment_list(const char *directory, uint32_t **numbers, size_t *count, char *error,
                        size_t error_size)
{
    *numbers = NULL;
    *count = 0;
    DIR *handle = opendir(directory);
    if (handle == NULL) {
        snprintf(error, error_size, "cannot open the queue directory %s: %s", directory,
                 strerror(errno));
        return errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_IO;
    }
    size_t capacity = 0;
    uint32_t *list = NULL;
    kc_err err = KC_OK;
    struct dirent *entry;
    while (err == KC_OK && (entry = readdir(handle)) != NULL) {
        uint32_t number;
        if (!segment_number_of(entry->d_name, &number)) continue;
        if (*count == KCI_SEGMENT_COUNT_MAX) {
            snprintf(error, error_size, "%s holds more than %d segments", directory,
                     KCI_SEGMENT_COUNT_MAX);
            err = KC_ERR_LIMIT;
            break;
        }
        if (*count == capacity) {
            capacity = capacity == 0 ? 64 : capacity * 2;
            uint32_t *grown = realloc(list, capacity * sizeof *list);
            if (grown == NULL) {
                snprintf(error, error_size, "out of memory");
                err = KC_ERR_NOMEM;
                break;
            }
            list = grown;
        }
        list[(*count)++] = number;
    }
    closedir(handle);
    if (err != KC_OK) {
        free(list);
        *count = 0;
        return err;
    }
    if (*count > 1) qsort(list, *count, sizeof *list, compare_numbers);
    *numbers = list;
    return KC_OK;
}

kc_err kci_directory_make(const char *directory, char *error, size_t error_size)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", directory) >= (int)sizeof path) {
        snprintf(error, error_size, "queue directory path too long");
        return KC_ERR_CONFIG;
    }
    for (char *cursor = path + 1;; cursor++) {
        bool end = *cursor == '\0';
        if (!end && *cursor != '/') continue;
        *cursor = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(error, error_size, "cannot create directory %s: %s", path, strerror(errno));
            return KC_ERR_IO;
        }
        if (end) break;
        *cursor = '/';
    }
    return KC_OK;
}
