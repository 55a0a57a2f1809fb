/* fuzz_http.c - libFuzzer target for the HTTP/1.x request parser (http.h).
 *
 * The input is the request as a peer would send it. It is parsed three
 * ways: whole in one feed; one byte per feed, which resumes the parser at
 * every split point there is; and in pieces of pseudo-random sizes seeded
 * by the input, so several awkward cuts fall in one run. The three must end
 * in the same result with every offset equal, whatever the bytes are.
 * Then the result is checked against the grammar: a complete request has a
 * served method, a target of visible bytes split at its first '?', and an
 * HTTP/1.x version; a refused one carries one of the parser's statuses; no
 * feed reads past the input or past KCI_HTTP_REQUEST_BYTES_MAX.
 * A complete request's headers are then read as the console does
 * (http_header.h): a value found lies inside the head, after the request
 * line, with no blank at either end, and an Authorization value is decoded
 * as basic credentials, which come back NUL-terminated within their bound. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http.h"
#include "broker/http_header.h"

enum {
    FUZZ_PIECE_BYTES_MAX = 23,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kci_http_result parse_whole(kci_http_request *request, const char *bytes, size_t size)
{
    kci_http_parse_init(request);
    return kci_http_parse_feed(request, bytes, size);
}

static kci_http_result parse_bytewise(kci_http_request *request, const char *bytes, size_t size)
{
    kci_http_result result = KCI_HTTP_INCOMPLETE;
    kci_http_parse_init(request);
    for (size_t len = 1; len <= size && result == KCI_HTTP_INCOMPLETE; len++)
        result = kci_http_parse_feed(request, bytes, len);
    return result;
}

static kci_http_result parse_in_pieces(kci_http_request *request, const char *bytes, size_t size)
{
    kci_http_result result = KCI_HTTP_INCOMPLETE;
    uint32_t seed = (uint32_t)size * 2654435761u + (size > 0 ? (uint8_t)bytes[0] : 0);
    kci_http_parse_init(request);
    size_t len = 0;
    while (len < size) { /* each pass feeds at least one more byte */
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % FUZZ_PIECE_BYTES_MAX;
        len = piece < size - len ? len + piece : size;
        result = kci_http_parse_feed(request, bytes, len);
    }
    return result;
}

static bool requests_equal(const kci_http_request *a, const kci_http_request *b)
{
    return a->state == b->state && a->position == b->position &&
           a->method_start == b->method_start && a->method_len == b->method_len &&
           a->target_start == b->target_start && a->target_len == b->target_len &&
           a->path_len == b->path_len && a->query_start == b->query_start &&
           a->query_len == b->query_len && a->version_start == b->version_start &&
           a->version_len == b->version_len && a->header_line_count == b->header_line_count &&
           a->error_status == b->error_status;
}

static bool is_visible(uint8_t byte)
{
    return byte > ' ' && byte != 0x7f;
}

static void check_complete(const kci_http_request *request, const char *bytes)
{
    if (!kci_http_method_is(request, bytes, "GET") && !kci_http_method_is(request, bytes, "HEAD"))
        abort();
    if (request->target_len == 0 || request->target_len > KCI_HTTP_TARGET_BYTES_MAX) abort();
    const char *target = bytes + request->target_start;
    for (uint32_t i = 0; i < request->target_len; i++)
        if (!is_visible((uint8_t)target[i])) abort();
    const char *question = memchr(target, '?', request->target_len);
    uint32_t path_len = question != NULL ? (uint32_t)(question - target) : request->target_len;
    if (request->path_len != path_len) abort();
    if (question != NULL && (request->query_start != request->target_start + path_len + 1 ||
                             request->query_len != request->target_len - path_len - 1))
        abort();
    if (question == NULL && request->query_len != 0) abort();
    if (request->version_len != KCI_HTTP_VERSION_BYTES ||
        memcmp(bytes + request->version_start, "HTTP/1.", 7) != 0)
        abort();
    if (request->header_line_count > KCI_HTTP_HEADER_LINES_MAX) abort();
}

static void check_header(const kci_http_request *request, const char *bytes, const char *name)
{
    uint32_t start = 0, len = 0;
    if (!kci_http_header_value(request, bytes, name, &start, &len)) return;
    if (start < request->version_start + request->version_len || start + len > request->position)
        abort();
    if (len > 0 && (bytes[start] == ' ' || bytes[start] == '\t' || bytes[start + len - 1] == ' ' ||
                    bytes[start + len - 1] == '\t'))
        abort();
    char user[KCI_HTTP_CREDENTIAL_BYTES_MAX], password[KCI_HTTP_CREDENTIAL_BYTES_MAX];
    if (kci_http_basic_credentials(bytes + start, len, user, password) &&
        (memchr(user, '\0', sizeof user) == NULL ||
         memchr(password, '\0', sizeof password) == NULL))
        abort();
}

static void check_result(const kci_http_request *request, kci_http_result result, const char *bytes,
                         size_t size)
{
    if (request->position > size || request->position > KCI_HTTP_REQUEST_BYTES_MAX) abort();
    if (result == KCI_HTTP_COMPLETE) {
        if (request->state != KCI_HTTP_PARSE_DONE || request->error_status != 0) abort();
        check_complete(request, bytes);
        check_header(request, bytes, "Authorization");
        check_header(request, bytes, "Host");
    } else if (result == KCI_HTTP_FAILED) {
        int status = request->error_status;
        if (status != 400 && status != 405 && status != 414 && status != 431 && status != 505)
            abort();
    } else if (request->position != size || size >= KCI_HTTP_REQUEST_BYTES_MAX) {
        abort(); /* an unfinished request consumed everything it was given */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An empty input still gets a real pointer: feeds never read it. */
    const char *bytes = size > 0 ? (const char *)data : "";
    kci_http_request whole, bytewise, pieces;
    kci_http_result whole_result = parse_whole(&whole, bytes, size);
    kci_http_result bytewise_result = parse_bytewise(&bytewise, bytes, size);
    kci_http_result pieces_result = parse_in_pieces(&pieces, bytes, size);
    if (whole_result != bytewise_result || whole_result != pieces_result) abort();
    if (!requests_equal(&whole, &bytewise) || !requests_equal(&whole, &pieces)) abort();
    check_result(&whole, whole_result, bytes, size);
    return 0;
}
