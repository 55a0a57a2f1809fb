/* wallet.c - wallet key files (wallet.h). Creating one goes through the
 * I/O seam (common/io.h: open, write, fsync, unlink, close, and the
 * directory's fsync), so tests/ledger/wallet_fault_test.c can fail each
 * call; loading reads directly. */
#include "wallet.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dir.h"
#include "common/io.h"

static kc_err fail(char *error, size_t error_size, kc_err err, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static kc_err fail(char *error, size_t error_size, kc_err err, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, error_size, format, arguments);
    va_end(arguments);
    return err;
}

bool kci_wallet_name_valid(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;
    if (length == 0 || length > KCI_WALLET_NAME_BYTES_MAX) return false;
    for (size_t index = 0; index < length; index++) {
        char c = name[index];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* mkdir -p of path's directory, 0700 for what it creates. */
static kc_err make_parent(const char *path, char *error, size_t error_size)
{
    char directory[PATH_MAX];
    if (snprintf(directory, sizeof directory, "%s", path) >= (int)sizeof directory)
        return fail(error, error_size, KC_ERR_INVALID_ARGUMENT, "path too long: %s", path);
    char *slash = strrchr(directory, '/');
    if (slash == NULL || slash == directory) return KC_OK;
    *slash = '\0';
    for (char *cursor = strchr(directory + 1, '/');; cursor = strchr(cursor + 1, '/')) {
        if (cursor != NULL) *cursor = '\0';
        if (mkdir(directory, 0700) != 0 && errno != EEXIST)
            return fail(error, error_size, KC_ERR_IO, "cannot create directory %s: %s", directory,
                        strerror(errno));
        if (cursor == NULL) break;
        *cursor = '/';
    }
    return KC_OK;
}

/* A new key file's directory entry must reach the disk too: a wallet lost
 * in a crash loses every coin sent to its address. */
static kc_err sync_parent(const char *path, char *error, size_t error_size)
{
    char directory[PATH_MAX];
    int sync_error = kci_parent_directory_sync(path, directory, sizeof directory);
    if (sync_error == 0) return KC_OK;
    return fail(error, error_size, KC_ERR_IO, "cannot sync directory %s: %s", directory,
                strerror(sync_error));
}

kc_err kci_wallet_create(kci_wallet *out, const char *path, char *error, size_t error_size)
{
    if (sodium_init() < 0) return fail(error, error_size, KC_ERR_IO, "libsodium cannot start");
    kc_err err = make_parent(path, error, error_size);
    if (err != KC_OK) return err;
    int fd = kci_io_retry_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST)
        return fail(error, error_size, KC_ERR_EXISTS, "%s exists already", path);
    if (fd < 0)
        return fail(error, error_size, KC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    crypto_sign_keypair(out->public_key, out->secret_key);
    char text[KCI_WALLET_FILE_BYTES + 1];
    size_t header = sizeof KCI_WALLET_HEADER - 1;
    memcpy(text, KCI_WALLET_HEADER, header);
    kci_ledger_hex(text + header, out->secret_key, KCI_LEDGER_SECRET_BYTES);
    size_t length = header + 2 * KCI_LEDGER_SECRET_BYTES;
    text[length++] = '\n';
    /* fchmod: the umask may have taken bits off 0600, never added; make it exact. */
    if (fchmod(fd, 0600) != 0 || kci_io_write_all(fd, text, length) != 0 ||
        kci_io_retry_fsync(fd) != 0) {
        err = fail(error, error_size, KC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        kci_io->unlink(path);
    }
    sodium_memzero(text, sizeof text);
    kci_io->close(fd);
    if (err == KC_OK) err = sync_parent(path, error, error_size);
    if (err != KC_OK) kci_wallet_wipe(out);
    return err;
}

kc_err kci_wallet_load(kci_wallet *out, const char *path, char *error, size_t error_size)
{
    if (sodium_init() < 0) return fail(error, error_size, KC_ERR_IO, "libsodium cannot start");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fail(error, error_size, errno == ENOENT ? KC_ERR_NOT_FOUND : KC_ERR_IO,
                    "cannot open wallet %s: %s", path, strerror(errno));
    struct stat status;
    char text[KCI_WALLET_FILE_BYTES + 2] = {0};
    kc_err err = KC_OK;
    if (fstat(fd, &status) != 0)
        err = fail(error, error_size, KC_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    else if ((status.st_mode & 077) != 0)
        err = fail(error, error_size, KC_ERR_PERMISSION,
                   "%s can be read by others (mode %03o): chmod 600 it", path,
                   (unsigned)(status.st_mode & 0777));
    ssize_t got = err == KC_OK ? read(fd, text, sizeof text - 1) : 0;
    close(fd);
    size_t header = sizeof KCI_WALLET_HEADER - 1;
    if (err == KC_OK && (got != KCI_WALLET_FILE_BYTES ||
                         memcmp(text, KCI_WALLET_HEADER, header) != 0 || text[got - 1] != '\n' ||
                         !kci_ledger_unhex(out->secret_key, KCI_LEDGER_SECRET_BYTES, text + header,
                                           2 * KCI_LEDGER_SECRET_BYTES)))
        err = fail(error, error_size, KC_ERR_CORRUPT, "%s is not a KingCobra wallet file", path);
    uint8_t check_public[KCI_LEDGER_KEY_BYTES], check_secret[KCI_LEDGER_SECRET_BYTES];
    if (err == KC_OK) {
        /* The seed (first half) must give the public key stored (second half). */
        crypto_sign_seed_keypair(check_public, check_secret, out->secret_key);
        if (sodium_memcmp(check_secret, out->secret_key, KCI_LEDGER_SECRET_BYTES) != 0)
            err = fail(error, error_size, KC_ERR_CORRUPT, "%s: the key pair does not match", path);
        memcpy(out->public_key, check_public, KCI_LEDGER_KEY_BYTES);
        sodium_memzero(check_secret, sizeof check_secret);
    }
    sodium_memzero(text, sizeof text);
    if (err != KC_OK) kci_wallet_wipe(out);
    return err;
}

kc_err kci_wallet_load_or_create(kci_wallet *out, const char *path, char *error, size_t error_size)
{
    kc_err err = kci_wallet_load(out, path, error, error_size);
    if (err != KC_ERR_NOT_FOUND) return err;
    err = kci_wallet_create(out, path, error, error_size);
    /* Two starters raced: the other one's key is the key. */
    return err == KC_ERR_EXISTS ? kci_wallet_load(out, path, error, error_size) : err;
}

void kci_wallet_address(char *text, const kci_wallet *wallet)
{
    kci_ledger_hex(text, wallet->public_key, KCI_LEDGER_KEY_BYTES);
}

void kci_wallet_wipe(kci_wallet *wallet)
{
    sodium_memzero(wallet, sizeof *wallet);
}
