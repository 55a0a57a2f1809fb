/* kcobra_pubsub.c - `kcobra pub` and `kcobra sub`: raw NATS publish and
 * subscribe with nats.c, for looking at and poking the fabric underneath
 * KingCobra (any subject, not only kc.*; no KingCobra headers added).
 *
 * sub prints each message the way the nats CLI does ("[#1] Received on ...",
 * the headers, the payload) or, with --json, one JSON object per line, and
 * flushes stdout after each so a pipe sees messages as they come. It stops
 * after --count messages, or on SIGINT/SIGTERM (exit 0). Messages dropped
 * because this process could not keep up (nats.c's slow-consumer limit) are
 * reported on stderr and the subscription goes on. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcobra_common.h"

enum {
    SUB_POLL_MS = 100, /* how often the receive loop checks for SIGINT */
    HEADER_NAME_BYTES_MAX = 256,
};

static volatile sig_atomic_t stop_requested = 0;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

/* ====================================================================== pub */

static const char PUB_DESCRIPTION[] =
    "Publishes a message on <subject> (any NATS subject). The payload is the argument;\n"
    "'-' reads it from stdin, as does giving no payload while stdin is not a terminal.\n"
    "Waits (up to --timeout) until the server has taken the messages.\n"
    "\n"
    "Examples:\n"
    "  kcobra pub greetings hello\n"
    "  kcobra pub orders.new - --header Kc-Type:order < order.json\n"
    "  kcobra pub work job --count 100 --reply work.done\n";

/* Splits "Key:Value" (spaces after the colon dropped) into name and value. */
static bool header_split(const char *text, char name[HEADER_NAME_BYTES_MAX], const char **value)
{
    const char *colon = strchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) >= HEADER_NAME_BYTES_MAX)
        return false;
    for (const char *cursor = text; cursor < colon; cursor++)
        if ((unsigned char)*cursor <= ' ' || *cursor == 0x7f) return false;
    memcpy(name, text, (size_t)(colon - text));
    name[colon - text] = '\0';
    *value = colon + 1;
    while (**value == ' ')
        (*value)++;
    return strpbrk(*value, "\r\n") == NULL;
}

static int pub_build(natsMsg **out, const char *subject, const char *reply,
                     const kcobra_buffer *payload, const kcobra_list *headers)
{
    natsStatus status = natsMsg_Create(out, subject, reply, payload->bytes, (int)payload->length);
    for (int index = 0; status == NATS_OK && index < headers->count; index++) {
        char name[HEADER_NAME_BYTES_MAX];
        const char *value = NULL;
        header_split(headers->values[index], name, &value);
        status = natsMsgHeader_Add(*out, name, value);
    }
    if (status == NATS_OK) return KCOBRA_EXIT_OK;
    kcobra_error("cannot build the message: %s", kcobra_nats_error(status));
    return status == NATS_INVALID_SUBJECT || status == NATS_INVALID_ARG ? KCOBRA_EXIT_USAGE
                                                                        : KCOBRA_EXIT_FAILURE;
}

static int pub_send(natsConnection *connection, natsMsg *message, int64_t count,
                    const kcobra_common *common)
{
    int64_t max_payload = natsConnection_GetMaxPayload(connection);
    int length = natsMsg_GetDataLength(message);
    if (max_payload > 0 && length > max_payload) {
        kcobra_error("the payload of %d bytes exceeds the server's max_payload of %lld bytes",
                     length, (long long)max_payload);
        return KCOBRA_EXIT_FAILURE;
    }
    natsStatus status = NATS_OK;
    for (int64_t index = 0; status == NATS_OK && index < count; index++)
        status = natsConnection_PublishMsg(connection, message);
    if (status == NATS_OK) status = natsConnection_FlushTimeout(connection, common->timeout_ms);
    const char *server_error = NULL;
    if (status == NATS_OK) status = natsConnection_GetLastError(connection, &server_error);
    if (status == NATS_OK) return KCOBRA_EXIT_OK;
    if (status == NATS_TIMEOUT) {
        char timeout_text[KCOBRA_DURATION_TEXT_BYTES];
        kcobra_format_duration_ms(common->timeout_ms, timeout_text);
        kcobra_error("timed out after %s waiting for the server to take the messages",
                     timeout_text);
        return KCOBRA_EXIT_TIMEOUT;
    }
    kcobra_error("publish failed: %s", server_error != NULL && server_error[0]
                                           ? server_error
                                           : kcobra_nats_error(status));
    return status == NATS_INVALID_SUBJECT ? KCOBRA_EXIT_USAGE : KCOBRA_EXIT_FAILURE;
}

