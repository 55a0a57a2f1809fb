/* quarantine.c - the quarantined nodes' set and its enforcement
 * (quarantine.h). The set is a sorted array of names searched with
 * bsearch: it changes rarely (on verdicts) and is read only at CONNECT and
 * when it changes; deliveries read the per-connection flag. */
#include "quarantine.h"

#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define REQUEST_PREFIX "kc.req."

struct kci_quarantine {
    char **names;
    uint32_t count;
};

static int compare_names(const void *left, const void *right)
{
    return strcmp(*(char *const *)left, *(char *const *)right);
}

static bool contains(const struct kci_quarantine *set, const char *name)
{
    if (set == NULL || name == NULL || set->count == 0) return false;
    return bsearch(&name, set->names, set->count, sizeof set->names[0], compare_names) != NULL;
}

static bool client_quarantined(const kci_client *client)
{
    if (client->internal_listener) return false; /* kcobrad's own components */
    const struct kci_quarantine *set = client->server->quarantine;
    return contains(set, client->user_name != NULL ? client->user_name : client->name);
}

static void set_free(struct kci_quarantine *set)
{
    if (set == NULL) return;
    for (uint32_t i = 0; i < set->count; i++)
        free(set->names[i]);
    free(set->names);
    free(set);
}

/* {"nodes": [names]} -> a sorted set; NULL on bad input or no memory. */
static struct kci_quarantine *set_parse(const char *json, size_t json_len)
{
    json_t *root = json_loadb(json, json_len, 0, NULL);
    json_t *nodes = json_object_get(root, "nodes");
    struct kci_quarantine *set = calloc(1, sizeof *set);
    size_t count = json_array_size(nodes);
    if (set == NULL || !json_is_array(nodes) || count > KCI_QUARANTINE_NODES_MAX) goto fail;
    set->names = calloc(count + 1, sizeof set->names[0]);
    if (set->names == NULL) goto fail;
    for (size_t i = 0; i < count; i++) {
        const char *name = json_string_value(json_array_get(nodes, i));
        if (name == NULL) goto fail;
        set->names[set->count] = strdup(name);
        if (set->names[set->count] == NULL) goto fail;
        set->count++;
    }
    qsort(set->names, set->count, sizeof set->names[0], compare_names);
    json_decref(root);
    return set;
fail:
    set_free(set);
    json_decref(root);
    return NULL;
}

void kci_quarantine_on_publish(kci_client *publisher, const kci_pub_args *pub)
{
    /* Only the arbiter's role may set it (roles.h): not another component a
     * client could trick into publishing, and no client. */
    if (publisher->role != KCI_ROLE_ARBITER) return;
    if (pub->subject_len != strlen(KCI_QUARANTINE_SET_SUBJECT) ||
        memcmp(pub->subject, KCI_QUARANTINE_SET_SUBJECT, pub->subject_len) != 0)
        return;
    size_t skip = pub->header_bytes > 0 ? (size_t)pub->header_bytes : 0;
    assert(skip <= pub->payload_len);
    struct kci_quarantine *set =
        set_parse((const char *)pub->payload + skip, pub->payload_len - skip);
    if (set == NULL) {
        kci_warn("quarantine: ignored a control message that is not {\"nodes\": [names]}");
        return;
    }
    kci_server *server = publisher->server;
    set_free(server->quarantine);
    server->quarantine = set;
    uint32_t marked = 0;
    for (kci_client *client = server->clients; client != NULL; client = client->next) {
        client->quarantined = client_quarantined(client);
        marked += client->quarantined;
    }
    kci_info("quarantine: %u node(s) quarantined, %u connection(s) no longer get requests",
             set->count, marked);
}

void kci_quarantine_on_connect(kci_client *client)
{
    client->quarantined = client_quarantined(client);
    if (client->quarantined)
        kci_info("quarantine: connection %llu (%s) is a quarantined node: it gets no requests",
                 (unsigned long long)client->id,
                 client->user_name != NULL ? client->user_name : client->name);
}

bool kci_quarantine_blocks(const kci_pub_args *pub)
{
    return pub->subject_len > strlen(REQUEST_PREFIX) &&
           memcmp(pub->subject, REQUEST_PREFIX, strlen(REQUEST_PREFIX)) == 0;
}

void kci_quarantine_free(kci_server *server)
{
    set_free(server->quarantine);
    server->quarantine = NULL;
}
