/* parser.c - the NATS client protocol state machine (see parser.h).
 *
 * Design: one switch over the state per byte for operation names; argument
 * lines are scanned with memchr for the terminating '\n' (a line is the only
 * place where the per-byte loop would be slow). A payload that is whole in
 * the buffer is handed over as a slice without copying: that is the hot path
 * of every PUB. Limits: an argument line may not exceed the max control line
 * and a payload may not exceed max_payload; both are checked before any byte
 * is buffered, so a peer cannot make the parser allocate more than that. */
#include "parser.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum parser_state {
    OP_START = 0,
    OP_C,
    OP_CO,
    OP_CON,
    OP_CONN,
    OP_CONNE,
    OP_CONNEC,
    OP_CONNECT,
    CONNECT_SPC,
    CONNECT_ARG,
    OP_P,
    OP_PU,
    OP_PUB,
    PUB_SPC,
    PUB_ARG,
    OP_PI,
    OP_PIN,
    OP_PING,
    PING_ARG,
    OP_PO,
    OP_PON,
    OP_PONG,
    PONG_ARG,
    OP_H,
    OP_HP,
    OP_HPU,
    OP_HPUB,
    HPUB_SPC,
    HPUB_ARG,
    OP_S,
    OP_SU,
    OP_SUB,
    SUB_SPC,
    SUB_ARG,
    OP_U,
    OP_UN,
    OP_UNS,
    OP_UNSU,
    OP_UNSUB,
    UNSUB_SPC,
    UNSUB_ARG,
    OP_PLUS,
    OP_PLUS_O,
    OP_PLUS_OK,
    PLUS_OK_ARG,
    OP_MINUS,
    OP_MINUS_E,
    OP_MINUS_ER,
    OP_MINUS_ERR,
    MINUS_ERR_ARG,
    OP_I,
    OP_IN,
    OP_INF,
    OP_INFO,
    INFO_ARG,
    MSG_PAYLOAD,
    MSG_END_R,
    MSG_END_N,
};

enum {
    ARGS_MAX = 4,         /* HPUB subject reply header_bytes total_bytes */
    SIZE_DIGITS_MAX = 10, /* sizes are below 2^32 */
    SCRATCH_BYTES_MIN = 256,
};

typedef struct arg_slice {
    const char *start;
    size_t len;
} arg_slice;

void kci_parser_init(kci_parser *parser, uint32_t max_control_line_bytes,
                     uint32_t max_payload_bytes)
{
    memset(parser, 0, sizeof *parser);
    parser->state = OP_START;
    parser->max_control_line_bytes = max_control_line_bytes;
    parser->max_payload_bytes = max_payload_bytes;
}

void kci_parser_release_buffers(kci_parser *parser)
{
    free(parser->scratch);
    free(parser->payload_buffer);
    parser->scratch = NULL;
    parser->scratch_len = 0;
    parser->scratch_capacity = 0;
    parser->payload_buffer = NULL;
    parser->payload_capacity = 0;
    parser->payload_received = 0;
}

bool kci_parser_idle(const kci_parser *parser)
{
    return parser->state == OP_START;
}

const char *kci_parse_error_text(kci_parse_error error)
{
    switch (error) {
    case KCI_PARSE_OK: return "ok";
    case KCI_PARSE_UNKNOWN_OPERATION: return "Unknown Protocol Operation";
    case KCI_PARSE_CONTROL_LINE_TOO_LONG: return "maximum control line exceeded";
    case KCI_PARSE_MAX_PAYLOAD: return "Maximum Payload Violation";
    case KCI_PARSE_BAD_ARGUMENTS: return "Unknown Protocol Operation";
    case KCI_PARSE_NO_MEMORY: return "Out of Memory";
    case KCI_PARSE_STOPPED: return "stopped";
    }
    return "unknown parse error";
}

/* ---- argument helpers ------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits line into whitespace-separated slices; returns the count, or
 * ARGS_MAX + 1 if there are more than ARGS_MAX. */
static size_t split_args(const char *line, size_t len, arg_slice args[ARGS_MAX])
{
    size_t count = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(line[i]))
            i++;
        if (i == len) break;
        size_t start = i;
        while (i < len && !is_space(line[i]))
            i++;
        if (count == ARGS_MAX) return ARGS_MAX + 1;
        args[count].start = line + start;
        args[count].len = i - start;
        count++;
    }
    return count;
}

