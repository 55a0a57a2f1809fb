/* auth_test.c - authentication and permission decisions: tokens, users,
 * constant-time comparison results, bcrypt hash detection and verification,
 * the cache of verified credentials, the verifier's queue (hand-back,
 * cancellation, the pending limit), allow/deny for publish, subscription
 * cover rules for wildcards, and per-message deny at delivery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>
#include <poll.h>

#include "broker/auth.h"
#include "broker/auth_cache.h"
#include "broker/verifier.h"

static bool covers(const char *cover, const char *filter)
{
    return kci_filter_covers(cover, strlen(cover), filter, strlen(filter));
}

static void test_filter_covers(void **state)
{
    (void)state;
    assert_true(covers(">", "foo"));
    assert_true(covers(">", "foo.>"));
    assert_true(covers("foo.>", "foo.bar"));
    assert_true(covers("foo.>", "foo.*"));
    assert_true(covers("foo.>", "foo.>"));
    assert_true(covers("foo.*", "foo.bar"));
    assert_true(covers("foo.*", "foo.*"));
    assert_true(covers("foo.bar", "foo.bar"));
    assert_true(covers("*.bar", "foo.bar"));
    assert_false(covers("foo.>", "foo"));
    assert_false(covers("foo.*", "foo.>"));
    assert_false(covers("foo.*", "foo.bar.baz"));
    assert_false(covers("foo.bar", "foo.*"));
    assert_false(covers("foo.bar", "foo.baz"));
    assert_false(covers("foo.bar", "foo.bar.baz"));
    assert_false(covers("foo", ">"));
    assert_false(covers("foo.bar.baz", "foo.bar"));
}

static char *allow_foo[] = {"foo.>", "_INBOX.>"};
static char *deny_secret[] = {"foo.secret"};
static char *deny_sub[] = {"secret.>"};

static void test_publish_permissions(void **state)
{
    (void)state;
    kci_permissions permissions = {0};
    assert_true(kci_permissions_allow_publish(NULL, "anything", 8));
    permissions.publish = (kci_permission_list){.present = true,
                                                .allow = allow_foo,
                                                .allow_count = 2,
                                                .deny = deny_secret,
                                                .deny_count = 1};
    assert_true(kci_permissions_allow_publish(&permissions, "foo.bar", 7));
    assert_true(kci_permissions_allow_publish(&permissions, "_INBOX.x.y", 10));
    assert_false(kci_permissions_allow_publish(&permissions, "bar", 3));
    assert_false(kci_permissions_allow_publish(&permissions, "foo.secret", 10));
    /* no subscribe list: subscribing is free */
    assert_true(kci_permissions_allow_subscribe(&permissions, "bar.>", 5));
}

static void test_subscribe_permissions(void **state)
{
    (void)state;
    kci_permissions permissions = {0};
    permissions.subscribe =
        (kci_permission_list){.present = true, .deny = deny_sub, .deny_count = 1};
    assert_true(kci_permissions_allow_subscribe(&permissions, "foo", 3));
    assert_false(kci_permissions_allow_subscribe(&permissions, "secret.x", 8));
    assert_false(kci_permissions_allow_subscribe(&permissions, "secret.>", 8));
    /* overlaps but is not covered: allowed, and filtered per message */
    assert_true(kci_permissions_allow_subscribe(&permissions, ">", 1));
    assert_false(kci_permissions_deliver_allowed(&permissions, "secret.plans", 12));
    assert_true(kci_permissions_deliver_allowed(&permissions, "public.plans", 12));
}

static void test_token_and_users(void **state)
{
    (void)state;
    kci_options options;
    memset(&options, 0, sizeof options);
    const kci_user *user = NULL;
    kci_credentials none = {0};
    assert_false(kci_auth_required(&options));
    assert_true(kci_auth_check(&options, &none, &user));

    options.auth_token = "s3cret";
    assert_true(kci_auth_required(&options));
    kci_credentials good_token = {.auth_token = "s3cret"};
    kci_credentials bad_token = {.auth_token = "s3creT"};
    kci_credentials short_token = {.auth_token = "s3cre"};
    assert_true(kci_auth_check(&options, &good_token, &user));
    assert_false(kci_auth_check(&options, &bad_token, &user));
    assert_false(kci_auth_check(&options, &short_token, &user));
    assert_false(kci_auth_check(&options, &none, &user));

    kci_user users[2] = {{.user = "alice", .password = "a1"}, {.user = "bob", .password = "b2"}};
    options.auth_token = NULL;
    options.users = users;
    options.user_count = 2;
    kci_credentials bob = {.user = "bob", .password = "b2"};
    kci_credentials bob_wrong = {.user = "bob", .password = "a1"};
    kci_credentials nobody = {.user = "carol", .password = "b2"};
    assert_true(kci_auth_check(&options, &bob, &user));
    assert_ptr_equal(user, &users[1]);
    assert_false(kci_auth_check(&options, &bob_wrong, &user));
    assert_false(kci_auth_check(&options, &nobody, &user));
    assert_null(kci_permissions_for(&options, &users[0]));
    users[0].permissions.publish =
        (kci_permission_list){.present = true, .allow = allow_foo, .allow_count = 1};
    assert_ptr_equal(kci_permissions_for(&options, &users[0]), &users[0].permissions);
}

