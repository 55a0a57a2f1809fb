/* lock.h - one writer per data directory: an exclusive lock that cannot be
 * bypassed by removing a file.
 *
 * A lock held on a file inside the directory (the old <dir>/LOCK) protects
 * nothing once the file is unlinked: the next process creates a new LOCK,
 * locks that inode, and both write the same directory. So the lock is
 * taken on the directory itself (flock on an O_DIRECTORY descriptor, held
 * for as long as the lock is), which no unlink inside it can replace; after
 * locking, the path is checked to still name the locked directory (a rename
 * between open and flock is retried).
 *
 * The LOCK file stays, for two reasons: it is also flocked, so a process of
 * an older release (which locks only LOCK) is still refused while the file
 * exists; and it holds the owner's pid, for people and for a refusal to
 * name the process when the kernel's table (/proc/locks, read first, right
 * even when LOCK was deleted) is not available.
 * The pid is for people: the kernel releases a flock when its process dies,
 * so a stale pid in LOCK never blocks a start (a pid there whose process is
 * alive but does not hold the lock is a reused pid, and is overwritten).
 *
 * Limits: flock is local to one machine (on NFS it is emulated, or absent:
 * the acquire then fails and says so); a directory that is renamed away and
 * replaced by a copy while locked is a different directory. */
#ifndef KCI_LOCK_H
#define KCI_LOCK_H

#include <stddef.h>
#include <sys/types.h>

#include "kingcobra/err.h"

typedef struct kci_directory_lock {
    int directory_fd; /* flocked; -1 when not held */
    int file_fd;      /* <dir>/LOCK, flocked, holds our pid; -1 when not held */
} kci_directory_lock;

/* Locks directory (which must exist) for this process, and file_name in it
 * ("LOCK"; created if missing). what names the owner kind in messages
 * ("queue", "ledger"). KC_ERR_EXISTS: another process holds
 * it; error names the directory and, when LOCK says, that process's pid.
 * KC_ERR_IO: the directory cannot be opened or locked (error says why). */
kc_err kci_directory_lock_acquire(kci_directory_lock *lock, const char *directory,
                                  const char *file_name, const char *what, char *error,
                                  size_t error_size);
/* Unlocks (closing both descriptors); a lock never acquired is fine. */
void kci_directory_lock_release(kci_directory_lock *lock);
/* The pid recorded in <directory>/<file_name>, or 0 if none can be read. */
pid_t kci_directory_lock_owner(const char *directory, const char *file_name);

#endif
