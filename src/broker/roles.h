/* roles.h - kcobrad's own components on its internal listener: who each
 * is, and what each may publish and subscribe (docs/security.md).
 *
 * The internal listener (loopback, ephemeral port, no TLS) accepts only
 * these users, with the password kcobrad makes at start. It is no blanket
 * pass: each component logs in as the user of its role and gets that
 * role's permissions, the least it needs, checked like any user's. So a
 * component that a client tricks into publishing for it (a confused
 * deputy) still cannot reach a subject its role does not need: the
 * persister cannot publish on kc.sys.quarantine.set, kc.ledger.mint or
 * kc.arbiter.vote. Only the arbiter role may set the quarantine.
 *
 * A role's permissions are fixed here, in the code, not in the
 * configuration: they describe what the component's code does, and change
 * with it. Reading is broad where observing is the job (the arbiter). */
#ifndef KCI_ROLES_H
#define KCI_ROLES_H

#include "options.h"

typedef enum kci_role {
    KCI_ROLE_NONE = 0, /* not one of kcobrad's components */
    KCI_ROLE_PERSISTER = 1,
    KCI_ROLE_LEDGER = 2,
    KCI_ROLE_ARBITER = 3,
    KCI_ROLE_KEEPER = 4,
    KCI_ROLE_INGRESS = 5,
    KCI_ROLE_CONSOLE = 6,  /* the web console's gatherer (src/console/gather.h) */
    KCI_ROLE_EVENTNET = 7, /* the EventNet recorder (src/eventnet/) */
} kci_role;

enum { KCI_ROLE_COUNT = 8 };

/* The role's user name ("kcobrad-persister", ...); NULL for KCI_ROLE_NONE. */
const char *kci_role_user(kci_role role);
/* The role a user name stands for on the internal listener, or
 * KCI_ROLE_NONE (NULL too). */
kci_role kci_role_from_user(const char *user);
/* The role's permissions (never NULL for a role other than NONE). */
const kci_permissions *kci_role_permissions(kci_role role);
/* A role that watches traffic it does not serve (the arbiter's kc.req.> and
 * _INBOX.>, the persister's record_requests, the EventNet recorder's kc.>
 * and _INBOX.>): its plain wildcard
 * subscriptions are taps. A tap gets every message but is not a responder:
 * a request it alone receives still gets "no responders" (router.c), so
 * turning the arbiter on never changes what a requester sees. */
bool kci_role_observes(kci_role role);

#endif
