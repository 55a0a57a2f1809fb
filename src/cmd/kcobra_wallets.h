/* kcobra_wallets.h - the wallet directory as a whole: `kcobra wallet list`,
 * and wallet names in place of addresses and RFC 3339 times in what the
 * ledger commands print (issue 18: `ledger history` printed raw epoch
 * milliseconds and addresses where the names were known). */
#ifndef KCOBRA_WALLETS_H
#define KCOBRA_WALLETS_H

#include <stddef.h>
#include <stdint.h>

#include "kcobra_common.h"

enum { KCOBRA_TIME_TEXT_BYTES = 32 }; /* "2026-12-08T01:02:03.456Z" and NUL */

/* The wallet directory: directory, else $KCOBRA_WALLET_DIR, else
 * ~/.kingcobra/wallets. false if the path does not fit. */
bool kcobra_wallet_directory(char *out, size_t out_size, const char *directory);

/* `kcobra wallet list`: NAME ADDRESS per wallet file, sorted by name. */
int kcobra_wallet_list(const kcobra_invocation *invocation, const char *directory);

/* The name of the wallet in the default directory whose address is
 * address_hex; NULL when there is none (the directory is read once). */
const char *kcobra_wallet_name_of(const char *address_hex);

/* Unix milliseconds as RFC 3339 in UTC, with milliseconds. */
void kcobra_time_rfc3339(char out[KCOBRA_TIME_TEXT_BYTES], int64_t unix_ms);

#endif
