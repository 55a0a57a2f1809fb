/* kcobra_common.c - the parts every kcobra command shares (see
 * kcobra_common.h): flag parsing and help, durations, payload input, output
 * helpers and connecting.
 *
 * The flag grammar is the GNU long-option one, kept small: "--name value" or
 * "--name=value", bool flags take no value, "-h" is "--help", "--" ends the
 * flags, and a lone "-" is an argument (stdin). Flags and arguments may come
 * in any order. Every limit is named in kcobra_common.h. */
#include "kcobra_common.h"

#include "common/log.h"
#include "service/connect.h"
#include "service/nats_options.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    COMMON_FLAG_COUNT = 10,
    HELP_COLUMN = 26, /* where a flag's help text starts */
    HELP_WIDTH = 88,  /* and where it wraps */
    FLAG_NAME_BYTES_MAX = 64,
};

static const char EXIT_STATUS_HELP[] =
    "Exit status:\n"
    "  0  success\n"
    "  1  failure (I/O error, bad answer, the server refused, ...)\n"
    "  2  usage error (unknown command or option, bad argument)\n"
    "  3  timeout (no answer within --timeout)\n"
    "  4  no responders (nobody serves the request type)\n"
    "  5  the service answered with an error reply\n"
    "  6  cannot connect to the server\n";

void kcobra_print_exit_status(void)
{
    fputs(EXIT_STATUS_HELP, stdout);
}

/* ===================================================================== flags */

static void common_flags_bind(kcobra_common *common, kcobra_flag flags[COMMON_FLAG_COUNT])
{
    const kcobra_flag bound[COMMON_FLAG_COUNT] = {
        {"server", "URL", KCOBRA_FLAG_STRING, &common->server,
         "server URL(s), comma-separated (default " KCOBRA_SERVER_DEFAULT
         "; env " KCOBRA_SERVER_ENVIRONMENT ")"},
        {"timeout", "DURATION", KCOBRA_FLAG_DURATION, &common->timeout_ms,
         "wait this long to connect or for an answer (default 2s; e.g. 500ms, 1m30s)"},
        {"node", "NAME", KCOBRA_FLAG_STRING, &common->node,
         "this node's name, sent as Kc-Node (default: the host name)"},
        {"json", NULL, KCOBRA_FLAG_BOOL, &common->json,
         "machine-readable output: one JSON object per line"},
        {"token", "TOKEN", KCOBRA_FLAG_STRING, &common->token,
         "authentication token (env " KCOBRA_TOKEN_ENVIRONMENT ")"},
        {"user", "USER", KCOBRA_FLAG_STRING, &common->user,
         "user name (env " KCOBRA_USER_ENVIRONMENT ")"},
        {"password", "PASSWORD", KCOBRA_FLAG_STRING, &common->password,
         "password (env " KCOBRA_PASSWORD_ENVIRONMENT "; safer than the flag)"},
        {"tls-ca", "FILE", KCOBRA_FLAG_STRING, &common->tls_ca,
         "CA certificate(s) to verify the server; turns TLS on"},
        {"tls-cert", "FILE", KCOBRA_FLAG_STRING, &common->tls_cert,
         "client certificate (with --tls-key); turns TLS on"},
        {"tls-key", "FILE", KCOBRA_FLAG_STRING, &common->tls_key, "client private key"},
    };
    memcpy(flags, bound, sizeof bound);
}

static void common_defaults(kcobra_common *common)
{
    memset(common, 0, sizeof *common);
    const char *server = getenv(KCOBRA_SERVER_ENVIRONMENT);
    common->server = server != NULL && server[0] != '\0' ? server : KCOBRA_SERVER_DEFAULT;
    common->timeout_ms = KCOBRA_TIMEOUT_MS_DEFAULT;
    common->token = getenv(KCOBRA_TOKEN_ENVIRONMENT);
    common->user = getenv(KCOBRA_USER_ENVIRONMENT);
    common->password = getenv(KCOBRA_PASSWORD_ENVIRONMENT);
}

/* Prints text from HELP_COLUMN on, wrapped at word boundaries before
 * HELP_WIDTH (a word longer than the room is printed whole). */
