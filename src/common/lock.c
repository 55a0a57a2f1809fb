/* lock.c - the exclusive lock on a data directory (see lock.h). Opening,
 * writing and closing the lock go through the I/O seam (io.h), so a fault
 * test sees every call a log's open makes. */
#include "common/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/io.h"

enum {
    /* Opens retried when the path stopped naming what was locked (a rename
     * or unlink raced the lock); more than a few means someone keeps doing
     * it, and that is an error. */
    LOCK_ATTEMPTS_MAX = 3,
    PID_TEXT_BYTES = 32,
    PROC_LOCKS_LINES_MAX = 1 << 20, /* /proc/locks read to find a holder */
};

#define PROC_LOCKS_PATH "/proc/locks"

static bool same_file(const struct stat *left, const struct stat *right)
{
    return left->st_dev == right->st_dev && left->st_ino == right->st_ino;
}

pid_t kci_directory_lock_owner(const char *directory, const char *file_name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", directory, file_name) >= (int)sizeof path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    char text[PID_TEXT_BYTES] = "";
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0) return 0;
    text[got] = '\0';
    char *end = NULL;
    long pid = strtol(text, &end, 10);
    return end != text && pid > 0 && pid <= INT32_MAX ? (pid_t)pid : 0;
}

/* The pid holding a flock on the file `held` is, from the kernel's table
 * (Linux: "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> ..."),
 * or 0. It is right even when LOCK was removed or never written. */
static pid_t flock_holder(const struct stat *held)
{
    FILE *locks = fopen(PROC_LOCKS_PATH, "re");
    if (locks == NULL) return 0;
    char line[256];
    pid_t found = 0;
    for (int count = 0;
         found == 0 && count < PROC_LOCKS_LINES_MAX && fgets(line, sizeof line, locks) != NULL;
         count++) {
        int pid = 0;
        unsigned major_number = 0, minor_number = 0;
        unsigned long long inode = 0;
        if (sscanf(line, "%*d: FLOCK %*s WRITE %d %x:%x:%llu", &pid, &major_number, &minor_number,
                   &inode) != 4)
            continue; /* other kinds, and "->" lines of waiters */
        if (inode == (unsigned long long)held->st_ino && major_number == major(held->st_dev) &&
            minor_number == minor(held->st_dev) && pid > 0)
            found = (pid_t)pid;
    }
    fclose(locks);
    return found;
}

/* Another process holds the lock on `held` (described by held_status): the
 * refusal, with its pid when known. */
static kc_err refuse(const char *directory, const char *file_name, const char *what,
                     const char *held, const struct stat *held_status, char *error,
                     size_t error_size)
{
    pid_t owner = flock_holder(held_status);
    if (owner == 0) owner = kci_directory_lock_owner(directory, file_name);
    if (owner > 0)
        snprintf(error, error_size,
                 "the %s directory %s is in use by process %d (it holds the lock on %s); "
                 "one process at a time may write it",
                 what, directory, (int)owner, held);
    else
        snprintf(error, error_size,
                 "the %s directory %s is in use by another process (it holds the lock on %s); "
                 "one process at a time may write it",
                 what, directory, held);
    return KC_ERR_EXISTS;
}

/* flock(fd) exclusively, without waiting. KC_OK: locked. Otherwise fd is
 * closed and the error is KC_ERR_EXISTS (another process holds it: refuse
 * names it) or KC_ERR_IO; label names what was locked in the message. */
static kc_err flock_now(int fd, const char *directory, const char *file_name, const char *what,
                        const char *held_name, const char *label, char *error, size_t error_size)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return KC_OK;
    int saved = errno;
    struct stat held;
    bool known = fstat(fd, &held) == 0;
    kci_io->close(fd);
    if (saved == EWOULDBLOCK && known)
        return refuse(directory, file_name, what, held_name, &held, error, error_size);
    snprintf(error, error_size, "cannot lock %s: %s", label, strerror(saved));
    return KC_ERR_IO;
}

