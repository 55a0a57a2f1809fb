/* kcobra_services.c - `kcobra services`: what answers the NATS services
 * protocol (ADR-32; src/service/micro.h) on the server, like the nats CLI's
 * `micro ls`: every libkingcobra service, every `kcobra serve`, the built-in
 * components, and any other NATS service (nats.go, nats.js, ...).
 *
 * One $SRV.INFO and one $SRV.STATS request (with --name, $SRV.INFO.<name>
 * and $SRV.STATS.<name>) go out at once, each with its own reply subject
 * under one inbox; the replies are gathered until none came for QUIET_MS
 * (every instance answers, and nobody says how many there are), or until
 * --timeout. Each instance's info and stats are joined by its id: each
 * endpoint gets its stats, the service its started time.
 *
 * Output: a block per instance (its endpoints with requests, errors and the
 * average processing time), sorted by name and id; with --json, one object
 * a line (the info response with the stats merged in). Exit 0 also when
 * nothing answers (it says so). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "kcobra_common.h"

enum {
    QUIET_MS = 500,      /* no reply for this long: everyone answered */
    SERVICES_MAX = 4096, /* replies kept of each kind */
    SUBJECT_BYTES_MAX = 256,
    NAME_BYTES_MAX = 128,
};

#define INFO_SUFFIX ".i"
#define STATS_SUFFIX ".s"

static const char SERVICES_DESCRIPTION[] =
    "Lists the services that answer the NATS services protocol ($SRV.INFO and\n"
    "$SRV.STATS, ADR-32): libkingcobra services, `kcobra serve`, kcobrad's\n"
    "components (kc-persister, kc-ledger, kc-arbiter, kc-keeper) and any other\n"
    "NATS service. Replies are gathered until none came for 500 ms, or until\n"
    "--timeout. Each service shows its endpoints with their requests, errors and\n"
    "average processing time. With --json: one object a line (the info response,\n"
    "each endpoint with its stats, and started).\n\n"
    "Examples:\n"
    "  kcobra services\n"
    "  kcobra services --name kc-ledger --json\n";

/* The replies of one kind, by arrival. */
typedef struct gathered {
    json_t *info;  /* array */
    json_t *stats; /* array */
} gathered;

static void keep_reply(gathered *replies, natsMsg *message, size_t prefix_length)
{
    const char *subject = natsMsg_GetSubject(message);
    json_t *array = strcmp(subject + prefix_length, INFO_SUFFIX) == 0    ? replies->info
                    : strcmp(subject + prefix_length, STATS_SUFFIX) == 0 ? replies->stats
                                                                         : NULL;
    if (array == NULL || json_array_size(array) >= SERVICES_MAX) return;
    json_t *object =
        json_loadb(natsMsg_GetData(message), (size_t)natsMsg_GetDataLength(message), 0, NULL);
    if (json_is_object(object) && json_is_string(json_object_get(object, "id")))
        json_array_append(array, object);
    json_decref(object);
}

/* Gathers until QUIET_MS pass without a reply, or timeout_ms in all. */
static void gather(natsSubscription *subscription, size_t prefix_length, int64_t timeout_ms,
                   gathered *replies)
{
    int64_t end_ms = kci_monotonic_ms() + timeout_ms;
    bool any = false;
    for (uint32_t step = 0; step < 2 * SERVICES_MAX + 1; step++) {
        int64_t now_ms = kci_monotonic_ms();
        int64_t wait_ms = end_ms - now_ms;
        if (any && wait_ms > QUIET_MS) wait_ms = QUIET_MS;
        if (wait_ms <= 0) return;
        natsMsg *message = NULL;
        if (natsSubscription_NextMsg(&message, subscription, wait_ms) != NATS_OK) return;
        keep_reply(replies, message, prefix_length);
        natsMsg_Destroy(message);
        any = true;
    }
}