/* Parses a decimal size; -1 if empty, not all digits, or too long. */
static int64_t parse_size(const arg_slice *arg)
{
    if (arg->len == 0 || arg->len > SIZE_DIGITS_MAX) return -1;
    int64_t value = 0;
    for (size_t i = 0; i < arg->len; i++) {
        char c = arg->start[i];
        if (c < '0' || c > '9') return -1;
        value = value * 10 + (c - '0');
    }
    return value;
}

static bool scratch_reserve(kci_parser *parser, size_t capacity)
{
    if (capacity <= parser->scratch_capacity) return true;
    size_t grown = parser->scratch_capacity ? parser->scratch_capacity * 2 : SCRATCH_BYTES_MIN;
    while (grown < capacity)
        grown *= 2;
    char *bigger = realloc(parser->scratch, grown);
    if (bigger == NULL) return false;
    parser->scratch = bigger;
    parser->scratch_capacity = (uint32_t)grown;
    return true;
}

static kci_parse_error scratch_append(kci_parser *parser, const uint8_t *bytes, size_t len)
{
    size_t needed = (size_t)parser->scratch_len + len;
    if (needed > parser->max_control_line_bytes) return KCI_PARSE_CONTROL_LINE_TOO_LONG;
    if (!scratch_reserve(parser, needed)) return KCI_PARSE_NO_MEMORY;
    memcpy(parser->scratch + parser->scratch_len, bytes, len);
    parser->scratch_len = (uint32_t)needed;
    return KCI_PARSE_OK;
}

/* ---- operations ------------------------------------------------------ */

static kci_parse_error process_pub_line(kci_parser *parser, const char *line, size_t len)
{
    arg_slice args[ARGS_MAX];
    size_t count = split_args(line, len, args);
    bool hpub = parser->pub_is_hpub;
    size_t sizes = hpub ? 2 : 1;
    if (count < 1 + sizes || count > 2 + sizes) return KCI_PARSE_BAD_ARGUMENTS;
    kci_pub_args *pub = &parser->pub;
    pub->subject = args[0].start;
    pub->subject_len = args[0].len;
    bool has_reply = count == 2 + sizes;
    pub->reply = has_reply ? args[1].start : NULL;
    pub->reply_len = has_reply ? args[1].len : 0;
    size_t first_size = has_reply ? 2 : 1;
    int64_t total = parse_size(&args[first_size + sizes - 1]);
    int64_t header = hpub ? parse_size(&args[first_size]) : -1;
    if (total < 0 || (hpub && (header < 0 || header > total))) return KCI_PARSE_BAD_ARGUMENTS;
    if (total > (int64_t)parser->max_payload_bytes) return KCI_PARSE_MAX_PAYLOAD;
    pub->header_bytes = header;
    parser->pub_total_bytes = total;
    return KCI_PARSE_OK;
}

static int process_sub_line(kci_parser *parser, const kci_parser_handlers *handlers, void *context,
                            const char *line, size_t len, kci_parse_error *error)
{
    (void)parser;
    arg_slice args[ARGS_MAX];
    size_t count = split_args(line, len, args);
    if (count != 2 && count != 3) {
        *error = KCI_PARSE_BAD_ARGUMENTS;
        return -1;
    }
    const arg_slice *queue = count == 3 ? &args[1] : NULL;
    const arg_slice *sid = &args[count - 1];
    return handlers->on_sub(context, args[0].start, args[0].len, queue ? queue->start : NULL,
                            queue ? queue->len : 0, sid->start, sid->len);
}

static int process_unsub_line(const kci_parser_handlers *handlers, void *context, const char *line,
                              size_t len, kci_parse_error *error)
{
    arg_slice args[ARGS_MAX];
    size_t count = split_args(line, len, args);
    if (count != 1 && count != 2) {
        *error = KCI_PARSE_BAD_ARGUMENTS;
        return -1;
    }
    /* A max that is not a size ("-1", "x") is no error to nats-server: it
     * unsubscribes at once. It reaches the handler as -1. */
    int64_t max_messages = count == 2 ? parse_size(&args[1]) : 0;
    return handlers->on_unsub(context, args[0].start, args[0].len, max_messages);
}

/* Moves the pub's subject and reply into scratch, so they outlive the
 * caller's buffer while a split payload is gathered. */
