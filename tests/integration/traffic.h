/* traffic.h - what the end-to-end tests of kcobrad's observability (the
 * /metrics test, metrics.c, and the console's, console.c) do to its
 * components so there is something to see: a payment, a double spend and
 * a forged transfer on the ledger; a slow node among fast ones until the
 * arbiter quarantines it. Failures fail the calling cmocka test. */
#ifndef TRAFFIC_H
#define TRAFFIC_H

#include <nats/nats.h>
#include <stdbool.h>

#include "kingcobra/kingcobra.h"

enum {
    TRAFFIC_REQUEST_TIMEOUT_MS = 5000,
    TRAFFIC_SLOW_MS = 120, /* the slow node's answers; the arbiters' bar is 50 ms */
    TRAFFIC_DETECT_REQUESTS_MAX = 400,
};

/* A kc_client on url whose node and connection name are name. */
kc_client *traffic_open_client(const char *url, const char *name);
/* Echoes the payload; closure non-NULL: after TRAFFIC_SLOW_MS. */
void traffic_echo(const kc_request *request, kc_response *response, void *closure);
/* Mints two coins of 10 to a new wallet, pays one to another (applied),
 * pays it again (409, a double spend) and sends a forged transfer (401). */
void traffic_drive_ledger(natsConnection *connection);
/* "good" and "bad" serve type t; requester asks until quarantined() says
 * the arbiter quarantined bad (asked every 10 requests), bounded. */
void traffic_drive_arbiter(const char *url, kc_client *requester, bool (*quarantined)(void));

#endif
