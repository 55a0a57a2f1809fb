/* router.h - delivery of one publication to the subscriptions that match
 * it: every plain subscription, exactly one member of each queue group, and
 * the no-responders status when nobody was there to answer a request. */
#ifndef KCI_ROUTER_H
#define KCI_ROUTER_H

#include "client.h"

void kci_route_publish(kci_client *publisher, const kci_pub_args *pub);
/* Removes a subscription from the sublist and its client (deferred free). */
void kci_subscription_remove(kci_subscription *subscription);

#endif