static void print_wrapped(FILE *stream, const char *text)
{
    const int room = HELP_WIDTH - HELP_COLUMN;
    bool first_line = true;
    while (*text != '\0') {
        int length = (int)strlen(text);
        if (length > room) {
            length = room;
            while (length > 0 && text[length] != ' ')
                length--;
            if (length == 0) length = (int)strcspn(text, " ");
        }
        fprintf(stream, "%*s%.*s\n", first_line ? 0 : HELP_COLUMN, "", length, text);
        first_line = false;
        text += length;
        while (*text == ' ')
            text++;
    }
}

static void print_flags(FILE *stream, const kcobra_flag *flags, int flag_count)
{
    for (int index = 0; index < flag_count; index++) {
        const kcobra_flag *flag = &flags[index];
        char left[FLAG_NAME_BYTES_MAX];
        int width = snprintf(left, sizeof left, "  --%s%s%s", flag->name,
                             flag->value_name != NULL ? " " : "",
                             flag->value_name != NULL ? flag->value_name : "");
        if (width >= HELP_COLUMN - 1)
            fprintf(stream, "%s\n%*s", left, HELP_COLUMN, "");
        else
            fprintf(stream, "%-*s", HELP_COLUMN, left);
        print_wrapped(stream, flag->help);
    }
}

void kcobra_print_common_options(void)
{
    kcobra_common unused;
    kcobra_flag flags[COMMON_FLAG_COUNT];
    common_flags_bind(&unused, flags);
    print_flags(stdout, flags, COMMON_FLAG_COUNT);
    printf("%-*s%s\n", HELP_COLUMN, "  -h, --help", "show help and exit");
}

static void print_command_help(const kcobra_command *command, const kcobra_flag *flags,
                               int flag_count)
{
    printf("Usage: kcobra %s [options]\n\n%s\n", command->synopsis, command->summary);
    if (command->description != NULL && command->description[0] != '\0')
        printf("\n%s", command->description);
    if (flag_count > 0) {
        printf("\nOptions:\n");
        print_flags(stdout, flags, flag_count);
    }
    printf("\nCommon options:\n");
    kcobra_print_common_options();
    printf("\n");
    kcobra_print_exit_status();
}

int kcobra_usage_error(const kcobra_command *command, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fputs("kcobra: ", stderr);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    if (command != NULL)
        fprintf(stderr, "\nUsage: kcobra %s [options]\nTry 'kcobra %s --help'.\n",
                command->synopsis, command->name);
    else
        fputs("\nTry 'kcobra --help'.\n", stderr);
    return KCOBRA_EXIT_USAGE;
}

static const kcobra_flag *flag_find(const kcobra_flag *flags, int flag_count, const char *name,
                                    size_t name_length)
{
    for (int index = 0; index < flag_count; index++)
        if (strlen(flags[index].name) == name_length &&
            memcmp(flags[index].name, name, name_length) == 0)
            return &flags[index];
    return NULL;
}

static bool parse_count(const char *text, int64_t *out)
{
    if (text[0] < '0' || text[0] > '9') return false;
    int64_t value = 0;
    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (*cursor < '0' || *cursor > '9') return false;
        value = value * 10 + (*cursor - '0');
        if (value > KCOBRA_COUNT_MAX) return false;
    }
    if (value < 1) return false;
    *out = value;
    return true;
}

static int flag_apply(const kcobra_command *command, const kcobra_flag *flag, const char *value)
{
    switch (flag->kind) {
    case KCOBRA_FLAG_BOOL: *(bool *)flag->target = true; return KCOBRA_EXIT_OK;
    case KCOBRA_FLAG_STRING: *(const char **)flag->target = value; return KCOBRA_EXIT_OK;
    case KCOBRA_FLAG_DURATION:
        if (kcobra_parse_duration_ms(value, flag->target)) return KCOBRA_EXIT_OK;
        return kcobra_usage_error(command,
                                  "invalid duration '%s' for --%s: use a number and a unit "
                                  "(ms, s, m, h), e.g. 500ms or 2s, at most 24h",
                                  value, flag->name);
    case KCOBRA_FLAG_COUNT:
        if (parse_count(value, flag->target)) return KCOBRA_EXIT_OK;
        return kcobra_usage_error(command, "invalid number '%s' for --%s: expected 1 to %d", value,
                                  flag->name, KCOBRA_COUNT_MAX);
    case KCOBRA_FLAG_LIST: {
        kcobra_list *list = flag->target;
        if (list->count >= KCOBRA_LIST_VALUES_MAX)
            return kcobra_usage_error(command, "too many --%s options (at most %d)", flag->name,
                                      KCOBRA_LIST_VALUES_MAX);
        list->values[list->count++] = value;
        return KCOBRA_EXIT_OK;
    }
    }
    return KCOBRA_EXIT_FAILURE;
}

