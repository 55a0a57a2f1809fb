/* roles.c - the internal components' users and permissions (roles.h).
 *
 * Each list is what the component's code publishes or subscribes, as
 * found in src/queue/ (respond.c, submit.c, replies.c, persister.c),
 * src/ledger/serve.c, src/keeper/,
 * src/ingress/ and src/arbiter/; "$SRV.>" is the services protocol's
 * discovery (src/service/micro.h), answered by every component but the
 * ingress (a requester, not a service). Answers go to "_INBOX.>" only: every
 * component refuses to answer elsewhere (src/service/reply_subject.h), and
 * the role's permission says the same a second time at the broker. */
#include "roles.h"

#include <assert.h>
#include <string.h>

#define LIST(...) ((char *[]){__VA_ARGS__})
#define COUNT(...) (sizeof((char *[]){__VA_ARGS__}) / sizeof(char *))
#define ALLOW(...)                                                                                 \
    {                                                                                              \
        .present = true, .allow = LIST(__VA_ARGS__), .allow_count = COUNT(__VA_ARGS__)             \
    }

static const kci_permissions role_permissions[KCI_ROLE_COUNT] = {
    [KCI_ROLE_PERSISTER] =
        {
            /* dispatches; acknowledgements, Kc-Notify forwards and
             * kc.reply.get answers (to clients and to the arbiters) */
            .publish = ALLOW("kc.req.>", "_INBOX.>", "kc.arbiter.log.>"),
            /* submits, lookups, its dispatches' replies, admin; with
             * record_requests, plain requests and their replies */
            .subscribe = ALLOW("kc.submit.>", "kc.reply.get", "_KCQ.>", "kc.sys.queue.>",
                               "kc.req.>", "_INBOX.>", "$SRV.>"),
        },
    [KCI_ROLE_LEDGER] =
        {
            .publish = ALLOW("_INBOX.>"),
            .subscribe = ALLOW("kc.ledger.>", "_INBOX.>", "$SRV.>"),
        },
    [KCI_ROLE_ARBITER] =
        {
            /* votes, verdicts, alarms; the broker's quarantine set; probes
             * and the persister's records; what paid requests paid and a
             * payment report's charge (ledger reads: src/arbiter/price.c,
             * payment_check.c); answers to its queries */
            .publish = ALLOW("kc.arbiter.>", "kc.sys.quarantine.set", "kc.req.>", "kc.reply.get",
                             "kc.ledger.transfer.get", "_INBOX.>"),
            /* observing the traffic is its job */
            .subscribe = ALLOW("kc.>", "_INBOX.>", "_KCQ.>", "$SRV.>"),
        },
    [KCI_ROLE_KEEPER] =
        {
            .publish = ALLOW("_INBOX.>"),
            .subscribe = ALLOW("kc.suggest", "kc.suggest.>", "_INBOX.>", "$SRV.>"),
        },
    [KCI_ROLE_INGRESS] =
        {
            /* a requester: seed-format lines become kc.req.<type> */
            .publish = ALLOW("kc.req.>"),
            .subscribe = ALLOW("_INBOX.>"),
        },
    [KCI_ROLE_CONSOLE] =
        {
            /* read-only questions: what the console shows */
            .publish = ALLOW("kc.arbiter.status", "kc.arbiter.verdicts", "kc.arbiter.tree",
                             "kc.sys.queue.stats", "kc.ledger.history", "kc.ledger.audit"),
            .subscribe = ALLOW("_INBOX.>"),
        },
    [KCI_ROLE_EVENTNET] =
        {
            /* answers to walks; observing the traffic is its job */
            .publish = ALLOW("_INBOX.>"),
            .subscribe = ALLOW("kc.>", "_INBOX.>", "_KCQ.>"),
        },
};

static const char *const role_users[KCI_ROLE_COUNT] = {
    [KCI_ROLE_PERSISTER] = "kcobrad-persister", [KCI_ROLE_LEDGER] = "kcobrad-ledger",
    [KCI_ROLE_ARBITER] = "kcobrad-arbiter",     [KCI_ROLE_KEEPER] = "kcobrad-keeper",
    [KCI_ROLE_INGRESS] = "kcobrad-ingress",     [KCI_ROLE_CONSOLE] = "kcobrad-console",
    [KCI_ROLE_EVENTNET] = "kcobrad-eventnet",
};

const char *kci_role_user(kci_role role)
{
    assert((int)role >= KCI_ROLE_NONE && (int)role < KCI_ROLE_COUNT);
    return role_users[role];
}

kci_role kci_role_from_user(const char *user)
{
    if (user == NULL) return KCI_ROLE_NONE;
    for (int role = KCI_ROLE_PERSISTER; role < KCI_ROLE_COUNT; role++)
        if (strcmp(user, role_users[role]) == 0) return (kci_role)role;
    return KCI_ROLE_NONE;
}

const kci_permissions *kci_role_permissions(kci_role role)
{
    assert(role > KCI_ROLE_NONE && (int)role < KCI_ROLE_COUNT);
    return &role_permissions[role];
}

bool kci_role_observes(kci_role role)
{
    return role == KCI_ROLE_ARBITER || role == KCI_ROLE_PERSISTER || role == KCI_ROLE_EVENTNET;
}