/* ---- bcrypt ------------------------------------------------------------ */

/* Openwall crypt_blowfish's published test vector, and one kcobrad's tests
 * made with libxcrypt (password "wonder", cost 4). */
static const char OPENWALL_HASH[] = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
static const char WONDER_HASH[] = "$2a$04$tsx.7UzPdwdy1PFxn/4SV.nu2CBxIV/Cyo5gAocz.UxR//GeKSVpW";

/* A fresh hash of password with the given prefix ("$2b$") at cost 4. */
static void make_hash(const char *prefix, const char *password, char *hash, size_t hash_size)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn(prefix, 4, NULL, 0, setting, sizeof setting));
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    const char *computed = crypt_rn(password, setting, &data, (int)sizeof data);
    assert_non_null(computed);
    assert_true(strlen(computed) < hash_size);
    strcpy(hash, computed);
}

static void test_bcrypt_detection(void **state)
{
    (void)state;
    static const char *const hashes[] = {
        "$2a$10$abc", "$2b$04$x", "$2x$12$", "$2y$31$whatever", OPENWALL_HASH,
    };
    static const char *const not_hashes[] = {
        "",          "wonder",    "$2a$",      "$2a$1$abc",    "$2a$1x$abc",       "$2c$10$abc",
        "$2a$10abc", "$2$10$abc", "2a$10$abc", "$1$salt$hash", "$5$rounds=1000$x", "$2A$10$abc",
        "$2a$10",
    };
    for (size_t i = 0; i < sizeof hashes / sizeof hashes[0]; i++)
        assert_true(kci_secret_is_bcrypt(hashes[i]));
    for (size_t i = 0; i < sizeof not_hashes / sizeof not_hashes[0]; i++)
        assert_false(kci_secret_is_bcrypt(not_hashes[i]));
    assert_false(kci_secret_is_bcrypt(NULL));
}

static void test_bcrypt_verify(void **state)
{
    (void)state;
    assert_true(kci_bcrypt_verify("U*U", OPENWALL_HASH));
    assert_false(kci_bcrypt_verify("U*V", OPENWALL_HASH));
    assert_true(kci_bcrypt_verify("wonder", WONDER_HASH));
    assert_false(kci_bcrypt_verify("wonder ", WONDER_HASH));
    assert_false(kci_bcrypt_verify("", WONDER_HASH));
    assert_false(kci_bcrypt_verify(WONDER_HASH, WONDER_HASH)); /* the hash is no password */
    assert_false(kci_bcrypt_verify(NULL, WONDER_HASH));
    static const char *const prefixes[] = {"$2a$", "$2b$", "$2y$"};
    for (size_t i = 0; i < 3; i++) {
        char hash[CRYPT_OUTPUT_SIZE];
        make_hash(prefixes[i], "sesame", hash, sizeof hash);
        assert_memory_equal(hash, prefixes[i], 4);
        assert_true(kci_bcrypt_verify("sesame", hash));
        assert_false(kci_bcrypt_verify("Sesame", hash));
    }
    /* Malformed hashes verify nothing, not even what crypt might accept. */
    char broken[sizeof WONDER_HASH + 1];
    memcpy(broken, WONDER_HASH, sizeof WONDER_HASH);
    broken[sizeof WONDER_HASH - 2] = '\0'; /* one character short */
    assert_false(kci_bcrypt_verify("wonder", broken));
    memcpy(broken, WONDER_HASH, sizeof WONDER_HASH - 1);
    broken[sizeof WONDER_HASH - 1] = 'x'; /* one character too many */
    broken[sizeof WONDER_HASH] = '\0';
    assert_false(kci_bcrypt_verify("wonder", broken));
    assert_false(
        kci_bcrypt_verify("wonder", "$2a$03$tsx.7UzPdwdy1PFxn/4SV.nu2CBxIV/Cyo5gAocz.UxR//GeKSV"));
    assert_false(kci_bcrypt_verify("wonder", "$2a$04$short"));
    assert_false(kci_bcrypt_verify("wonder", "wonder")); /* plain text is not a hash */
}