static int ask(natsConnection *connection, const char *inbox, const char *name, int64_t timeout_ms,
               gathered *replies)
{
    char wildcard[SUBJECT_BYTES_MAX], info_reply[SUBJECT_BYTES_MAX], stats_reply[SUBJECT_BYTES_MAX],
        info_subject[SUBJECT_BYTES_MAX], stats_subject[SUBJECT_BYTES_MAX];
    snprintf(wildcard, sizeof wildcard, "%s.*", inbox);
    snprintf(info_reply, sizeof info_reply, "%s" INFO_SUFFIX, inbox);
    snprintf(stats_reply, sizeof stats_reply, "%s" STATS_SUFFIX, inbox);
    snprintf(info_subject, sizeof info_subject, "$SRV.INFO%s%s", name != NULL ? "." : "",
             name != NULL ? name : "");
    snprintf(stats_subject, sizeof stats_subject, "$SRV.STATS%s%s", name != NULL ? "." : "",
             name != NULL ? name : "");
    natsSubscription *subscription = NULL;
    natsStatus status = natsConnection_SubscribeSync(&subscription, connection, wildcard);
    if (status == NATS_OK)
        status = natsConnection_PublishRequest(connection, info_subject, info_reply, NULL, 0);
    if (status == NATS_OK)
        status = natsConnection_PublishRequest(connection, stats_subject, stats_reply, NULL, 0);
    if (status == NATS_OK) status = natsConnection_Flush(connection);
    if (status == NATS_OK) gather(subscription, strlen(inbox), timeout_ms, replies);
    natsSubscription_Destroy(subscription);
    if (status == NATS_OK) return KCOBRA_EXIT_OK;
    kcobra_error("cannot ask for the services: %s", kcobra_nats_error(status));
    return KCOBRA_EXIT_FAILURE;
}

/* ---- joining info and stats ---------------------------------------------------- */

static json_t *find_by(json_t *array, const char *key, const char *value)
{
    size_t index;
    json_t *item;
    json_array_foreach(array, index, item)
    {
        const char *text = json_string_value(json_object_get(item, key));
        if (text != NULL && strcmp(text, value) == 0) return item;
    }
    return NULL;
}

/* info with each endpoint's stats and the service's started time. */
static void merge_stats(json_t *info, json_t *stats)
{
    if (stats == NULL) return;
    json_t *started = json_object_get(stats, "started");
    if (started != NULL) json_object_set(info, "started", started);
    json_t *stats_endpoints = json_object_get(stats, "endpoints");
    json_t *endpoints = json_object_get(info, "endpoints");
    size_t index;
    json_t *endpoint;
    json_array_foreach(endpoints, index, endpoint)
    {
        const char *name = json_string_value(json_object_get(endpoint, "name"));
        json_t *counted = name != NULL ? find_by(stats_endpoints, "name", name) : NULL;
        if (counted == NULL) continue;
        static const char *const keys[] = {"num_requests", "num_errors", "last_error",
                                           "processing_time", "average_processing_time"};
        for (size_t key = 0; key < sizeof keys / sizeof keys[0]; key++) {
            json_t *value = json_object_get(counted, keys[key]);
            if (value != NULL) json_object_set(endpoint, keys[key], value);
        }
    }
}

static int by_name_and_id(const void *left, const void *right)
{
    json_t *a = *(json_t *const *)left, *b = *(json_t *const *)right;
    const char *a_name = json_string_value(json_object_get(a, "name"));
    const char *b_name = json_string_value(json_object_get(b, "name"));
    int order = strcmp(a_name != NULL ? a_name : "", b_name != NULL ? b_name : "");
    if (order != 0) return order;
    return strcmp(json_string_value(json_object_get(a, "id")),
                  json_string_value(json_object_get(b, "id")));
}

/* ---- output --------------------------------------------------------------------- */

static const char *text_of(json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text != NULL ? text : "";
}