static int pub_report(const char *subject, int64_t count, size_t length, bool json)
{
    if (json)
        return kcobra_json_print(json_pack("{s:s,s:I,s:I}", "subject", subject, "count",
                                           (json_int_t)count, "bytes", (json_int_t)length));
    if (count == 1)
        printf("Published %zu bytes to \"%s\"\n", length, subject);
    else
        printf("Published %lld messages of %zu bytes to \"%s\"\n", (long long)count, length,
               subject);
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

static int run_pub(const kcobra_command *command, int argc, char **argv)
{
    int64_t count = 1;
    kcobra_list headers = {0};
    const char *reply = NULL;
    const kcobra_flag flags[] = {
        {"count", "N", KCOBRA_FLAG_COUNT, &count, "publish the message N times (default 1)"},
        {"header", "K:V", KCOBRA_FLAG_LIST, &headers, "add a header (repeatable)"},
        {"reply", "SUBJ", KCOBRA_FLAG_STRING, &reply, "the reply subject to send"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    for (int index = 0; index < headers.count; index++) {
        char name[HEADER_NAME_BYTES_MAX];
        const char *value = NULL;
        if (!header_split(headers.values[index], name, &value))
            return kcobra_usage_error(command, "invalid --header '%s': expected Key:Value",
                                      headers.values[index]);
    }
    const char *subject = invocation.positional[0];
    kcobra_buffer payload;
    status = kcobra_read_payload(invocation.positional_count > 1 ? invocation.positional[1] : NULL,
                                 &payload);
    if (status != KCOBRA_EXIT_OK) return status;
    natsConnection *connection = NULL;
    natsMsg *message = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status == KCOBRA_EXIT_OK) status = pub_build(&message, subject, reply, &payload, &headers);
    if (status == KCOBRA_EXIT_OK) status = pub_send(connection, message, count, &invocation.common);
    if (status == KCOBRA_EXIT_OK)
        status = pub_report(subject, count, payload.length, invocation.common.json);
    natsMsg_Destroy(message);
    if (connection != NULL) kcobra_nats_finish(connection);
    kcobra_buffer_free(&payload);
    return status;
}

const kcobra_command kcobra_command_pub = {
    .name = "pub",
    .synopsis = "pub <subject> [payload|-] [--count N] [--header K:V ...] [--reply SUBJ]",
    .summary = "publish a raw NATS message",
    .description = PUB_DESCRIPTION,
    .run = run_pub,
    .positional_min = 1,
    .positional_max = 2,
};

/* ====================================================================== sub */

static const char SUB_DESCRIPTION[] =
    "Subscribes to <subject> (wildcards * and > allowed) and prints each message:\n"
    "  [#1] Received on \"subject\" (with reply \"...\")\n"
    "  Header: value\n"
    "\n"
    "  payload\n"
    "With --json, one object per line: {\"subject\",\"reply\",\"headers\":{name:[values]},\n"
    "\"payload\" (or \"payload_base64\" when not UTF-8)}. \"Listening on ...\" goes to\n"
    "stderr once the server has the subscription. Stops after --count messages or on\n"
    "SIGINT (exit 0).\n"
    "\n"
    "Examples:\n"
    "  kcobra sub 'kc.>'\n"
    "  kcobra sub work --queue workers --count 1 --json\n";

static json_t *headers_json(natsMsg *message)
{
    const char **keys = NULL;
    int key_count = 0;
    if (natsMsgHeader_Keys(message, &keys, &key_count) != NATS_OK) return NULL;
    json_t *object = json_object();
    for (int index = 0; object != NULL && index < key_count; index++) {
        const char **values = NULL;
        int value_count = 0;
        if (natsMsgHeader_Values(message, keys[index], &values, &value_count) != NATS_OK) continue;
        json_t *array = json_array();
        for (int value = 0; array != NULL && value < value_count; value++)
            json_array_append_new(array, json_string(values[value]));
        json_object_set_new(object, keys[index], array);
        free((void *)values);
    }
    free((void *)keys);
    return object;
}

static int print_message_json(natsMsg *message)
{
    json_t *object = json_object();
    if (object == NULL) return kcobra_json_print(NULL);
    json_object_set_new(object, "subject", json_string(natsMsg_GetSubject(message)));
    const char *reply = natsMsg_GetReply(message);
    if (reply != NULL && reply[0] != '\0') json_object_set_new(object, "reply", json_string(reply));
    json_t *headers = headers_json(message);
    if (headers != NULL) json_object_set_new(object, "headers", headers);
    if (kcobra_json_set_payload(object, natsMsg_GetData(message),
                                (size_t)natsMsg_GetDataLength(message)) != 0) {
        json_decref(object);
        return kcobra_json_print(NULL);
    }
    return kcobra_json_print(object);
}

static void print_headers_text(natsMsg *message)
{
    const char **keys = NULL;
    int key_count = 0;
    if (natsMsgHeader_Keys(message, &keys, &key_count) != NATS_OK) return;
    for (int index = 0; index < key_count; index++) {
        const char **values = NULL;
        int value_count = 0;
        if (natsMsgHeader_Values(message, keys[index], &values, &value_count) != NATS_OK) continue;
        for (int value = 0; value < value_count; value++)
            printf("%s: %s\n", keys[index], values[value]);
        free((void *)values);
    }
    if (key_count > 0) printf("\n");
    free((void *)keys);
}

static int print_message_text(natsMsg *message, int64_t number)
{
    const char *reply = natsMsg_GetReply(message);
    printf("[#%lld] Received on \"%s\"", (long long)number, natsMsg_GetSubject(message));
    if (reply != NULL && reply[0] != '\0') printf(" with reply \"%s\"", reply);
    printf("\n");
    print_headers_text(message);
    int length = natsMsg_GetDataLength(message);
    const char *data = natsMsg_GetData(message);
    if (length > 0) fwrite(data, 1, (size_t)length, stdout);
    printf(length > 0 && data[length - 1] == '\n' ? "\n" : "\n\n");
    return fflush(stdout) == 0 ? KCOBRA_EXIT_OK : KCOBRA_EXIT_FAILURE;
}

/* Receives until count messages (0: no limit) or a stop signal. */
static int sub_receive(natsSubscription *subscription, int64_t count, bool json)
{
    int64_t received = 0;
    while (!stop_requested && (count == 0 || received < count)) {
        natsMsg *message = NULL;
        natsStatus status = natsSubscription_NextMsg(&message, subscription, SUB_POLL_MS);
        if (status == NATS_TIMEOUT) continue;
        if (status == NATS_SLOW_CONSUMER) {
            kcobra_error("messages were dropped: this subscriber is too slow (slow consumer)");
            continue;
        }
        if (status != NATS_OK) {
            kcobra_error("subscription ended: %s", kcobra_nats_error(status));
            return status == NATS_CONNECTION_CLOSED ? KCOBRA_EXIT_CONNECT : KCOBRA_EXIT_FAILURE;
        }
        received++;
        int printed = json ? print_message_json(message) : print_message_text(message, received);
        natsMsg_Destroy(message);
        if (printed != KCOBRA_EXIT_OK) return printed;
    }
    return KCOBRA_EXIT_OK;
}

static int sub_start(natsSubscription **out, natsConnection *connection, const char *subject,
                     const char *queue, const kcobra_common *common)
{
    natsStatus status = queue != NULL
                            ? natsConnection_QueueSubscribeSync(out, connection, subject, queue)
                            : natsConnection_SubscribeSync(out, connection, subject);
    if (status == NATS_OK) status = natsConnection_FlushTimeout(connection, common->timeout_ms);
    const char *server_error = NULL;
    if (status == NATS_OK) status = natsConnection_GetLastError(connection, &server_error);
    if (status == NATS_OK) {
        fprintf(stderr, "Listening on \"%s\"%s%s%s\n", subject, queue != NULL ? " in queue \"" : "",
                queue != NULL ? queue : "", queue != NULL ? "\"" : "");
        return KCOBRA_EXIT_OK;
    }
    kcobra_error("cannot subscribe to \"%s\": %s", subject,
                 server_error != NULL && server_error[0] ? server_error
                                                         : kcobra_nats_error(status));
    if (status == NATS_INVALID_SUBJECT || status == NATS_INVALID_ARG) return KCOBRA_EXIT_USAGE;
    return status == NATS_TIMEOUT ? KCOBRA_EXIT_TIMEOUT : KCOBRA_EXIT_FAILURE;
}

static int run_sub(const kcobra_command *command, int argc, char **argv)
{
    int64_t count = 0;
    const char *queue = NULL;
    const kcobra_flag flags[] = {
        {"queue", "Q", KCOBRA_FLAG_STRING, &queue, "join queue group Q (one member gets each)"},
        {"count", "N", KCOBRA_FLAG_COUNT, &count, "exit after N messages (default: never)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    natsConnection *connection = NULL;
    natsSubscription *subscription = NULL;
    status = kcobra_nats_connect(&connection, &invocation.common);
    if (status == KCOBRA_EXIT_OK)
        status = sub_start(&subscription, connection, invocation.positional[0], queue,
                           &invocation.common);
    if (status == KCOBRA_EXIT_OK) status = sub_receive(subscription, count, invocation.common.json);
    natsSubscription_Destroy(subscription);
    if (connection != NULL) kcobra_nats_finish(connection);
    return status;
}

const kcobra_command kcobra_command_sub = {
    .name = "sub",
    .synopsis = "sub <subject> [--queue Q] [--count N]",
    .summary = "subscribe to a subject and print raw NATS messages",
    .description = SUB_DESCRIPTION,
    .run = run_sub,
    .positional_min = 1,
    .positional_max = 1,
};