static void test_bcrypt_decisions(void **state)
{
    (void)state;
    kci_options options;
    memset(&options, 0, sizeof options);
    kci_user users[2] = {{.user = "alice", .password = (char *)WONDER_HASH},
                         {.user = "bob", .password = "plain"}};
    options.users = users;
    options.user_count = 2;
    kci_credentials alice = {.user = "alice", .password = "wonder"};
    kci_auth_decision decision = kci_auth_decide(&options, &alice);
    assert_int_equal(decision.verdict, KCI_AUTH_HASH_NEEDED);
    assert_ptr_equal(decision.user, &users[0]);
    assert_string_equal(decision.hash, WONDER_HASH);
    assert_string_equal(decision.secret, "wonder");
    kci_credentials alice_silent = {.user = "alice"};
    decision = kci_auth_decide(&options, &alice_silent);
    assert_int_equal(decision.verdict, KCI_AUTH_HASH_NEEDED);
    assert_string_equal(decision.secret, ""); /* as nats-server: no password is "" */
    kci_credentials bob = {.user = "bob", .password = "plain"};
    assert_int_equal(kci_auth_decide(&options, &bob).verdict, KCI_AUTH_ACCEPTED);
    kci_credentials mallory = {.user = "mallory", .password = "wonder"};
    assert_int_equal(kci_auth_decide(&options, &mallory).verdict, KCI_AUTH_REFUSED);

    const kci_user *user = NULL;
    assert_true(kci_auth_check(&options, &alice, &user));
    assert_ptr_equal(user, &users[0]);
    kci_credentials alice_hash = {.user = "alice", .password = WONDER_HASH};
    assert_false(kci_auth_check(&options, &alice_hash, &user));
    assert_null(user);

    options.users = NULL;
    options.user_count = 0;
    options.auth_token = (char *)WONDER_HASH;
    kci_credentials token = {.auth_token = "wonder"};
    decision = kci_auth_decide(&options, &token);
    assert_int_equal(decision.verdict, KCI_AUTH_HASH_NEEDED);
    assert_null(decision.user);
    assert_true(kci_auth_check(&options, &token, &user));
    kci_credentials token_hash = {.auth_token = WONDER_HASH};
    assert_false(kci_auth_check(&options, &token_hash, &user));
}

/* ---- the cache of verified credentials ---------------------------------- */

static void test_auth_cache(void **state)
{
    (void)state;
    static kci_auth_cache cache; /* 10 KiB: not on the stack */
    kci_auth_cache_init(&cache);
    assert_false(kci_auth_cache_lookup(&cache, "alice", "wonder", WONDER_HASH));
    kci_auth_cache_insert(&cache, "alice", "wonder", WONDER_HASH);
    assert_true(kci_auth_cache_lookup(&cache, "alice", "wonder", WONDER_HASH));
    /* Every part of the key counts, including token (NULL) against user. */
    assert_false(kci_auth_cache_lookup(&cache, "alice", "wonder!", WONDER_HASH));
    assert_false(kci_auth_cache_lookup(&cache, "alicf", "wonder", WONDER_HASH));
    assert_false(kci_auth_cache_lookup(&cache, "alice", "wonder", OPENWALL_HASH));
    assert_false(kci_auth_cache_lookup(&cache, NULL, "wonder", WONDER_HASH));
    assert_false(kci_auth_cache_lookup(&cache, "alicewonder", "", WONDER_HASH));
    kci_auth_cache_insert(&cache, NULL, "wonder", WONDER_HASH);
    assert_true(kci_auth_cache_lookup(&cache, NULL, "wonder", WONDER_HASH));
    kci_auth_cache_clear(&cache);
    assert_false(kci_auth_cache_lookup(&cache, "alice", "wonder", WONDER_HASH));
    assert_false(kci_auth_cache_lookup(&cache, NULL, "wonder", WONDER_HASH));

    /* Bounded: a full table drops the least recently used entry. */
    char user[32];
    for (int i = 0; i < KCI_AUTH_CACHE_ENTRIES; i++) {
        snprintf(user, sizeof user, "user%d", i);
        kci_auth_cache_insert(&cache, user, "pw", WONDER_HASH);
    }
    assert_true(kci_auth_cache_lookup(&cache, "user0", "pw", WONDER_HASH)); /* now recent */
    kci_auth_cache_insert(&cache, "newcomer", "pw", WONDER_HASH);
    assert_true(kci_auth_cache_lookup(&cache, "newcomer", "pw", WONDER_HASH));
    assert_true(kci_auth_cache_lookup(&cache, "user0", "pw", WONDER_HASH));
    assert_false(kci_auth_cache_lookup(&cache, "user1", "pw", WONDER_HASH)); /* evicted */
    assert_true(kci_auth_cache_lookup(&cache, "user2", "pw", WONDER_HASH));
}

/* ---- the verifier ------------------------------------------------------------ */

typedef struct verified_log {
    int count;
    int accepted_count;
    struct kci_client *clients[KCI_VERIFIER_PENDING_MAX];
} verified_log;

