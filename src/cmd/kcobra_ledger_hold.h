/* kcobra_ledger_hold.h - `kcobra ledger hold|post|void` (escrow,
 * docs/ledger.md "Escrow: holds"), and the helpers of kcobra_ledger.c it
 * shares. */
#ifndef KCOBRA_LEDGER_HOLD_H
#define KCOBRA_LEDGER_HOLD_H

#include "kcobra_common.h"
#include "ledger/client.h"
#include "ledger/wallet.h"

typedef struct kcobra_hold_arguments {
    const char *directory; /* --wallet-dir */
    const char *from, *to, *amount_text;
    int64_t expires_ms; /* hold: how long it lasts (0: the default) */
    const char *hold;   /* post, void: the hold's id */
    const char *wallet; /* post, void: the payee's wallet (name) */
    const char *request;
} kcobra_hold_arguments;

/* action is "hold", "post" or "void". */
int kcobra_ledger_hold_run(const kcobra_command *command, const kcobra_invocation *invocation,
                           const char *action, const kcobra_hold_arguments *arguments);

/* kcobra_ledger.c's, for this file. */
int kcobra_ledger_wallet_open(kci_wallet *wallet, const char *directory, const char *name);
int kcobra_ledger_exit_for(kc_err err, const kci_ledger_refusal *refusal);
/* `kcobra pay` (hold_ms 0) or `kcobra ledger hold` (a hold lasting hold_ms):
 * picks coins, makes change, signs, sends; prints the id (or the reply). */
int kcobra_ledger_pay_run(const kcobra_command *command, const kcobra_invocation *invocation,
                          const char *directory, const char *from, const char *to,
                          const char *amount_text, int64_t hold_ms);

#endif
