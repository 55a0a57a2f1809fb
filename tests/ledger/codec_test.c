/* codec_test.c - the ledger's wire codec: hex, the canonical signing bytes,
 * Ed25519 sign/verify (any change to what is signed breaks the signature),
 * and the request validator (a table of inputs that must be refused). */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include "ledger/codec.h"
#include "ledger/wallet.h"

static void make_transfer(kci_ledger_transfer *transfer, const kci_wallet *wallet,
                          const uint8_t to[KCI_LEDGER_KEY_BYTES])
{
    memset(transfer, 0, sizeof *transfer);
    transfer->kind = KCI_LEDGER_KIND_TRANSFER;
    for (int index = 0; index < KCI_LEDGER_ID_BYTES; index++)
        transfer->id[index] = (uint8_t)index;
    transfer->id[6] = 0x70; /* a v7 */
    transfer->id[8] = 0x80;
    memcpy(transfer->from, wallet->public_key, KCI_LEDGER_KEY_BYTES);
    memcpy(transfer->to, to, KCI_LEDGER_KEY_BYTES);
    transfer->coin_count = 2;
    transfer->coins = calloc(2, sizeof *transfer->coins);
    assert_non_null(transfer->coins);
    transfer->coins[0].id[0] = 9;
    transfer->coins[0].denomination = 5;
    transfer->coins[1].id[0] = 3;
    transfer->coins[1].denomination = 7;
    assert_true(kci_ledger_coins_sort(transfer->coins, 2));
    transfer->amount = 12;
    transfer->time_ms = 1700000000000;
}

static void new_wallet(kci_wallet *wallet)
{
    assert_true(sodium_init() >= 0);
    crypto_sign_keypair(wallet->public_key, wallet->secret_key);
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t bytes[4] = {0x00, 0xab, 0x10, 0xff}, back[4];
    char text[9];
    kci_ledger_hex(text, bytes, 4);
    assert_string_equal(text, "00ab10ff");
    assert_true(kci_ledger_unhex(back, 4, "00AB10ff", 8));
    assert_memory_equal(bytes, back, 4);
    assert_false(kci_ledger_unhex(back, 4, "00ab10f", 7));
    assert_false(kci_ledger_unhex(back, 4, "00ab10fg", 8));
    assert_false(kci_ledger_unhex(back, 4, NULL, 0));
}

static void test_sign_verify_and_tamper(void **state)
{
    (void)state;
    kci_wallet alice, bob;
    new_wallet(&alice);
    new_wallet(&bob);
    kci_ledger_transfer transfer;
    make_transfer(&transfer, &alice, bob.public_key);
    assert_int_equal(kci_ledger_sign(&transfer, alice.secret_key), KC_OK);
    assert_true(kci_ledger_verify(&transfer, alice.public_key));
    assert_false(kci_ledger_verify(&transfer, bob.public_key)); /* the wrong key */
    /* Each signed field, changed, breaks it. */
    transfer.amount++;
    assert_false(kci_ledger_verify(&transfer, alice.public_key));
    transfer.amount--;
    transfer.to[0] ^= 1;
    assert_false(kci_ledger_verify(&transfer, alice.public_key));
    transfer.to[0] ^= 1;
    transfer.coins[1].denomination++;
    assert_false(kci_ledger_verify(&transfer, alice.public_key));
    transfer.coins[1].denomination--;
    transfer.time_ms++;
    assert_false(kci_ledger_verify(&transfer, alice.public_key));
    transfer.time_ms--;
    transfer.kind = KCI_LEDGER_KIND_EXCHANGE; /* the same bytes as another kind */
    assert_false(kci_ledger_verify(&transfer, alice.public_key));
    transfer.kind = KCI_LEDGER_KIND_TRANSFER;
    transfer.signature[10] ^= 0x40; /* a forged signature */
    assert_false(kci_ledger_verify(&transfer, alice.public_key));
    transfer.signature[10] ^= 0x40;
    assert_true(kci_ledger_verify(&transfer, alice.public_key));
    kci_ledger_transfer_free(&transfer);
}

static void test_signing_bytes_layout(void **state)
{
    (void)state;
    kci_wallet alice;
    new_wallet(&alice);
    kci_ledger_transfer transfer;
    make_transfer(&transfer, &alice, alice.public_key);
    size_t length = 0;
    uint8_t *bytes = kci_ledger_signing_bytes(&transfer, &length);
    assert_non_null(bytes);
    /* prefix+NUL, version, kind, id, from, to, count, 2 coins, amount, time, count */
    assert_int_equal(length, 17 + 2 + 16 + 32 + 32 + 4 + 2 * 24 + 8 + 8 + 4);
    assert_memory_equal(bytes, "kingcobra-ledger\0", 17);
    assert_int_equal(bytes[17], 1);
    assert_int_equal(bytes[18], KCI_LEDGER_KIND_TRANSFER);
    assert_int_equal(bytes[17 + 2 + 16 + 64 + 4], 3); /* sorted: coin 03.. first */
    free(bytes);
    kci_ledger_transfer_free(&transfer);
}

