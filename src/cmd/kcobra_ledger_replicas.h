/* kcobra_ledger_replicas.h - `kcobra ledger audit --replicas`: every
 * replica of a replicated ledger (storage jetstream) compared at the same
 * log entry (docs/ledger.md). */
#ifndef KCOBRA_LEDGER_REPLICAS_H
#define KCOBRA_LEDGER_REPLICAS_H

#include "kcobra_common.h"

/* Exit 0 when every replica that answered holds the same state at the
 * same entry, 1 when one differs, 4 when none answered. */
int kcobra_ledger_audit_replicas(const kcobra_common *common);

#endif