/* Parses the flag at argv[*index] (and its value, which may be the next
 * argument: *index then moves past it). */
static int parse_flag(const kcobra_command *command, const kcobra_flag *flags, int flag_count,
                      int argc, char **argv, int *index)
{
    const char *argument = argv[*index];
    if (argument[1] != '-') return kcobra_usage_error(command, "unknown option '%s'", argument);
    const char *name = argument + 2;
    const char *equals = strchr(name, '=');
    size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
    const kcobra_flag *flag = flag_find(flags, flag_count, name, name_length);
    if (flag == NULL)
        return kcobra_usage_error(command, "unknown option '--%.*s'", (int)name_length, name);
    if (flag->kind == KCOBRA_FLAG_BOOL) {
        if (equals != NULL)
            return kcobra_usage_error(command, "option --%s takes no value", flag->name);
        return flag_apply(command, flag, NULL);
    }
    const char *value = equals != NULL ? equals + 1 : NULL;
    if (value == NULL) {
        if (*index + 1 >= argc)
            return kcobra_usage_error(command, "option --%s needs a value (%s)", flag->name,
                                      flag->value_name);
        value = argv[++*index];
    }
    return flag_apply(command, flag, value);
}

static bool help_requested(int argc, char **argv)
{
    for (int index = 1; index < argc; index++) {
        if (strcmp(argv[index], "--") == 0) return false;
        if (strcmp(argv[index], "-h") == 0 || strcmp(argv[index], "--help") == 0) return true;
    }
    return false;
}

static int check_invocation(const kcobra_command *command, const kcobra_invocation *invocation)
{
    if (invocation->positional_count < command->positional_min)
        return kcobra_usage_error(command, "missing argument(s)");
    if (invocation->positional_count > command->positional_max)
        return kcobra_usage_error(command, "unexpected argument '%s'",
                                  invocation->positional[command->positional_max]);
    const kcobra_common *common = &invocation->common;
    if ((common->tls_cert == NULL) != (common->tls_key == NULL))
        return kcobra_usage_error(command, "--tls-cert and --tls-key go together");
    /* Only the flag: a KCOBRA_PASSWORD without a user is left unused. */
    if (common->password != NULL && common->user == NULL &&
        common->password != getenv(KCOBRA_PASSWORD_ENVIRONMENT))
        return kcobra_usage_error(command, "--password needs --user");
    if (common->server[0] == '\0') return kcobra_usage_error(command, "--server is empty");
    return KCOBRA_EXIT_OK;
}

int kcobra_parse(const kcobra_command *command, const kcobra_flag *flags, int flag_count, int argc,
                 char **argv, kcobra_invocation *out)
{
    memset(out, 0, sizeof *out);
    common_defaults(&out->common);
    if (help_requested(argc, argv)) {
        print_command_help(command, flags, flag_count);
        out->help = true;
        return KCOBRA_EXIT_OK;
    }
    kcobra_flag all[KCOBRA_COMMAND_FLAGS_MAX + COMMON_FLAG_COUNT];
    assert(flag_count >= 0 && flag_count <= KCOBRA_COMMAND_FLAGS_MAX); /* a command's table */
    assert(command->positional_max <= KCOBRA_POSITIONAL_MAX);
    if (flag_count > 0) memcpy(all, flags, sizeof(kcobra_flag) * (size_t)flag_count);
    common_flags_bind(&out->common, all + flag_count);
    bool flags_ended = false;
    for (int index = 1; index < argc; index++) {
        const char *argument = argv[index];
        if (!flags_ended && strcmp(argument, "--") == 0) {
            flags_ended = true;
        } else if (flags_ended || argument[0] != '-' || argument[1] == '\0') {
            if (out->positional_count >= KCOBRA_POSITIONAL_MAX)
                return kcobra_usage_error(command, "too many arguments");
            out->positional[out->positional_count++] = argument;
        } else {
            int status =
                parse_flag(command, all, flag_count + COMMON_FLAG_COUNT, argc, argv, &index);
            if (status != KCOBRA_EXIT_OK) return status;
        }
    }
    return check_invocation(command, out);
}