static char *transfer_text(const kci_wallet *from, const kci_wallet *to)
{
    kci_ledger_transfer transfer;
    make_transfer(&transfer, from, to->public_key);
    assert_int_equal(kci_ledger_sign(&transfer, from->secret_key), KC_OK);
    json_t *object = kci_ledger_transfer_json(&transfer);
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    kci_ledger_transfer_free(&transfer);
    return text;
}

static void test_parse_roundtrip(void **state)
{
    (void)state;
    kci_wallet alice, bob;
    new_wallet(&alice);
    new_wallet(&bob);
    char *text = transfer_text(&alice, &bob);
    kci_ledger_request request;
    char error[256];
    assert_int_equal(kci_ledger_request_parse(&request, KCI_LEDGER_OP_TRANSFER, text, strlen(text),
                                              error, sizeof error),
                     KC_OK);
    assert_int_equal(request.transfer_count, 1);
    kci_ledger_transfer *parsed = &request.transfers[0];
    assert_int_equal(parsed->amount, 12);
    assert_memory_equal(parsed->to, bob.public_key, 32);
    /* The wire carries ids only; the denominations come from the ledger. */
    parsed->coins[0].denomination = 7;
    parsed->coins[1].denomination = 5;
    assert_true(kci_ledger_verify(parsed, alice.public_key));
    kci_ledger_request_free(&request);
    free(text);
}

