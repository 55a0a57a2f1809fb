/* http_header.c - one header's value and basic credentials (see
 * http_header.h). The parser (http.c) has already checked that the head is
 * CRLF-terminated lines of bounded count and size, so this is a plain scan
 * of at most KCI_HTTP_REQUEST_BYTES_MAX bytes. */
#include "http_header.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

enum {
    BASE64_DECODED_BYTES_MAX = 2 * KCI_HTTP_CREDENTIAL_BYTES_MAX,
    BASE64_BAD = 0xff,
};

static bool is_blank(char byte)
{
    return byte == ' ' || byte == '\t';
}

/* The header line [line, end) named name: its trimmed value. */
static bool line_value(const char *bytes, uint32_t line, uint32_t end, const char *name,
                       uint32_t *value_start, uint32_t *value_len)
{
    size_t name_len = strlen(name);
    if (end - line <= name_len || bytes[line + name_len] != ':' ||
        strncasecmp(bytes + line, name, name_len) != 0)
        return false;
    uint32_t start = line + (uint32_t)name_len + 1;
    while (start < end && is_blank(bytes[start]))
        start++;
    while (end > start && is_blank(bytes[end - 1]))
        end--;
    *value_start = start;
    *value_len = end - start;
    return true;
}

bool kci_http_header_value(const kci_http_request *request, const char *bytes, const char *name,
                           uint32_t *value_start, uint32_t *value_len)
{
    if (request->state != KCI_HTTP_PARSE_DONE) return false;
    /* The request line ends with the version and its CRLF; the head with
     * an empty line (CRLF, or a bare LF where the parser takes one). */
    uint32_t line = request->version_start + request->version_len;
    const uint32_t end = request->position;
    while (line < end) {
        const char *newline = memchr(bytes + line, '\n', end - line);
        if (newline == NULL) break;
        line = (uint32_t)(newline - bytes) + 1; /* the next line's start */
        const char *next = memchr(bytes + line, '\n', end - line);
        if (next == NULL) break;
        uint32_t line_end = (uint32_t)(next - bytes);
        if (line_end > line && bytes[line_end - 1] == '\r') line_end--;
        if (line_end == line) break; /* the blank line */
        if (line_value(bytes, line, line_end, name, value_start, value_len)) return true;
    }
    return false;
}

static unsigned char base64_digit(unsigned char byte)
{
    if (byte >= 'A' && byte <= 'Z') return (unsigned char)(byte - 'A');
    if (byte >= 'a' && byte <= 'z') return (unsigned char)(byte - 'a' + 26);
    if (byte >= '0' && byte <= '9') return (unsigned char)(byte - '0' + 52);
    if (byte == '+') return 62;
    if (byte == '/') return 63;
    return BASE64_BAD;
}

/* Standard base64 with padding; the decoded length, or -1. */
static int base64_decode(const char *text, size_t len, char *out, size_t out_size)
{
    if (len % 4 != 0) return -1;
    size_t used = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned char d[4];
        size_t pad = 0;
        for (size_t j = 0; j < 4; j++) {
            unsigned char byte = (unsigned char)text[i + j];
            bool last_quad = i + 4 == len;
            if (byte == '=' && last_quad && j >= 2) {
                pad++;
                d[j] = 0;
                continue;
            }
            if (pad > 0 || (d[j] = base64_digit(byte)) == BASE64_BAD) return -1;
        }
        unsigned char decoded[3] = {(unsigned char)(d[0] << 2 | d[1] >> 4),
                                    (unsigned char)(d[1] << 4 | d[2] >> 2),
                                    (unsigned char)(d[2] << 6 | d[3])};
        size_t n = 3 - pad;
        if (used + n > out_size) return -1;
        memcpy(out + used, decoded, n);
        used += n;
    }
    return (int)used;
}

static bool copy_part(char *to, const char *from, size_t len)
{
    if (len >= KCI_HTTP_CREDENTIAL_BYTES_MAX || memchr(from, '\0', len) != NULL) return false;
    memcpy(to, from, len);
    to[len] = '\0';
    return true;
}

bool kci_http_basic_credentials(const char *value, size_t value_len,
                                char user[KCI_HTTP_CREDENTIAL_BYTES_MAX],
                                char password[KCI_HTTP_CREDENTIAL_BYTES_MAX])
{
    static const char SCHEME[] = "Basic ";
    const size_t scheme_len = sizeof SCHEME - 1;
    if (value_len <= scheme_len || strncasecmp(value, SCHEME, scheme_len) != 0) return false;
    char decoded[BASE64_DECODED_BYTES_MAX];
    int len = base64_decode(value + scheme_len, value_len - scheme_len, decoded, sizeof decoded);
    if (len < 0) return false;
    const char *colon = memchr(decoded, ':', (size_t)len);
    if (colon == NULL) return false;
    size_t user_len = (size_t)(colon - decoded);
    assert(user_len < (size_t)len);
    return copy_part(user, decoded, user_len) &&
           copy_part(password, colon + 1, (size_t)len - user_len - 1);
}