int kcobra_global_flags_span(int first, int argc, char **argv)
{
    kcobra_common unused;
    kcobra_flag flags[COMMON_FLAG_COUNT];
    common_flags_bind(&unused, flags);
    int index = first;
    while (index < argc && argv[index][0] == '-' && argv[index][1] == '-' &&
           argv[index][2] != '\0') {
        const char *name = argv[index] + 2;
        const char *equals = strchr(name, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const kcobra_flag *flag = flag_find(flags, COMMON_FLAG_COUNT, name, name_length);
        if (flag == NULL) {
            kcobra_usage_error(NULL,
                               "'--%.*s' is not an option of every command; give it after the "
                               "command's name",
                               (int)name_length, name);
            return -1;
        }
        index += flag->kind != KCOBRA_FLAG_BOOL && equals == NULL ? 2 : 1;
    }
    return (index > argc ? argc : index) - first;
}

bool kcobra_token_valid(const char *token, size_t bytes_max)
{
    size_t length = strlen(token);
    if (length == 0 || length > bytes_max) return false;
    for (size_t index = 0; index < length; index++) {
        unsigned char byte = (unsigned char)token[index];
        if (byte <= ' ' || byte == 0x7f || byte == '.' || byte == '*' || byte == '>') return false;
    }
    return true;
}

/* ================================================================= durations */

/* One "<digits>[.<digits>]<unit>" segment; *cursor moves past it. */
static bool parse_duration_segment(const char **cursor, double *total_ms)
{
    const char *text = *cursor;
    double value = 0;
    int digit_count = 0;
    for (; *text >= '0' && *text <= '9' && digit_count < 12; text++, digit_count++)
        value = value * 10 + (*text - '0');
    if (*text == '.') {
        double scale = 0.1;
        for (text++; *text >= '0' && *text <= '9' && digit_count < 12; text++, digit_count++) {
            value += (*text - '0') * scale;
            scale /= 10;
        }
    }
    if (digit_count == 0 || (*text >= '0' && *text <= '9')) return false;
    static const struct {
        const char *unit;
        double unit_ms;
    } UNITS[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
    for (size_t index = 0; index < sizeof UNITS / sizeof UNITS[0]; index++) {
        size_t unit_length = strlen(UNITS[index].unit);
        if (strncmp(text, UNITS[index].unit, unit_length) == 0) {
            *total_ms += value * UNITS[index].unit_ms;
            *cursor = text + unit_length;
            return true;
        }
    }
    return false;
}

bool kcobra_parse_duration_ms(const char *text, int64_t *out)
{
    if (text == NULL || text[0] == '\0') return false;
    double total_ms = 0;
    const char *cursor = text;
    for (int segment = 0; *cursor != '\0'; segment++) {
        if (segment >= KCOBRA_DURATION_SEGMENTS_MAX) return false;
        if (!parse_duration_segment(&cursor, &total_ms)) return false;
    }
    if (total_ms < 1 || total_ms > KCOBRA_DURATION_MS_MAX) return false;
    *out = (int64_t)(total_ms + 0.5); /* no libm: kcobra links none */
    return true;
}

void kcobra_format_duration_ms(int64_t duration_ms, char text[KCOBRA_DURATION_TEXT_BYTES])
{
    if (duration_ms < 1000) {
        snprintf(text, KCOBRA_DURATION_TEXT_BYTES, "%lldms", (long long)duration_ms);
        return;
    }
    int length = snprintf(text, KCOBRA_DURATION_TEXT_BYTES, "%lld.%03lld",
                          (long long)(duration_ms / 1000), (long long)(duration_ms % 1000));
    while (length > 0 && text[length - 1] == '0')
        text[--length] = '\0';
    if (length > 0 && text[length - 1] == '.') text[--length] = '\0';
    snprintf(text + length, (size_t)(KCOBRA_DURATION_TEXT_BYTES - length), "s");
}

/* ==================================================================== input */

void kcobra_buffer_free(kcobra_buffer *buffer)
{
    if (buffer->heap) free(buffer->bytes);
    memset(buffer, 0, sizeof *buffer);
}

bool kcobra_read_all(int fd, size_t bytes_max, kcobra_buffer *out)
{
    memset(out, 0, sizeof *out);
    size_t capacity = 0;
    for (;;) {
        if (out->length == capacity) {
            if (capacity > bytes_max) {
                kcobra_buffer_free(out);
                errno = EFBIG;
                return false;
            }
            size_t grown = capacity == 0 ? KCOBRA_READ_CHUNK_BYTES : capacity * 2;
            if (grown > bytes_max + 1) grown = bytes_max + 1;
            char *bytes = realloc(out->bytes, grown + 1);
            if (bytes == NULL) {
                kcobra_buffer_free(out);
                errno = ENOMEM;
                return false;
            }
            out->bytes = bytes;
            out->heap = true;
            capacity = grown;
        }
        ssize_t got = read(fd, out->bytes + out->length, capacity - out->length);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int saved = errno;
            kcobra_buffer_free(out);
            errno = saved;
            return false;
        }
        if (got == 0) break;
        out->length += (size_t)got;
        assert(out->length <= capacity);
        if (out->length > bytes_max) {
            kcobra_buffer_free(out);
            errno = EFBIG;
            return false;
        }
    }
    if (out->bytes != NULL) out->bytes[out->length] = '\0';
    return true;
}

int kcobra_read_payload(const char *argument, kcobra_buffer *out)
{
    memset(out, 0, sizeof *out);
    bool from_stdin = argument != NULL ? strcmp(argument, "-") == 0 : !isatty(STDIN_FILENO);
    if (!from_stdin) {
        out->bytes = (char *)(argument != NULL ? argument : "");
        out->length = strlen(out->bytes);
        return KCOBRA_EXIT_OK;
    }
    if (kcobra_read_all(STDIN_FILENO, KCOBRA_STDIN_BYTES_MAX, out)) return KCOBRA_EXIT_OK;
    if (errno == EFBIG)
        kcobra_error("the payload on stdin is larger than %d MiB",
                     KCOBRA_STDIN_BYTES_MAX / (1024 * 1024));
    else
        kcobra_error("cannot read the payload from stdin: %s", strerror(errno));
    return KCOBRA_EXIT_FAILURE;
}

/* =================================================================== output */

void kcobra_error(const char *format, ...)
{
    char line[4096];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(line, sizeof line, format, arguments);
    va_end(arguments);
    fprintf(stderr, "kcobra: %s\n", line);
}

int kcobra_write_payload(const void *payload, size_t payload_length)
{
    if (payload_length > 0 && fwrite(payload, 1, payload_length, stdout) != payload_length) {
        kcobra_error("cannot write to stdout: %s", strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    if (payload_length > 0 && ((const char *)payload)[payload_length - 1] != '\n' &&
        isatty(STDOUT_FILENO))
        fputc('\n', stdout);
    if (fflush(stdout) != 0) {
        kcobra_error("cannot write to stdout: %s", strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

char *kcobra_base64_encode(const void *bytes, size_t length)
{
    static const char ALPHABET[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char PAD = '=';
    const unsigned char *in = bytes;
    if (in == NULL) length = 0;
    char *text = malloc((length + 2) / 3 * 4 + 1);
    if (text == NULL) return NULL;
    size_t out = 0;
    for (size_t index = 0; index < length; index += 3) {
        uint32_t group = (uint32_t)in[index] << 16;
        if (index + 1 < length) group |= (uint32_t)in[index + 1] << 8;
        if (index + 2 < length) group |= in[index + 2];
        text[out++] = ALPHABET[(group >> 18) & 63];
        text[out++] = ALPHABET[(group >> 12) & 63];
        text[out++] = PAD;
        text[out++] = PAD;
        if (index + 1 < length) text[out - 2] = ALPHABET[(group >> 6) & 63];
        if (index + 2 < length) text[out - 1] = ALPHABET[group & 63];
    }
    assert(out == (length + 2) / 3 * 4);
    text[out] = '\0';
    return text;
}

int kcobra_json_set_payload(json_t *object, const void *payload, size_t payload_length)
{
    /* jansson refuses strings that are not valid UTF-8: exactly the test. */
    json_t *text = json_stringn(payload != NULL ? payload : "", payload_length);
    if (text != NULL) return json_object_set_new(object, "payload", text) == 0 ? 0 : -1;
    char *encoded = kcobra_base64_encode(payload, payload_length);
    if (encoded == NULL) return -1;
    int status = json_object_set_new(object, "payload_base64", json_string(encoded));
    free(encoded);
    return status == 0 ? 0 : -1;
}

int kcobra_json_print(json_t *object)
{
    if (object == NULL) {
        kcobra_error("out of memory building JSON output");
        return KCOBRA_EXIT_FAILURE;
    }
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    if (text == NULL) {
        kcobra_error("out of memory building JSON output");
        return KCOBRA_EXIT_FAILURE;
    }
    int status = printf("%s\n", text) < 0 || fflush(stdout) != 0 ? -1 : 0;
    free(text);
    if (status != 0) {
        kcobra_error("cannot write to stdout: %s", strerror(errno));
        return KCOBRA_EXIT_FAILURE;
    }
    return KCOBRA_EXIT_OK;
}

int kcobra_exit_for_error(kc_err err)
{
    switch (err) {
    case KC_OK: return KCOBRA_EXIT_OK;
    case KC_ERR_TIMEOUT:
    case KC_ERR_EXPIRED: return KCOBRA_EXIT_TIMEOUT;
    case KC_ERR_NO_RESPONDERS: return KCOBRA_EXIT_NO_RESPONDERS;
    case KC_ERR_SERVICE: return KCOBRA_EXIT_SERVICE_ERROR;
    case KC_ERR_NOT_CONNECTED:
    case KC_ERR_CLOSED: return KCOBRA_EXIT_CONNECT;
    case KC_ERR_INVALID_ARGUMENT:
    case KC_ERR_INVALID_SUBJECT: return KCOBRA_EXIT_USAGE;
    default: return KCOBRA_EXIT_FAILURE;
    }
}

/* =============================================================== connecting */

static bool wants_tls(const kcobra_common *common)
{
    return common->tls_ca != NULL || common->tls_cert != NULL ||
           strncmp(common->server, "tls://", strlen("tls://")) == 0;
}

/* The common flags as libkingcobra's options, for both kinds of connection. */
static void client_options_from(kc_client_options *options, const kcobra_common *common)
{
    kc_client_options_init(options);
    options->servers = common->server;
    options->node = common->node;
    options->token = common->token;
    options->user = common->user;
    options->password = common->password;
    options->tls = wants_tls(common);
    options->tls_ca_file = common->tls_ca;
    options->tls_cert_file = common->tls_cert;
    options->tls_key_file = common->tls_key;
    options->connect_timeout_ms = common->timeout_ms;
    options->qos_secret_key = common->qos_secret_key;
}

int kcobra_client_open(kc_client **out, const kcobra_common *common)
{
    return kcobra_client_open_window(out, common, 0);
}

int kcobra_client_open_window(kc_client **out, const kcobra_common *common,
                              uint32_t submits_in_flight_max)
{
    kc_client_options options;
    client_options_from(&options, common);
    options.submits_in_flight_max = submits_in_flight_max;
    /* Many submits in flight: let nats.c write them in batches. */
    options.publish_buffered = submits_in_flight_max > 0;
    /* No name: libkingcobra names the connection after the node, which is
     * how kcobrad knows a node when it has no users (the arbiters'
     * quarantine, /connz). */
    options.name = NULL;
    kc_err err = kc_client_open(out, &options);
    if (err == KC_OK) return KCOBRA_EXIT_OK;
    *out = NULL;
    if (err == KC_ERR_INVALID_ARGUMENT || err == KC_ERR_CONFIG) {
        kcobra_error("%s", kc_last_error());
        return KCOBRA_EXIT_USAGE;
    }
    if (err == KC_ERR_NOMEM) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    kcobra_error("cannot connect to %s: %s (%s)", common->server, kc_last_error(),
                 kc_strerror(err));
    return KCOBRA_EXIT_CONNECT;
}

void kcobra_client_close(kc_client *client)
{
    if (client != NULL) kc_client_close(client, KCOBRA_TIMEOUT_MS_DEFAULT);
}

const char *kcobra_nats_error(natsStatus status)
{
    const char *text = nats_GetLastError(NULL);
    return text != NULL && text[0] != '\0' ? text : natsStatus_GetText(status);
}

/* Words a failed call for the user (kcobra_call). */
static int call_status(kc_err err, const kcobra_common *common, const char *subject,
                       const char *who, const char *runs_in)
{
    if (err == KC_OK || err == KC_ERR_SERVICE) return KCOBRA_EXIT_OK;
    if (err == KC_ERR_NO_RESPONDERS) {
        kcobra_error("no %s answers on %s (no responders); %s", who, subject, runs_in);
        return KCOBRA_EXIT_NO_RESPONDERS;
    }
    if (err == KC_ERR_TIMEOUT) {
        char timeout_text[KCOBRA_DURATION_TEXT_BYTES];
        kcobra_format_duration_ms(common->timeout_ms, timeout_text);
        kcobra_error("timed out after %s waiting for the %s on %s", timeout_text, who, subject);
        return KCOBRA_EXIT_TIMEOUT;
    }
    kcobra_error("asking the %s: %s", who, kc_last_error());
    return KCOBRA_EXIT_FAILURE;
}

int kcobra_call(natsMsg **reply, natsConnection *connection, const kcobra_common *common,
                const char *subject, const char *body, const char *who, const char *runs_in,
                kci_refusal *refusal)
{
    kci_refusal refused;
    kc_err err = kci_call(reply, connection, subject, body, body != NULL ? strlen(body) : 0,
                          common->timeout_ms, &refused);
    if (refusal != NULL) *refusal = refused;
    return call_status(err, common, subject, who, runs_in);
}

int kcobra_call_first(natsMsg **reply, natsConnection *connection, const kcobra_common *common,
                      const char *subject, const char *body, const char *who, const char *runs_in)
{
    kci_refusal refused;
    kc_err err = kci_call_first(reply, connection, subject, body, body != NULL ? strlen(body) : 0,
                                common->timeout_ms, &refused);
    return call_status(err, common, subject, who, runs_in);
}

int kcobra_call_message(natsMsg **reply, natsConnection *connection, const kcobra_common *common,
                        natsMsg *request, const char *who, const char *runs_in,
                        kci_refusal *refusal)
{
    kci_refusal refused;
    kc_err err = kci_call_message(reply, connection, request, common->timeout_ms, &refused);
    if (refusal != NULL) *refusal = refused;
    return call_status(err, common, natsMsg_GetSubject(request), who, runs_in);
}

/* A short command keeps nats.c's own reconnect policy (60 tries, 2 s
 * apart); a long-running one reconnects for ever (nats_connect). */
enum { NATS_RECONNECTS_DEFAULT = 60, NATS_RECONNECT_WAIT_MS_DEFAULT = 2000 };

static int nats_connect(natsConnection **out, const kcobra_common *common, bool long_running,
                        bool ordered, bool short_pings)
{
    kc_client_options settings;
    client_options_from(&settings, common);
    settings.reconnect_attempts_max = long_running ? -1 : NATS_RECONNECTS_DEFAULT;
    settings.reconnect_wait_ms =
        long_running ? KCOBRA_RECONNECT_WAIT_MS : NATS_RECONNECT_WAIT_MS_DEFAULT;
    const kci_connect_spec spec = {.options = &settings,
                                   .name = KCOBRA_CONNECTION_NAME,
                                   .ordered = ordered,
                                   .log_reconnects = long_running,
                                   .short_pings = short_pings};
    kc_err err = kci_connect(out, &spec);
    if (err == KC_OK) return KCOBRA_EXIT_OK;
    kcobra_error("%s", kc_last_error());
    nats_CloseAndWait(KCOBRA_TIMEOUT_MS_DEFAULT);
    return err == KC_ERR_INVALID_ARGUMENT ? KCOBRA_EXIT_USAGE : KCOBRA_EXIT_CONNECT;
}

int kcobra_nats_connect(natsConnection **out, const kcobra_common *common)
{
    return nats_connect(out, common, false, false, false);
}

int kcobra_nats_connect_long_running(natsConnection **out, const kcobra_common *common)
{
    return nats_connect(out, common, true, false, false);
}

int kcobra_nats_connect_lease(natsConnection **out, const kcobra_common *common)
{
    return nats_connect(out, common, true, false, true);
}

int kcobra_nats_connect_ordered(natsConnection **out, const kcobra_common *common)
{
    return nats_connect(out, common, true, true, false);
}

void kcobra_stop_signals_block(sigset_t *stop_signals)
{
    sigemptyset(stop_signals);
    sigaddset(stop_signals, SIGINT);
    sigaddset(stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int kcobra_stop_signal_wait(const sigset_t *stop_signals)
{
    int signal_number = 0;
    while (sigwait(stop_signals, &signal_number) != 0) {
    }
    return signal_number;
}

void kcobra_nats_finish(natsConnection *connection)
{
    kci_disconnect(&connection);
    nats_CloseAndWait(KCOBRA_TIMEOUT_MS_DEFAULT);
}