static kc_err lock_directory(kci_directory_lock *lock, const char *directory, const char *file_name,
                             const char *what, char *error, size_t error_size)
{
    for (int attempt = 0; attempt < LOCK_ATTEMPTS_MAX; attempt++) {
        int fd = kci_io_retry_open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(error, error_size, "cannot open the %s directory %s: %s", what, directory,
                     strerror(errno));
            return KC_ERR_IO;
        }
        char label[PATH_MAX + 64];
        snprintf(label, sizeof label, "the %s directory %s", what, directory);
        kc_err err =
            flock_now(fd, directory, file_name, what, "the directory", label, error, error_size);
        if (err != KC_OK) return err;
        struct stat locked, named;
        if (fstat(fd, &locked) == 0 && stat(directory, &named) == 0 && same_file(&locked, &named)) {
            lock->directory_fd = fd;
            return KC_OK;
        }
        kci_io->close(fd); /* renamed or replaced between the open and the flock */
    }
    snprintf(error, error_size, "cannot lock the %s directory %s: it keeps being replaced", what,
             directory);
    return KC_ERR_IO;
}

/* <dir>/<file_name>: flocked too (what older releases lock), then our pid in it. */
static kc_err lock_file(kci_directory_lock *lock, const char *directory, const char *file_name,
                        const char *what, char *error, size_t error_size)
{
    for (int attempt = 0; attempt < LOCK_ATTEMPTS_MAX; attempt++) {
        int fd = kci_io_retry_openat(lock->directory_fd, file_name,
                                     O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            snprintf(error, error_size, "cannot open %s/%s: %s", directory, file_name,
                     strerror(errno));
            return KC_ERR_IO;
        }
        char label[2 * PATH_MAX];
        snprintf(label, sizeof label, "%s/%s", directory, file_name);
        kc_err err = flock_now(fd, directory, file_name, what, file_name, label, error, error_size);
        if (err != KC_OK) return err;
        struct stat locked, named;
        if (fstat(fd, &locked) == 0 &&
            fstatat(lock->directory_fd, file_name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            same_file(&locked, &named)) {
            lock->file_fd = fd;
            return KC_OK;
        }
        kci_io->close(fd); /* unlinked between the open and the flock: open the new one */
    }
    snprintf(error, error_size, "cannot lock %s/%s: it keeps being replaced", directory, file_name);
    return KC_ERR_IO;
}

/* The pid is informational (lock.h): a failure to write it is not fatal. */
static void write_pid(const kci_directory_lock *lock)
{
    char text[PID_TEXT_BYTES];
    int length = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (kci_io_retry_ftruncate(lock->file_fd, 0) != 0 ||
        kci_io_pwrite_all(lock->file_fd, text, (size_t)length, 0) != 0) {
        /* The lock itself holds; only the name in a refusal is lost. */
    }
}

kc_err kci_directory_lock_acquire(kci_directory_lock *lock, const char *directory,
                                  const char *file_name, const char *what, char *error,
                                  size_t error_size)
{
    lock->directory_fd = -1;
    lock->file_fd = -1;
    kc_err err = lock_directory(lock, directory, file_name, what, error, error_size);
    if (err == KC_OK) err = lock_file(lock, directory, file_name, what, error, error_size);
    if (err != KC_OK) {
        kci_directory_lock_release(lock);
        return err;
    }
    write_pid(lock);
    return KC_OK;
}

void kci_directory_lock_release(kci_directory_lock *lock)
{
    /* LOCK keeps our pid: harmless (lock.h), and clearing it first would
     * race a successor that has just written its own. */
    if (lock->file_fd >= 0) kci_io->close(lock->file_fd);
    if (lock->directory_fd >= 0) kci_io->close(lock->directory_fd);
    lock->file_fd = -1;
    lock->directory_fd = -1;
}