static kci_parse_error pin_pub_args(kci_parser *parser)
{
    kci_pub_args *pub = &parser->pub;
    size_t needed = pub->subject_len + pub->reply_len;
    char *old_scratch = parser->scratch;
    bool in_scratch = old_scratch != NULL && pub->subject >= old_scratch &&
                      pub->subject < old_scratch + parser->scratch_capacity;
    if (in_scratch) return KCI_PARSE_OK; /* already there, and scratch is not reused */
    if (!scratch_reserve(parser, needed)) return KCI_PARSE_NO_MEMORY;
    memcpy(parser->scratch, pub->subject, pub->subject_len);
    if (pub->reply) memcpy(parser->scratch + pub->subject_len, pub->reply, pub->reply_len);
    pub->subject = parser->scratch;
    if (pub->reply) pub->reply = parser->scratch + pub->subject_len;
    parser->scratch_len = (uint32_t)needed;
    return KCI_PARSE_OK;
}

static kci_parse_error payload_reserve(kci_parser *parser, size_t capacity)
{
    if (capacity <= parser->payload_capacity) return KCI_PARSE_OK;
    uint8_t *bigger = realloc(parser->payload_buffer, capacity ? capacity : 1);
    if (bigger == NULL) return KCI_PARSE_NO_MEMORY;
    parser->payload_buffer = bigger;
    parser->payload_capacity = (uint32_t)capacity;
    return KCI_PARSE_OK;
}

/* Called with i just past the PUB/HPUB line. Delivers a whole payload from
 * the buffer, or starts gathering a split one. Returns the new index. */
static size_t begin_payload(kci_parser *parser, const kci_parser_handlers *handlers, void *context,
                            const uint8_t *buffer, size_t len, size_t i, kci_parse_error *error)
{
    size_t total = (size_t)parser->pub_total_bytes;
    if (len - i >= total + 2) {
        if (buffer[i + total] != '\r' || buffer[i + total + 1] != '\n') {
            *error = KCI_PARSE_UNKNOWN_OPERATION;
            return i + total;
        }
        parser->pub.payload = buffer + i;
        parser->pub.payload_len = total;
        parser->state = OP_START;
        if (handlers->on_pub(context, &parser->pub) != 0) *error = KCI_PARSE_STOPPED;
        return i + total + 2;
    }
    *error = pin_pub_args(parser);
    if (*error == KCI_PARSE_OK) *error = payload_reserve(parser, total);
    parser->payload_received = 0;
    parser->state = total == 0 ? MSG_END_R : MSG_PAYLOAD;
    return i;
}

/* Dispatches a complete argument line for the current state. */
static int process_line(kci_parser *parser, const kci_parser_handlers *handlers, void *context,
                        const char *line, size_t len, kci_parse_error *error)
{
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len > parser->max_control_line_bytes) {
        *error = KCI_PARSE_CONTROL_LINE_TOO_LONG;
        return -1;
    }
    switch (parser->state) {
    case CONNECT_ARG: parser->connected = true; return handlers->on_connect(context, line, len);
    case PUB_ARG:
    case HPUB_ARG:
        parser->pub_is_hpub = parser->state == HPUB_ARG;
        *error = process_pub_line(parser, line, len);
        return *error == KCI_PARSE_OK ? 0 : -1;
    case SUB_ARG: return process_sub_line(parser, handlers, context, line, len, error);
    case UNSUB_ARG: return process_unsub_line(handlers, context, line, len, error);
    case PING_ARG: return handlers->on_ping(context);
    case PONG_ARG: return handlers->on_pong(context);
    case MINUS_ERR_ARG:
        return handlers->on_error_from_peer ? handlers->on_error_from_peer(context, line, len) : 0;
    default: return 0; /* +OK and INFO from a client: ignored */
    }
}

/* In an *_ARG state: finds the end of the line from i. Returns the index
 * after the '\n', or len if the line continues in the next feed. */
static size_t scan_arg(kci_parser *parser, const kci_parser_handlers *handlers, void *context,
                       const uint8_t *buffer, size_t len, size_t i, kci_parse_error *error)
{
    size_t start = parser->arg_split ? 0 : parser->arg_start;
    const uint8_t *newline = memchr(buffer + i, '\n', len - i);
    if (newline == NULL) {
        *error = scratch_append(parser, buffer + start, len - start);
        parser->arg_split = true;
        return len;
    }
    size_t end = (size_t)(newline - buffer);
    const char *line = (const char *)buffer + start;
    size_t line_len = end - start;
    if (parser->arg_split) {
        *error = scratch_append(parser, buffer, end);
        if (*error != KCI_PARSE_OK) return end;
        line = parser->scratch;
        line_len = parser->scratch_len;
    }
    uint8_t state = parser->state;
    int stop = process_line(parser, handlers, context, line, line_len, error);
    parser->arg_split = false;
    parser->scratch_len = 0;
    parser->state = OP_START;
    if (*error != KCI_PARSE_OK) return end;
    if (stop != 0) {
        *error = KCI_PARSE_STOPPED;
        return end + 1;
    }
    if (state == PUB_ARG || state == HPUB_ARG)
        return begin_payload(parser, handlers, context, buffer, len, end + 1, error);
    return end + 1;
}