/* Inputs that must be refused, each with a word the error must contain. */
static void test_parse_refusals(void **state)
{
    (void)state;
    static const char ID[] = "\"id\":\"0190b6e2-5c1a-7d3e-9f00-1234567890ab\"";
    static const char COIN[] = "\"0190b6e2-5c1a-7d3e-9f00-1234567890ac\"";
    char from[65], to[65], signature[129];
    memset(from, 'a', 64);
    from[64] = '\0';
    memset(to, 'b', 64);
    to[64] = '\0';
    memset(signature, 'c', 128);
    signature[128] = '\0';
    char good[1024];
    snprintf(good, sizeof good,
             "{%s,\"from\":\"%s\",\"to\":\"%s\",\"coins\":[%s],\"amount\":5,\"time_ms\":1,"
             "\"signature\":\"%s\"}",
             ID, from, to, COIN, signature);
    kci_ledger_request request;
    char error[256];
    assert_int_equal(kci_ledger_request_parse(&request, KCI_LEDGER_OP_TRANSFER, good, strlen(good),
                                              error, sizeof error),
                     KC_OK);
    kci_ledger_request_free(&request);
    struct {
        const char *find, *replace, *word;
    } cases[] = {
        {"\"amount\":5", "\"amount\":0", "positive"},
        {"\"amount\":5", "\"amount\":-5", "positive"},
        {"\"amount\":5", "\"amount\":9007199254740992", "above"},
        {"\"amount\":5", "\"amount\":99999999999999999999999", "bad JSON"},
        {"\"amount\":5", "\"amount\":5.5", "integer"},
        {"\"amount\":5", "\"amount\":\"5\"", "integer"},
        {"\"amount\":5,", "", "missing"},
        {"\"time_ms\":1", "\"time_ms\":-1", "time"},
        {"0190b6e2-5c1a-7d3e-9f00-1234567890ab", "not-a-uuid", "UUID"},
        {"\"coins\":[", "\"coins\":[\"x\",", "coin 0"},
        {"\"coins\":[", "\"coins\":[\"0190b6e2-5c1a-7d3e-9f00-1234567890ac\",", "twice"},
        {"\"coins\":[\"0190b6e2-5c1a-7d3e-9f00-1234567890ac\"]", "\"coins\":[]", "non-empty"},
        {"\"signature\":\"c", "\"signature\":\"z", "signature"},
        {"\"to\":\"bbbb", "\"to\":\"bbb", "address"},
        {"{", "{\"extra\":1,", "unknown field"},
        {"{", "{\"amount\":6,", "bad JSON"}, /* a duplicate key */
        {"}", "", "bad JSON"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char bad[1200];
        const char *at = strstr(good, cases[index].find);
        assert_non_null(at);
        snprintf(bad, sizeof bad, "%.*s%s%s", (int)(at - good), good, cases[index].replace,
                 at + strlen(cases[index].find));
        kc_err err = kci_ledger_request_parse(&request, KCI_LEDGER_OP_TRANSFER, bad, strlen(bad),
                                              error, sizeof error);
        if (err == KC_OK || strstr(error, cases[index].word) == NULL)
            fail_msg("case %zu (%s): err %d, error \"%s\"", index, bad, err, error);
    }
    /* from == to */
    char same[1024];
    snprintf(same, sizeof same,
             "{%s,\"from\":\"%s\",\"to\":\"%s\",\"coins\":[%s],\"amount\":5,\"time_ms\":1,"
             "\"signature\":\"%s\"}",
             ID, from, from, COIN, signature);
    assert_int_not_equal(kci_ledger_request_parse(&request, KCI_LEDGER_OP_TRANSFER, same,
                                                  strlen(same), error, sizeof error),
                         KC_OK);
    assert_non_null(strstr(error, "same wallet"));
}

static void test_parse_other_operations(void **state)
{
    (void)state;
    kci_ledger_request request;
    char error[256];
    static const struct {
        kci_ledger_operation operation;
        const char *body;
        bool ok;
    } cases[] = {
        {KCI_LEDGER_OP_HISTORY, "{}", true},
        {KCI_LEDGER_OP_HISTORY, "{\"since_ms\":5,\"after\":\"12\",\"limit\":3}", true},
        {KCI_LEDGER_OP_HISTORY, "{\"after\":\"x\"}", false},
        {KCI_LEDGER_OP_HISTORY, "{\"limit\":0}", false},
        {KCI_LEDGER_OP_MINT, "{\"to\":\"aa\",\"denominations\":[1]}", false},
        {KCI_LEDGER_OP_MINT, "{\"denominations\":[1]}", false},
        {KCI_LEDGER_OP_MINT, "{\"grants\":[]}", false},
        {KCI_LEDGER_OP_MINT, "{\"grants\":[{\"to\":\"aa\",\"denominations\":[0]}]}", false},
        {KCI_LEDGER_OP_BALANCE, "", false},
        {KCI_LEDGER_OP_AUDIT, "", true},
        {KCI_LEDGER_OP_AUDIT, "[]", false},
        {KCI_LEDGER_OP_TRAIL, "{\"coin\":\"0190b6e2-5c1a-7d3e-9f00-1234567890ac\"}", true},
        {KCI_LEDGER_OP_TRAIL, "{\"coin\":5}", false},
        {KCI_LEDGER_OP_TRANSFER_BATCH, "{\"transfers\":[]}", false},
        {KCI_LEDGER_OP_PAYMENT, "{\"transfer\":\"0190b6e2-5c1a-7d3e-9f00-1234567890ac\"}", false},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        kc_err err = kci_ledger_request_parse(&request, cases[index].operation, cases[index].body,
                                              strlen(cases[index].body), error, sizeof error);
        if ((err == KC_OK) != cases[index].ok)
            fail_msg("case %zu (%s): err %d, error \"%s\"", index, cases[index].body, err, error);
        kci_ledger_request_free(&request);
    }
    assert_int_equal(kci_ledger_operation_from_subject("kc.ledger.transfer.batch"),
                     KCI_LEDGER_OP_TRANSFER_BATCH);
    assert_int_equal(kci_ledger_operation_from_subject("kc.ledger.nope"), KCI_LEDGER_OP_UNKNOWN);
    assert_int_equal(kci_ledger_operation_from_subject("kc.req.x"), KCI_LEDGER_OP_UNKNOWN);
}

static void test_wallet_file(void **state)
{
    (void)state;
    char directory[] = "/tmp/kc-wallet-test-XXXXXX";
    assert_non_null(mkdtemp(directory));
    char path[256], error[512];
    snprintf(path, sizeof path, "%s/sub/alice.key", directory);
    mode_t old = umask(0);
    kci_wallet created, loaded;
    assert_int_equal(kci_wallet_create(&created, path, error, sizeof error), KC_OK);
    umask(old);
    struct stat status;
    assert_int_equal(stat(path, &status), 0);
    assert_int_equal(status.st_mode & 0777, 0600); /* even with umask 0 */
    assert_int_equal(kci_wallet_create(&created, path, error, sizeof error), KC_ERR_EXISTS);
    assert_int_equal(kci_wallet_load(&loaded, path, error, sizeof error), KC_OK);
    assert_memory_equal(created.public_key, loaded.public_key, 32);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(kci_wallet_load(&loaded, path, error, sizeof error), KC_ERR_PERMISSION);
    assert_int_equal(chmod(path, 0600), 0);
    FILE *file = fopen(path, "r+");
    assert_non_null(file);
    fseek(file, 30, SEEK_SET);
    fputc('z', file);
    fclose(file);
    assert_int_equal(kci_wallet_load(&loaded, path, error, sizeof error), KC_ERR_CORRUPT);
    assert_false(kci_wallet_name_valid("../x"));
    assert_false(kci_wallet_name_valid(""));
    assert_true(kci_wallet_name_valid("alice-1_b"));
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", directory);
    rmdir(path);
    rmdir(directory);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_sign_verify_and_tamper),
        cmocka_unit_test(test_signing_bytes_layout),
        cmocka_unit_test(test_parse_roundtrip),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_other_operations),
        cmocka_unit_test(test_wallet_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