static void print_endpoint(json_t *endpoint)
{
    json_int_t requests = json_integer_value(json_object_get(endpoint, "num_requests"));
    json_int_t errors = json_integer_value(json_object_get(endpoint, "num_errors"));
    json_int_t average_ns =
        json_integer_value(json_object_get(endpoint, "average_processing_time"));
    const char *queue = text_of(endpoint, "queue_group");
    printf("  %-12s %-24s %-14s %8" JSON_INTEGER_FORMAT " requests %6" JSON_INTEGER_FORMAT
           " errors %10.3f ms avg\n",
           text_of(endpoint, "name"), text_of(endpoint, "subject"), queue[0] != '\0' ? queue : "-",
           requests, errors, (double)average_ns / 1e6);
    const char *last_error = text_of(endpoint, "last_error");
    if (last_error[0] != '\0') printf("  %12s last error: %s\n", "", last_error);
}

static void print_service(json_t *service)
{
    json_t *metadata = json_object_get(service, "metadata");
    printf("%s %s  id %s  node %s  type %s\n", text_of(service, "name"),
           text_of(service, "version"), text_of(service, "id"), text_of(metadata, "kc_node"),
           text_of(metadata, "kc_type"));
    const char *description = text_of(service, "description");
    if (description[0] != '\0') printf("  %s\n", description);
    json_t *endpoints = json_object_get(service, "endpoints");
    size_t index;
    json_t *endpoint;
    json_array_foreach(endpoints, index, endpoint)
    {
        print_endpoint(endpoint);
    }
}

static int print_all(gathered *replies, bool json)
{
    size_t count = json_array_size(replies->info);
    json_t **services = calloc(count + 1, sizeof *services);
    if (services == NULL) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    for (size_t index = 0; index < count; index++) {
        services[index] = json_array_get(replies->info, index);
        merge_stats(services[index], find_by(replies->stats, "id", text_of(services[index], "id")));
    }
    qsort(services, count, sizeof *services, by_name_and_id);
    int status = KCOBRA_EXIT_OK;
    for (size_t index = 0; index < count && status == KCOBRA_EXIT_OK; index++) {
        if (json)
            status = kcobra_json_print(json_incref(services[index]));
        else
            print_service(services[index]);
    }
    if (!json) printf("%zu service%s answered\n", count, count == 1 ? "" : "s");
    free(services);
    if (fflush(stdout) != 0) status = KCOBRA_EXIT_FAILURE;
    return status;
}

static int run_services(const kcobra_command *command, int argc, char **argv)
{
    const char *name = NULL;
    const kcobra_flag flags[] = {
        {"name", "NAME", KCOBRA_FLAG_STRING, &name, "only the services of this name"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if (name != NULL && !kcobra_token_valid(name, NAME_BYTES_MAX))
        return kcobra_usage_error(command, "--name '%s' is not one subject token", name);
    natsConnection *connection = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    char inbox[SUBJECT_BYTES_MAX / 2];
    natsInbox *fresh = NULL;
    gathered replies = {json_array(), json_array()};
    if (natsInbox_Create(&fresh) != NATS_OK || replies.info == NULL || replies.stats == NULL) {
        kcobra_error("out of memory");
        status = KCOBRA_EXIT_FAILURE;
    } else {
        snprintf(inbox, sizeof inbox, "%s", (const char *)fresh);
        status = ask(connection, inbox, name, invocation.common.timeout_ms, &replies);
    }
    natsInbox_Destroy(fresh);
    if (status == KCOBRA_EXIT_OK) status = print_all(&replies, invocation.common.json);
    json_decref(replies.info);
    json_decref(replies.stats);
    kcobra_nats_finish(connection);
    return status;
}

const kcobra_command kcobra_command_services = {
    .name = "services",
    .synopsis = "services [--name NAME] [--json] [--timeout D]",
    .summary = "list what answers the NATS services protocol ($SRV)",
    .description = SERVICES_DESCRIPTION,
    .run = run_services,
    .positional_min = 0,
    .positional_max = 0,
};