/* Gathers a split payload; returns the new index. */
static size_t gather_payload(kci_parser *parser, const uint8_t *buffer, size_t len, size_t i)
{
    size_t total = (size_t)parser->pub_total_bytes;
    size_t wanted = total - parser->payload_received;
    size_t available = len - i;
    size_t take = available < wanted ? available : wanted;
    if (take > 0) memcpy(parser->payload_buffer + parser->payload_received, buffer + i, take);
    parser->payload_received += (uint32_t)take;
    assert(parser->payload_received <= total);
    if (parser->payload_received == total) parser->state = MSG_END_R;
    return i + take;
}

/* ---- the state machine ----------------------------------------------- */

static bool is_arg_state(uint8_t state)
{
    switch (state) {
    case CONNECT_ARG:
    case PUB_ARG:
    case HPUB_ARG:
    case SUB_ARG:
    case UNSUB_ARG:
    case PING_ARG:
    case PONG_ARG:
    case PLUS_OK_ARG:
    case MINUS_ERR_ARG:
    case INFO_ARG: return true;
    default: return false;
    }
}

static int op_start(uint8_t c)
{
    switch (c) {
    case 'c': return OP_C;
    case 'p': return OP_P;
    case 'h': return OP_H;
    case 's': return OP_S;
    case 'u': return OP_U;
    case '+': return OP_PLUS;
    case '-': return OP_MINUS;
    case 'i': return OP_I;
    default: return -1;
    }
}

/* After an operation name: whitespace, then the argument line. */
static int after_name(uint8_t c, int spc_state)
{
    return is_space((char)c) ? spc_state : -1;
}

/* In a *_SPC state: skip whitespace; anything else begins the argument. */
static int in_spc(uint8_t c, int spc_state, int arg_state)
{
    return is_space((char)c) ? spc_state : arg_state;
}

/* The next state for one byte of an operation name, or -1. Transitions into
 * an *_ARG state do not consume the byte: it is the first of the line. */
static int op_transition(uint8_t state, uint8_t byte)
{
    uint8_t c = (byte >= 'A' && byte <= 'Z') ? (uint8_t)(byte | 0x20) : byte;
    switch (state) {
    case OP_START: return op_start(c);
    case OP_C: return c == 'o' ? OP_CO : -1;
    case OP_CO: return c == 'n' ? OP_CON : -1;
    case OP_CON: return c == 'n' ? OP_CONN : -1;
    case OP_CONN: return c == 'e' ? OP_CONNE : -1;
    case OP_CONNE: return c == 'c' ? OP_CONNEC : -1;
    case OP_CONNEC: return c == 't' ? OP_CONNECT : -1;
    case OP_CONNECT: return after_name(c, CONNECT_SPC);
    case CONNECT_SPC: return in_spc(c, CONNECT_SPC, CONNECT_ARG);
    case OP_P: return c == 'u' ? OP_PU : c == 'i' ? OP_PI : c == 'o' ? OP_PO : -1;
    case OP_PU: return c == 'b' ? OP_PUB : -1;
    case OP_PUB: return after_name(c, PUB_SPC);
    case PUB_SPC: return in_spc(c, PUB_SPC, PUB_ARG);
    case OP_PI: return c == 'n' ? OP_PIN : -1;
    case OP_PIN: return c == 'g' ? OP_PING : -1;
    case OP_PING: return PING_ARG;
    case OP_PO: return c == 'n' ? OP_PON : -1;
    case OP_PON: return c == 'g' ? OP_PONG : -1;
    case OP_PONG: return PONG_ARG;
    case OP_H: return c == 'p' ? OP_HP : -1;
    case OP_HP: return c == 'u' ? OP_HPU : -1;
    case OP_HPU: return c == 'b' ? OP_HPUB : -1;
    case OP_HPUB: return after_name(c, HPUB_SPC);
    case HPUB_SPC: return in_spc(c, HPUB_SPC, HPUB_ARG);
    case OP_S: return c == 'u' ? OP_SU : -1;
    case OP_SU: return c == 'b' ? OP_SUB : -1;
    case OP_SUB: return after_name(c, SUB_SPC);
    case SUB_SPC: return in_spc(c, SUB_SPC, SUB_ARG);
    case OP_U: return c == 'n' ? OP_UN : -1;
    case OP_UN: return c == 's' ? OP_UNS : -1;
    case OP_UNS: return c == 'u' ? OP_UNSU : -1;
    case OP_UNSU: return c == 'b' ? OP_UNSUB : -1;
    case OP_UNSUB: return after_name(c, UNSUB_SPC);
    case UNSUB_SPC: return in_spc(c, UNSUB_SPC, UNSUB_ARG);
    case OP_PLUS: return c == 'o' ? OP_PLUS_O : -1;
    case OP_PLUS_O: return c == 'k' ? OP_PLUS_OK : -1;
    case OP_PLUS_OK: return PLUS_OK_ARG;
    case OP_MINUS: return c == 'e' ? OP_MINUS_E : -1;
    case OP_MINUS_E: return c == 'r' ? OP_MINUS_ER : -1;
    case OP_MINUS_ER: return c == 'r' ? OP_MINUS_ERR : -1;
    case OP_MINUS_ERR: return MINUS_ERR_ARG;
    case OP_I: return c == 'n' ? OP_IN : -1;
    case OP_IN: return c == 'f' ? OP_INF : -1;
    case OP_INF: return c == 'o' ? OP_INFO : -1;
    case OP_INFO: return INFO_ARG;
    default: return -1;
    }
}

