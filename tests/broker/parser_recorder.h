/* parser_recorder.h - records parser events as text, so a test (or the
 * fuzzer) can feed the same bytes split differently and compare what the
 * parser reported. Shared by tests/broker/parser_test.c and
 * fuzz/fuzz_parser.c. */
#ifndef KC_TEST_PARSER_RECORDER_H
#define KC_TEST_PARSER_RECORDER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/parser.h"

enum { RECORDER_BYTES_MAX = 1 << 16 };

typedef struct recorder {
    char text[RECORDER_BYTES_MAX];
    size_t len;
    int stop_after; /* stop after this many events; 0: never */
    int events;
    int before_connect_calls;
    int refuse_before_connect;
} recorder;

static int recorder_add(recorder *r, const char *kind, const void *a, size_t a_len, const void *b,
                        size_t b_len, long long number, const void *c, size_t c_len)
{
    int n = snprintf(r->text + r->len, sizeof r->text - r->len, "%s[%.*s][%.*s][%lld][%.*s]\n",
                     kind, (int)a_len, a ? (const char *)a : "", (int)b_len,
                     b ? (const char *)b : "", number, (int)c_len, c ? (const char *)c : "");
    if (n > 0 && (size_t)n < sizeof r->text - r->len) r->len += (size_t)n;
    r->events++;
    return r->stop_after != 0 && r->events >= r->stop_after;
}

static int rec_connect(void *context, const char *json, size_t len)
{
    return recorder_add(context, "CONNECT", json, len, NULL, 0, 0, NULL, 0);
}

static int rec_pub(void *context, const kci_pub_args *pub)
{
    return recorder_add(context, "PUB", pub->subject, pub->subject_len, pub->reply, pub->reply_len,
                        pub->header_bytes, pub->payload, pub->payload_len);
}

static int rec_sub(void *context, const char *subject, size_t subject_len, const char *queue,
                   size_t queue_len, const char *sid, size_t sid_len)
{
    return recorder_add(context, "SUB", subject, subject_len, queue, queue_len, 0, sid, sid_len);
}

static int rec_unsub(void *context, const char *sid, size_t sid_len, int64_t max_messages)
{
    return recorder_add(context, "UNSUB", sid, sid_len, NULL, 0, max_messages, NULL, 0);
}

static int rec_ping(void *context)
{
    return recorder_add(context, "PING", NULL, 0, NULL, 0, 0, NULL, 0);
}

static int rec_pong(void *context)
{
    return recorder_add(context, "PONG", NULL, 0, NULL, 0, 0, NULL, 0);
}

static int rec_before_connect(void *context)
{
    recorder *r = context;
    r->before_connect_calls++;
    return r->refuse_before_connect;
}

static const kci_parser_handlers recorder_handlers = {
    .on_connect = rec_connect,
    .on_pub = rec_pub,
    .on_sub = rec_sub,
    .on_unsub = rec_unsub,
    .on_ping = rec_ping,
    .on_pong = rec_pong,
    .on_before_connect_op = rec_before_connect,
};

/* Feeds input in pieces whose ends are given by cuts (ascending, < len);
 * returns the first error and appends "ERROR n" to the record. */
static kci_parse_error recorder_feed_split(recorder *r, kci_parser *parser, const uint8_t *input,
                                           size_t len, const size_t *cuts, size_t cut_count)
{
    size_t start = 0;
    for (size_t i = 0; i <= cut_count; i++) {
        size_t end = i < cut_count ? cuts[i] : len;
        if (end < start) continue;
        /* copy each piece so a parser that kept a pointer into it would be caught by ASan */
        uint8_t *piece = malloc(end - start + 1);
        memcpy(piece, input + start, end - start);
        kci_parse_error error =
            end > start ? kci_parser_feed(parser, &recorder_handlers, r, piece, end - start, NULL)
                        : KCI_PARSE_OK;
        free(piece);
        if (error != KCI_PARSE_OK) {
            recorder_add(r, "ERROR", NULL, 0, NULL, 0, error, NULL, 0);
            return error;
        }
        start = end;
    }
    return KCI_PARSE_OK;
}

#endif