static void record_verified(void *context, kci_verify_job *job)
{
    verified_log *log = context;
    assert_non_null(job->client);
    assert_true(log->count < KCI_VERIFIER_PENDING_MAX);
    log->clients[log->count++] = job->client;
    log->accepted_count += job->accepted;
}

/* Waits for the eventfd and hands back until `pending` jobs are left. */
static void drain_until(kci_verifier *verifier, uint32_t pending)
{
    for (int round = 0; round < 10000 && kci_verifier_pending_count(verifier) > pending; round++) {
        struct pollfd ready = {.fd = kci_verifier_fd(verifier), .events = POLLIN};
        assert_true(poll(&ready, 1, 10000) == 1);
        kci_verifier_on_ready(verifier);
    }
    assert_int_equal(kci_verifier_pending_count(verifier), pending);
}

static kc_err submit(kci_verifier *verifier, struct kci_client *client, const char *password,
                     kci_verify_job **job)
{
    static kci_user alice = {.user = "alice", .password = (char *)WONDER_HASH};
    kci_credentials given = {.user = "alice", .password = password};
    kci_auth_decision decision = {
        .verdict = KCI_AUTH_HASH_NEEDED, .user = &alice, .hash = WONDER_HASH, .secret = password};
    return kci_verifier_submit(verifier, client, &given, &decision, job);
}

static void test_verifier(void **state)
{
    (void)state;
    static verified_log log;
    memset(&log, 0, sizeof log);
    kci_verifier *verifier = NULL;
    assert_int_equal(kci_verifier_create(&verifier, record_verified, &log), KC_OK);
    assert_int_equal(kci_verifier_source(verifier)->kind, KCI_SOURCE_VERIFIER);
    /* Stand-ins for clients: the verifier never looks inside them. */
    static char clients[KCI_VERIFIER_PENDING_MAX + 1];
    kci_verify_job *jobs[KCI_VERIFIER_PENDING_MAX + 1];
    assert_int_equal(submit(verifier, (struct kci_client *)&clients[0], "wonder", &jobs[0]), KC_OK);
    assert_int_equal(submit(verifier, (struct kci_client *)&clients[1], "wrong", &jobs[1]), KC_OK);
    assert_int_equal(submit(verifier, (struct kci_client *)&clients[2], "wonder", &jobs[2]), KC_OK);
    kci_verifier_cancel(jobs[2]); /* its client went away: no call back */
    drain_until(verifier, 0);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.accepted_count, 1);
    kci_auth_cache *cache = kci_verifier_cache(verifier);
    assert_true(kci_auth_cache_lookup(cache, "alice", "wonder", WONDER_HASH));
    assert_false(kci_auth_cache_lookup(cache, "alice", "wrong", WONDER_HASH));

    /* The limit counts jobs until they are handed back, so it is exact. */
    memset(&log, 0, sizeof log);
    for (int i = 0; i < KCI_VERIFIER_PENDING_MAX; i++)
        assert_int_equal(submit(verifier, (struct kci_client *)&clients[i], "wonder", &jobs[i]),
                         KC_OK);
    assert_int_equal(kci_verifier_pending_count(verifier), KCI_VERIFIER_PENDING_MAX);
    kci_verify_job *refused = NULL;
    assert_int_equal(submit(verifier, (struct kci_client *)&clients[KCI_VERIFIER_PENDING_MAX],
                            "wonder", &refused),
                     KC_ERR_LIMIT);
    assert_null(refused);
    drain_until(verifier, 0);
    assert_int_equal(log.accepted_count, KCI_VERIFIER_PENDING_MAX);
    kci_verifier_stats stats;
    kci_verifier_get_stats(verifier, &stats);
    assert_int_equal(stats.busy_refusal_count, 1);
    assert_int_equal(stats.pending_count, 0);
    /* The cancelled job ran or was skipped, depending on when it was cancelled. */
    assert_true(stats.verification_count >= 2 + KCI_VERIFIER_PENDING_MAX);
    assert_true(stats.verification_count <= 3 + KCI_VERIFIER_PENDING_MAX);
    assert_int_equal(submit(verifier, (struct kci_client *)&clients[0], "wonder", &jobs[0]), KC_OK);
    /* Destroyed with a job in flight: joined and freed (the sanitizer checks). */
    kci_verifier_destroy(verifier);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_covers),
        cmocka_unit_test(test_publish_permissions),
        cmocka_unit_test(test_subscribe_permissions),
        cmocka_unit_test(test_token_and_users),
        cmocka_unit_test(test_bcrypt_detection),
        cmocka_unit_test(test_bcrypt_verify),
        cmocka_unit_test(test_bcrypt_decisions),
        cmocka_unit_test(test_auth_cache),
        cmocka_unit_test(test_verifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