/* The two bytes after a split payload, then its delivery. */
static size_t end_payload(kci_parser *parser, const kci_parser_handlers *handlers, void *context,
                          uint8_t byte, size_t i, kci_parse_error *error)
{
    if (parser->state == MSG_END_R) {
        if (byte != '\r') *error = KCI_PARSE_UNKNOWN_OPERATION;
        parser->state = MSG_END_N;
        return i + 1;
    }
    if (byte != '\n') {
        *error = KCI_PARSE_UNKNOWN_OPERATION;
        return i;
    }
    parser->state = OP_START;
    parser->pub.payload = parser->payload_buffer;
    parser->pub.payload_len = parser->payload_received;
    if (handlers->on_pub(context, &parser->pub) != 0) *error = KCI_PARSE_STOPPED;
    return i + 1;
}

kci_parse_error kci_parser_feed(kci_parser *parser, const kci_parser_handlers *handlers,
                                void *context, const uint8_t *buffer, size_t len,
                                size_t *error_offset)
{
    assert(parser != NULL && handlers != NULL);
    kci_parse_error error = KCI_PARSE_OK;
    size_t i = 0;
    while (i < len && error == KCI_PARSE_OK) {
        uint8_t state = parser->state;
        if (is_arg_state(state)) {
            i = scan_arg(parser, handlers, context, buffer, len, i, &error);
            continue;
        }
        if (state == MSG_PAYLOAD) {
            i = gather_payload(parser, buffer, len, i);
            continue;
        }
        if (state == MSG_END_R || state == MSG_END_N) {
            i = end_payload(parser, handlers, context, buffer[i], i, &error);
            continue;
        }
        if (state == OP_START && !parser->connected && handlers->on_before_connect_op != NULL &&
            (buffer[i] | 0x20) != 'c' && handlers->on_before_connect_op(context) != 0) {
            error = KCI_PARSE_STOPPED;
            break;
        }
        if (state == OP_START && len - i >= 4 && memcmp(buffer + i, "PUB ", 4) == 0) {
            parser->state = PUB_SPC; /* the common case, without four transitions */
            i += 4;
            continue;
        }
        int next = op_transition(state, buffer[i]);
        if (next < 0) {
            error = KCI_PARSE_UNKNOWN_OPERATION;
            break;
        }
        parser->state = (uint8_t)next;
        if (is_arg_state((uint8_t)next)) {
            parser->arg_start = (uint32_t)i;
            parser->arg_split = false;
            parser->scratch_len = 0;
            continue;
        }
        i++;
    }
    if (error != KCI_PARSE_OK && error_offset != NULL) *error_offset = i;
    return error;
}
