/* sublist.c - the subscription trie and its match cache (see sublist.h).
 *
 * Trie: one level per token position. A level maps literal tokens to child
 * nodes with an open-addressing table (linear probing, backward-shift delete,
 * so no tombstones) and keeps its '*' and '>' children in their own pointers,
 * as nats-server does, so a match follows at most three branches per token.
 * A node holds its plain subscriptions in a pointer set and its queue
 * subscriptions in one pointer set per queue name. Removing the last
 * subscription of a node frees the node and every level and ancestor that
 * becomes empty, so churn does not leak; tables shrink as they empty.
 *
 * Match: on a miss the subject is split into tokens, the trie is walked
 * (recursing into '*' branches, depth at most KCI_SUBJECT_TOKENS_MAX)
 * collecting matching nodes, and the result is copied into one allocation:
 * plain pointers, groups merged by queue name across nodes, member pointers,
 * group names and the subject as cache key. Results are never changed after
 * they are built. A result that leaves the cache (invalidated or evicted) is
 * parked on a retired list and freed only by kci_sublist_collect().
 *
 * Cache: a table keyed by a seeded hash of the subject (the seed is random
 * per sublist, so clients cannot aim collisions at it), with the entries also
 * in a dense array for scanning and for CLOCK eviction: a hit sets a
 * reference bit, the hand clears bits and evicts the first entry without one.
 * The hit path is hash, probe, compare, with no allocation. Its memory is
 * allocated once, by kci_sublist_create.
 *
 * Invalidation: an insert or remove retires only the cached results whose
 * subject the changed filter matches. A literal filter can affect only the
 * entry for exactly that subject (one lookup); a wildcard filter scans the
 * entries (at most cache_entries_max calls of kci_subject_matches, which stop
 * at the first differing token). We chose this over clearing the whole cache
 * because the broker's steady state is many matches and few subscription
 * changes, and the changes are mostly private reply inboxes: clearing every
 * hot subject whenever a client connects or subscribes to an inbox would turn
 * each change into a burst of misses for everyone. The cost is one scan per
 * wildcard change.
 *
 * Limits: at most SUBLIST_SUBSCRIPTIONS_MAX subscriptions (KC_ERR_LIMIT);
 * cache_entries_max at most SUBLIST_CACHE_ENTRIES_LIMIT (0 turns the cache
 * off: every match builds a result and retires it at once); queue names at
 * most SUBLIST_QUEUE_BYTES_MAX bytes. sub must not be NULL. The same sub
 * inserted under two filters that both match a subject appears twice in its
 * result (no dedupe; the broker keeps one sub per SUB). The groups of one node
 * are found through a table by name (a SUB or UNSUB costs the same with
 * 100,000 queue names on its subject as with one), and a miss merges groups
 * across nodes by a scan when there are at most GROUP_MERGE_SCAN_MAX of them,
 * else through a scratch table by name, so a miss is linear in what it
 * returns. Retired results are bounded only by the number of matches made
 * between two collects. The match scratch arrays keep the size of the largest
 * result seen. Single-threaded. */
#include "broker/sublist.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/subject.h"
#include "common/hash.h"

enum {
    SUBLIST_SUBSCRIPTIONS_MAX = 1 << 26,
    SUBLIST_CACHE_ENTRIES_LIMIT = 1 << 20,
    SUBLIST_QUEUE_BYTES_MAX = KCI_SUBJECT_BYTES_MAX,
    TABLE_SLOTS_MIN = 8,      /* smallest table that holds anything */
    TABLE_SHRINK_RATIO = 8,   /* halve a table when under 1/8 of it is used */
    SCRATCH_ITEMS_MIN = 64,   /* first size of each match scratch array */
    GROUP_MERGE_SCAN_MAX = 8, /* up to this many groups a match merges by scan */
};

#define CACHE_INDEX_NONE UINT32_MAX

/* ---------------------------------------------------------------------------
 * Types */

typedef struct table_slot {
    uint64_t hash;
    void *item; /* NULL marks an empty slot */
} table_slot;

/* Open addressing with linear probing; the load stays at most one half. */
typedef struct sublist_table {
    table_slot *slots;
    uint32_t slot_count; /* 0 or a power of two */
    uint32_t count;
} sublist_table;

typedef struct sublist_group {
    sublist_table members; /* a pointer set */
    uint64_t name_hash;    /* seeded, as the sublist's other hashes */
    uint32_t node_index;   /* in its node's groups */
    uint32_t name_len;
    char name[];
} sublist_group;

typedef struct sublist_level sublist_level;

typedef struct sublist_node {
    sublist_level *next; /* NULL, or a level that is not empty */
    sublist_table plain; /* a pointer set */
    sublist_group **groups;
    uint32_t group_count;
    uint32_t group_capacity;
    sublist_table group_index; /* name hash -> group */
    uint64_t token_hash;
    uint32_t token_len;
    char token[];
} sublist_node;

struct sublist_level {
    sublist_table literals; /* token -> sublist_node */
    sublist_node *pwc;
    sublist_node *fwc;
};

typedef struct sublist_result {
    kci_match match; /* what callers see */
    struct sublist_result *retired_next;
    const char *key; /* the subject, stored after the arrays */
    uint64_t key_hash;
    uint32_t key_len;
    uint32_t cache_index;        /* in cache_entries, or CACHE_INDEX_NONE */
    uint32_t subscription_count; /* plain and group members together */
    bool referenced;             /* the CLOCK bit */
} sublist_result;

typedef enum token_kind { TOKEN_LITERAL, TOKEN_PWC, TOKEN_FWC } token_kind;

typedef struct sublist_token {
    const char *bytes;
    uint32_t len;
    token_kind kind;
    uint64_t hash;
} sublist_token;

typedef struct scratch_group {
    const char *name; /* points into a node while a result is built */
    uint32_t name_len;
    uint32_t member_count;
    uint32_t member_offset;
    uint32_t member_fill;
} scratch_group;

typedef struct scratch_member {
    uint32_t group_index;
    void *sub;
} scratch_member;

struct kci_sublist {
    sublist_level root; /* never freed before destroy */
    uint64_t hash_seed;
    uint64_t subscription_count;
    uint64_t node_count;
    /* The cache: cache.count == cache_entry_count <= cache_entries_max. */
    sublist_table cache;
    sublist_result **cache_entries;
    uint32_t cache_entry_count;
    uint32_t cache_entries_max;
    uint32_t cache_hand;
    sublist_result *retired_head;
    /* Scratch reused by every call, so steady-state misses allocate only the
     * result itself. */
    sublist_token tokens[KCI_SUBJECT_TOKENS_MAX];
    uint32_t token_count;
    sublist_level *path_levels[KCI_SUBJECT_TOKENS_MAX];
    sublist_node *path_nodes[KCI_SUBJECT_TOKENS_MAX];
    const sublist_node **matched;
    uint32_t matched_count, matched_capacity;
    void **plain_scratch;
    uint32_t plain_count, plain_capacity;
    scratch_member *members_scratch;
    uint32_t member_count, member_capacity;
    scratch_group *groups_scratch;
    uint32_t group_count, group_capacity;
    /* Merging many groups by name: groups_scratch index + 1 by name hash,
     * 0 empty; group_slot_count is 0 while few groups are merged by scan. */
    uint32_t *group_slots;
    uint32_t group_slot_count, group_slot_capacity;
    /* Stats. */
    uint64_t insert_count, remove_count, match_count, cache_hit_count, fanout_total;
    uint32_t fanout_max;
};

/* ---------------------------------------------------------------------------
 * Tables and pointer sets */

static uint64_t pointer_hash(const void *pointer)
{
    uint64_t mixed = (uint64_t)(uintptr_t)pointer;
    mixed ^= mixed >> 33;
    mixed *= UINT64_C(0x9e3779b97f4a7c15);
    return mixed ^ (mixed >> 29);
}

/* Index of the slot holding item, or of the empty slot ending its run. */
static uint32_t table_find_item(const sublist_table *table, uint64_t hash, const void *item)
{
    assert(table->slot_count > 0 && table->count < table->slot_count);
    uint32_t mask = table->slot_count - 1;
    uint32_t index = (uint32_t)hash & mask;
    for (uint32_t step = 0; step < table->slot_count; step++) {
        const table_slot *slot = &table->slots[index];
        if (slot->item == NULL || slot->item == item) return index;
        index = (index + 1) & mask;
    }
    assert(false && "a table at most half full has an empty slot");
    return index;
}

static void table_place(sublist_table *table, uint64_t hash, void *item)
{
    assert(item != NULL && (uint64_t)(table->count + 1) * 2 <= table->slot_count);
    uint32_t index = table_find_item(table, hash, item);
    assert(table->slots[index].item == NULL);
    table->slots[index] = (table_slot){hash, item};
    table->count++;
}

static kc_err table_resize(sublist_table *table, uint32_t slot_count)
{
    assert(slot_count >= TABLE_SLOTS_MIN && (slot_count & (slot_count - 1)) == 0);
    assert((uint64_t)table->count * 2 <= slot_count);
    table_slot *slots = calloc(slot_count, sizeof *slots);
    if (slots == NULL) return KC_ERR_NOMEM;
    sublist_table resized = {slots, slot_count, 0};
    for (uint32_t index = 0; index < table->slot_count; index++) {
        const table_slot *slot = &table->slots[index];
        if (slot->item != NULL) table_place(&resized, slot->hash, slot->item);
    }
    assert(resized.count == table->count);
    free(table->slots);
    *table = resized;
    return KC_OK;
}

/* Makes room for one more item. */
static kc_err table_reserve(sublist_table *table)
{
    if ((uint64_t)(table->count + 1) * 2 <= table->slot_count) return KC_OK;
    uint32_t slot_count = table->slot_count == 0 ? TABLE_SLOTS_MIN : table->slot_count * 2;
    return table_resize(table, slot_count);
}

/* Backward-shift delete: pull later entries of the run into the hole unless
 * that would move one before its home slot. */
static void table_delete_at(sublist_table *table, uint32_t hole)
{
    assert(hole < table->slot_count && table->slots[hole].item != NULL);
    uint32_t mask = table->slot_count - 1;
    uint32_t index = (hole + 1) & mask;
    for (uint32_t step = 0; step < table->slot_count; step++) {
        const table_slot *slot = &table->slots[index];
        if (slot->item == NULL) break;
        uint32_t home = (uint32_t)slot->hash & mask;
        if (((index - home) & mask) >= ((index - hole) & mask)) {
            table->slots[hole] = *slot;
            hole = index;
        }
        index = (index + 1) & mask;
    }
    table->slots[hole] = (table_slot){0, NULL};
    table->count--;
}

/* Frees the slots of an empty table or halves a sparse one. */
static void table_shrink(sublist_table *table)
{
    if (table->count == 0) {
        free(table->slots);
        *table = (sublist_table){NULL, 0, 0};
        return;
    }
    if (table->slot_count <= TABLE_SLOTS_MIN) return;
    if ((uint64_t)table->count * TABLE_SHRINK_RATIO >= table->slot_count) return;
    (void)table_resize(table, table->slot_count / 2); /* if it fails, keep the larger table */
}

static kc_err pointer_set_add(sublist_table *set, void *pointer)
{
    uint64_t hash = pointer_hash(pointer);
    if (set->slot_count > 0 && set->slots[table_find_item(set, hash, pointer)].item == pointer)
        return KC_ERR_EXISTS;
    kc_err err = table_reserve(set);
    if (err != KC_OK) return err;
    table_place(set, hash, pointer);
    return KC_OK;
}

static bool pointer_set_remove(sublist_table *set, const void *pointer)
{
    if (set->slot_count == 0) return false;
    uint32_t index = table_find_item(set, pointer_hash(pointer), pointer);
    if (set->slots[index].item != pointer) return false;
    table_delete_at(set, index);
    table_shrink(set);
    return true;
}

/* Grows a scratch array to hold needed items; NULL (array intact) on failure. */
static void *scratch_grow(void *array, uint32_t *capacity, uint64_t needed, size_t item_size)
{
    if (needed <= *capacity) return array;
    uint64_t grown = *capacity < SCRATCH_ITEMS_MIN ? SCRATCH_ITEMS_MIN : *capacity;
    while (grown < needed)
        grown *= 2;
    if (grown > UINT32_MAX || grown > SIZE_MAX / item_size) return NULL;
    void *bigger = realloc(array, (size_t)grown * item_size);
    if (bigger != NULL) *capacity = (uint32_t)grown;
    return bigger;
}

/* ---------------------------------------------------------------------------
 * Nodes and levels */

static bool level_is_empty(const sublist_level *level)
{
    return level->literals.count == 0 && level->pwc == NULL && level->fwc == NULL;
}

static bool node_is_empty(const sublist_node *node)
{
    return node->plain.count == 0 && node->group_count == 0 && node->next == NULL;
}

static sublist_node *level_find(const sublist_level *level, const sublist_token *token)
{
    const sublist_table *table = &level->literals;
    if (table->slot_count == 0) return NULL;
    uint32_t mask = table->slot_count - 1;
    uint32_t index = (uint32_t)token->hash & mask;
    for (uint32_t step = 0; step < table->slot_count; step++) {
        const table_slot *slot = &table->slots[index];
        if (slot->item == NULL) return NULL;
        if (slot->hash == token->hash) {
            sublist_node *node = slot->item;
            if (node->token_len == token->len && memcmp(node->token, token->bytes, token->len) == 0)
                return node;
        }
        index = (index + 1) & mask;
    }
    return NULL;
}

static sublist_node *level_child(const sublist_level *level, const sublist_token *token)
{
    switch (token->kind) {
    case TOKEN_PWC: return level->pwc;
    case TOKEN_FWC: return level->fwc;
    case TOKEN_LITERAL: break;
    }
    return level_find(level, token);
}

/* Creates the child for token and links it into level. */
static kc_err level_attach(kci_sublist *sublist, sublist_level *level, const sublist_token *token,
                           sublist_node **out)
{
    assert(level_child(level, token) == NULL);
    if (token->kind == TOKEN_LITERAL && table_reserve(&level->literals) != KC_OK)
        return KC_ERR_NOMEM;
    sublist_node *node = calloc(1, sizeof *node + token->len);
    if (node == NULL) return KC_ERR_NOMEM;
    node->token_hash = token->hash;
    node->token_len = token->len;
    memcpy(node->token, token->bytes, token->len);
    switch (token->kind) {
    case TOKEN_PWC: level->pwc = node; break;
    case TOKEN_FWC: level->fwc = node; break;
    case TOKEN_LITERAL: table_place(&level->literals, node->token_hash, node); break;
    }
    sublist->node_count++;
    *out = node;
    return KC_OK;
}

/* Unlinks an empty node from its level and frees it. */
static void level_detach(kci_sublist *sublist, sublist_level *level, sublist_node *node)
{
    assert(node_is_empty(node) && sublist->node_count > 0);
    if (level->pwc == node) {
        level->pwc = NULL;
    } else if (level->fwc == node) {
        level->fwc = NULL;
    } else {
        uint32_t index = table_find_item(&level->literals, node->token_hash, node);
        assert(level->literals.slots[index].item == node);
        table_delete_at(&level->literals, index);
        table_shrink(&level->literals);
    }
    free(node->plain.slots);
    free(node->groups);
    free(node);
    sublist->node_count--;
}

static void node_destroy(sublist_node *node);

/* Frees everything under level (not level itself). Recursion depth is
 * bounded by KCI_SUBJECT_TOKENS_MAX, the deepest a trie can be. */
static void level_destroy_children(sublist_level *level)
{
    for (uint32_t index = 0; index < level->literals.slot_count; index++) {
        sublist_node *node = level->literals.slots[index].item;
        if (node != NULL) node_destroy(node);
    }
    free(level->literals.slots);
    if (level->pwc != NULL) node_destroy(level->pwc);
    if (level->fwc != NULL) node_destroy(level->fwc);
    *level = (sublist_level){{NULL, 0, 0}, NULL, NULL};
}

static void node_destroy(sublist_node *node)
{
    if (node->next != NULL) {
        level_destroy_children(node->next);
        free(node->next);
    }
    for (uint32_t index = 0; index < node->group_count; index++) {
        free(node->groups[index]->members.slots);
        free(node->groups[index]);
    }
    free(node->groups);
    free(node->group_index.slots);
    free(node->plain.slots);
    free(node);
}

/* By name through the node's index: thousands of queue names on one subject
 * must not make every SUB and UNSUB scan them. */
static sublist_group *node_find_group(const sublist_node *node, const char *queue,
                                      uint32_t queue_len, uint64_t queue_hash, uint32_t *slot_out)
{
    const sublist_table *index = &node->group_index;
    if (index->slot_count == 0) return NULL;
    uint32_t mask = index->slot_count - 1;
    uint32_t at = (uint32_t)queue_hash & mask;
    for (uint32_t step = 0; step < index->slot_count; step++) {
        const table_slot *slot = &index->slots[at];
        sublist_group *group = slot->item;
        if (group == NULL) return NULL;
        if (slot->hash == queue_hash && group->name_len == queue_len &&
            memcmp(group->name, queue, queue_len) == 0) {
            *slot_out = at;
            return group;
        }
        at = (at + 1) & mask;
    }
    return NULL;
}

static kc_err node_add_group(sublist_node *node, sublist_group *group)
{
    sublist_group **groups = scratch_grow(node->groups, &node->group_capacity,
                                          (uint64_t)node->group_count + 1, sizeof *node->groups);
    if (groups == NULL) return KC_ERR_NOMEM;
    node->groups = groups;
    kc_err err = table_reserve(&node->group_index);
    if (err != KC_OK) return err;
    table_place(&node->group_index, group->name_hash, group);
    group->node_index = node->group_count;
    node->groups[node->group_count++] = group;
    return KC_OK;
}

static kc_err node_add_queue_sub(sublist_node *node, const char *queue, uint32_t queue_len,
                                 uint64_t queue_hash, void *sub)
{
    uint32_t slot = 0;
    sublist_group *group = node_find_group(node, queue, queue_len, queue_hash, &slot);
    if (group != NULL) return pointer_set_add(&group->members, sub);
    group = calloc(1, sizeof *group + queue_len);
    if (group == NULL) return KC_ERR_NOMEM;
    group->name_hash = queue_hash;
    group->name_len = queue_len;
    memcpy(group->name, queue, queue_len);
    kc_err err = pointer_set_add(&group->members, sub);
    if (err == KC_OK) err = node_add_group(node, group);
    if (err != KC_OK) {
        free(group->members.slots);
        free(group);
    }
    return err;
}

static kc_err node_add_sub(sublist_node *node, const char *queue, uint32_t queue_len,
                           uint64_t queue_hash, void *sub)
{
    if (queue_len == 0) return pointer_set_add(&node->plain, sub);
    return node_add_queue_sub(node, queue, queue_len, queue_hash, sub);
}

/* Swaps the last group into its place in the array, so removal is O(1). */
static void node_drop_group(sublist_node *node, sublist_group *group, uint32_t slot)
{
    table_delete_at(&node->group_index, slot);
    table_shrink(&node->group_index);
    sublist_group *last = node->groups[--node->group_count];
    node->groups[group->node_index] = last;
    last->node_index = group->node_index;
    free(group);
    if (node->group_count == 0) {
        free(node->groups);
        node->groups = NULL;
        node->group_capacity = 0;
    }
}

static kc_err node_remove_sub(sublist_node *node, const char *queue, uint32_t queue_len,
                              uint64_t queue_hash, const void *sub)
{
    if (queue_len == 0) return pointer_set_remove(&node->plain, sub) ? KC_OK : KC_ERR_NOT_FOUND;
    uint32_t slot = 0;
    sublist_group *group = node_find_group(node, queue, queue_len, queue_hash, &slot);
    if (group == NULL || !pointer_set_remove(&group->members, sub)) return KC_ERR_NOT_FOUND;
    if (group->members.count > 0) return KC_OK;
    assert(group->members.slots == NULL);
    node_drop_group(node, group, slot);
    return KC_OK;
}

/* ---------------------------------------------------------------------------
 * Paths through the trie */

/* Splits a subject the caller validated into sublist->tokens. */
static void subject_split(kci_sublist *sublist, const char *subject, size_t subject_len)
{
    assert(subject_len > 0 && subject_len <= KCI_SUBJECT_BYTES_MAX);
    const char *cursor = subject;
    const char *end = subject + subject_len;
    uint32_t count = 0;
    while (count < KCI_SUBJECT_TOKENS_MAX) {
        const char *dot = memchr(cursor, '.', (size_t)(end - cursor));
        const char *token_end = dot != NULL ? dot : end;
        sublist_token *token = &sublist->tokens[count++];
        token->bytes = cursor;
        token->len = (uint32_t)(token_end - cursor);
        token->kind = TOKEN_LITERAL;
        if (token->len == 1 && cursor[0] == '*') token->kind = TOKEN_PWC;
        if (token->len == 1 && cursor[0] == '>') token->kind = TOKEN_FWC;
        token->hash = kci_hash_bytes_seeded(cursor, token->len, sublist->hash_seed);
        if (dot == NULL) break;
        cursor = dot + 1;
    }
    assert(sublist->tokens[count - 1].bytes + sublist->tokens[count - 1].len == end);
    sublist->token_count = count;
}

/* How many tokens come before the first wildcard (all if there is none). */
static uint32_t literal_token_count(const kci_sublist *sublist)
{
    uint32_t index = 0;
    while (index < sublist->token_count && sublist->tokens[index].kind == TOKEN_LITERAL)
        index++;
    return index;
}

/* Walks the tokens from the root filling path_levels and path_nodes; *depth
 * is how many entries were filled. With create, makes what is missing;
 * without, returns KC_ERR_NOT_FOUND at the first missing node. */
static kc_err trie_descend(kci_sublist *sublist, bool create, uint32_t *depth)
{
    sublist_level *level = &sublist->root;
    *depth = 0;
    for (uint32_t index = 0; index < sublist->token_count; index++) {
        if (index > 0) {
            sublist_node *parent = sublist->path_nodes[index - 1];
            if (parent->next == NULL) {
                if (!create) return KC_ERR_NOT_FOUND;
                parent->next = calloc(1, sizeof *parent->next);
                if (parent->next == NULL) return KC_ERR_NOMEM;
            }
            level = parent->next;
        }
        sublist_node *child = level_child(level, &sublist->tokens[index]);
        if (child == NULL) {
            if (!create) return KC_ERR_NOT_FOUND;
            kc_err err = level_attach(sublist, level, &sublist->tokens[index], &child);
            if (err != KC_OK) return err;
        }
        sublist->path_levels[index] = level;
        sublist->path_nodes[index] = child;
        *depth = index + 1;
    }
    return KC_OK;
}

/* Frees empty levels and nodes along the path, deepest first, stopping at
 * the first node still in use. Also cleans up after a failed insert. */
static void trie_prune(kci_sublist *sublist, uint32_t depth)
{
    assert(depth <= sublist->token_count);
    for (uint32_t index = depth; index-- > 0;) {
        sublist_node *node = sublist->path_nodes[index];
        if (node->next != NULL && level_is_empty(node->next)) {
            free(node->next);
            node->next = NULL;
        }
        if (!node_is_empty(node)) return;
        level_detach(sublist, sublist->path_levels[index], node);
    }
}

/* ---------------------------------------------------------------------------
 * Cache */

static void result_retire(kci_sublist *sublist, sublist_result *result)
{
    assert(result->cache_index == CACHE_INDEX_NONE);
    result->retired_next = sublist->retired_head;
    sublist->retired_head = result;
}

static sublist_result *cache_find(const kci_sublist *sublist, const char *subject,
                                  size_t subject_len, uint64_t hash)
{
    const sublist_table *table = &sublist->cache;
    if (table->slot_count == 0) return NULL;
    uint32_t mask = table->slot_count - 1;
    uint32_t index = (uint32_t)hash & mask;
    for (uint32_t step = 0; step < table->slot_count; step++) {
        const table_slot *slot = &table->slots[index];
        if (slot->item == NULL) return NULL;
        if (slot->hash == hash) {
            sublist_result *result = slot->item;
            if (result->key_len == subject_len && memcmp(result->key, subject, subject_len) == 0)
                return result;
        }
        index = (index + 1) & mask;
    }
    return NULL;
}

/* Takes the entry at entry_index out of the cache and retires it. */
static void cache_evict(kci_sublist *sublist, uint32_t entry_index)
{
    assert(entry_index < sublist->cache_entry_count);
    assert(sublist->cache.count == sublist->cache_entry_count);
    sublist_result *result = sublist->cache_entries[entry_index];
    assert(result->cache_index == entry_index);
    uint32_t slot_index = table_find_item(&sublist->cache, result->key_hash, result);
    assert(sublist->cache.slots[slot_index].item == result);
    table_delete_at(&sublist->cache, slot_index);
    sublist_result *last = sublist->cache_entries[--sublist->cache_entry_count];
    sublist->cache_entries[entry_index] = last;
    last->cache_index = entry_index;
    result->cache_index = CACHE_INDEX_NONE;
    result_retire(sublist, result);
}

/* CLOCK: the first entry from the hand on whose reference bit is clear,
 * clearing the bits it passes. Two sweeps always find one. */
static uint32_t cache_victim(kci_sublist *sublist)
{
    uint32_t entry_count = sublist->cache_entry_count;
    assert(entry_count > 0);
    for (uint64_t step = 0; step < 2 * (uint64_t)entry_count; step++) {
        if (sublist->cache_hand >= entry_count) sublist->cache_hand = 0;
        sublist_result *result = sublist->cache_entries[sublist->cache_hand];
        if (!result->referenced) return sublist->cache_hand;
        result->referenced = false;
        sublist->cache_hand++;
    }
    assert(false && "one sweep clears every reference bit");
    return 0;
}

static void cache_add(kci_sublist *sublist, sublist_result *result)
{
    assert(result->cache_index == CACHE_INDEX_NONE);
    if (sublist->cache_entries_max == 0) {
        result_retire(sublist, result);
        return;
    }
    if (sublist->cache_entry_count == sublist->cache_entries_max)
        cache_evict(sublist, cache_victim(sublist));
    table_place(&sublist->cache, result->key_hash, result);
    result->cache_index = sublist->cache_entry_count;
    sublist->cache_entries[sublist->cache_entry_count++] = result;
    assert(sublist->cache.count == sublist->cache_entry_count);
}

/* Retires every cached result whose subject the filter in sublist->tokens
 * matches (see the top of this file for why not all of them). */
static void cache_invalidate(kci_sublist *sublist, const char *filter, size_t filter_len)
{
    if (sublist->cache_entry_count == 0) return;
    if (literal_token_count(sublist) == sublist->token_count) {
        uint64_t hash = kci_hash_bytes_seeded(filter, filter_len, sublist->hash_seed);
        sublist_result *result = cache_find(sublist, filter, filter_len, hash);
        if (result != NULL) cache_evict(sublist, result->cache_index);
        return;
    }
    /* A matching key starts with the filter's literal tokens and their dots:
     * a memcmp rejects most entries before the token-by-token match. */
    size_t prefix_len = (size_t)(sublist->tokens[literal_token_count(sublist)].bytes - filter);
    assert(prefix_len < filter_len);
    /* Downwards, so the entry swapped into a hole was already checked. */
    for (uint32_t index = sublist->cache_entry_count; index-- > 0;) {
        const sublist_result *result = sublist->cache_entries[index];
        if (result->key_len <= prefix_len || memcmp(result->key, filter, prefix_len) != 0) continue;
        if (kci_subject_matches(filter, filter_len, result->key, result->key_len))
            cache_evict(sublist, index);
    }
}

/* ---------------------------------------------------------------------------
 * Building a match result */

static kc_err matched_push(kci_sublist *sublist, const sublist_node *node)
{
    const sublist_node **matched =
        scratch_grow(sublist->matched, &sublist->matched_capacity,
                     (uint64_t)sublist->matched_count + 1, sizeof *sublist->matched);
    if (matched == NULL) return KC_ERR_NOMEM;
    sublist->matched = matched;
    sublist->matched[sublist->matched_count++] = node;
    return KC_OK;
}

/* Collects the nodes whose filters match tokens[token_index..]. Follows
 * nats-server's matchLevel: '>' children match whatever is left, '*'
 * children recurse one token on, literals continue the loop. */
static kc_err match_level(kci_sublist *sublist, const sublist_level *level, uint32_t token_index)
{
    assert(token_index <= sublist->token_count);
    const sublist_node *literal = NULL;
    const sublist_node *pwc = NULL;
    kc_err err = KC_OK;
    for (uint32_t index = token_index; index < sublist->token_count; index++) {
        if (level == NULL) return KC_OK;
        if (level->fwc != NULL && (err = matched_push(sublist, level->fwc)) != KC_OK) return err;
        pwc = level->pwc;
        if (pwc != NULL && (err = match_level(sublist, pwc->next, index + 1)) != KC_OK) return err;
        literal = level_find(level, &sublist->tokens[index]);
        level = literal != NULL ? literal->next : NULL;
    }
    if (literal != NULL && (err = matched_push(sublist, literal)) != KC_OK) return err;
    if (pwc != NULL && (err = matched_push(sublist, pwc)) != KC_OK) return err;
    return KC_OK;
}

/* Where a group named like group is, or would go, in group_slots. */
static uint32_t *group_slot_find(kci_sublist *sublist, const sublist_group *group)
{
    uint32_t mask = sublist->group_slot_count - 1;
    uint32_t at = (uint32_t)group->name_hash & mask;
    for (uint32_t step = 0; step < sublist->group_slot_count; step++) {
        uint32_t *slot = &sublist->group_slots[at];
        if (*slot == 0) return slot;
        const scratch_group *known = &sublist->groups_scratch[*slot - 1];
        if (known->name_len == group->name_len &&
            memcmp(known->name, group->name, group->name_len) == 0)
            return slot;
        at = (at + 1) & mask;
    }
    assert(false && "group_slots is at most half full");
    return NULL;
}

/* Index of the scratch group named like group, adding it if new. */
static kc_err scratch_group_index(kci_sublist *sublist, const sublist_group *group,
                                  uint32_t *index_out)
{
    uint32_t *slot = NULL;
    if (sublist->group_slot_count > 0) {
        slot = group_slot_find(sublist, group);
        if (*slot != 0) {
            *index_out = *slot - 1;
            return KC_OK;
        }
    } else {
        for (uint32_t index = 0; index < sublist->group_count; index++) {
            const scratch_group *known = &sublist->groups_scratch[index];
            if (known->name_len == group->name_len &&
                memcmp(known->name, group->name, group->name_len) == 0) {
                *index_out = index;
                return KC_OK;
            }
        }
    }
    scratch_group *groups =
        scratch_grow(sublist->groups_scratch, &sublist->group_capacity,
                     (uint64_t)sublist->group_count + 1, sizeof *sublist->groups_scratch);
    if (groups == NULL) return KC_ERR_NOMEM;
    sublist->groups_scratch = groups;
    groups[sublist->group_count] = (scratch_group){group->name, group->name_len, 0, 0, 0};
    *index_out = sublist->group_count++;
    if (slot != NULL) *slot = sublist->group_count;
    return KC_OK;
}

/* Merging by name goes through group_slots when the matched nodes hold
 * more than a few groups, so a match with 100,000 queue names is linear. */
static kc_err group_slots_prepare(kci_sublist *sublist)
{
    uint64_t total = 0;
    for (uint32_t node_index = 0; node_index < sublist->matched_count; node_index++)
        total += sublist->matched[node_index]->group_count;
    sublist->group_slot_count = 0;
    if (total <= GROUP_MERGE_SCAN_MAX) return KC_OK;
    uint64_t slot_count = TABLE_SLOTS_MIN;
    while (slot_count < total * 2)
        slot_count *= 2;
    if (slot_count > UINT32_MAX / 2) return KC_ERR_NOMEM;
    if (slot_count > sublist->group_slot_capacity) {
        uint32_t *slots = realloc(sublist->group_slots, (size_t)slot_count * sizeof *slots);
        if (slots == NULL) return KC_ERR_NOMEM;
        sublist->group_slots = slots;
        sublist->group_slot_capacity = (uint32_t)slot_count;
    }
    memset(sublist->group_slots, 0, (size_t)slot_count * sizeof *sublist->group_slots);
    sublist->group_slot_count = (uint32_t)slot_count;
    return KC_OK;
}

static kc_err scratch_append_plain(kci_sublist *sublist, const sublist_table *set)
{
    if (set->count == 0) return KC_OK;
    void **plain =
        scratch_grow(sublist->plain_scratch, &sublist->plain_capacity,
                     (uint64_t)sublist->plain_count + set->count, sizeof *sublist->plain_scratch);
    if (plain == NULL) return KC_ERR_NOMEM;
    sublist->plain_scratch = plain;
    for (uint32_t index = 0; index < set->slot_count; index++)
        if (set->slots[index].item != NULL) plain[sublist->plain_count++] = set->slots[index].item;
    return KC_OK;
}

static kc_err scratch_append_members(kci_sublist *sublist, const sublist_group *group)
{
    uint32_t group_index = 0;
    kc_err err = scratch_group_index(sublist, group, &group_index);
    if (err != KC_OK) return err;
    const sublist_table *set = &group->members;
    scratch_member *members = scratch_grow(sublist->members_scratch, &sublist->member_capacity,
                                           (uint64_t)sublist->member_count + set->count,
                                           sizeof *sublist->members_scratch);
    if (members == NULL) return KC_ERR_NOMEM;
    sublist->members_scratch = members;
    for (uint32_t index = 0; index < set->slot_count; index++) {
        void *sub = set->slots[index].item;
        if (sub != NULL) members[sublist->member_count++] = (scratch_member){group_index, sub};
    }
    sublist->groups_scratch[group_index].member_count += set->count;
    return KC_OK;
}

/* Gathers the subscriptions of the matched nodes into the scratch arrays. */
static kc_err scratch_gather(kci_sublist *sublist)
{
    sublist->plain_count = sublist->member_count = sublist->group_count = 0;
    kc_err prepared = group_slots_prepare(sublist);
    if (prepared != KC_OK) return prepared;
    for (uint32_t node_index = 0; node_index < sublist->matched_count; node_index++) {
        const sublist_node *node = sublist->matched[node_index];
        kc_err err = scratch_append_plain(sublist, &node->plain);
        for (uint32_t index = 0; err == KC_OK && index < node->group_count; index++)
            err = scratch_append_members(sublist, node->groups[index]);
        if (err != KC_OK) return err;
    }
    return KC_OK;
}

/* Copies the scratch arrays into one new result block: the result, plain
 * pointers, member pointers, groups, then the key and group names. */
static kc_err result_build(kci_sublist *sublist, const char *subject, size_t subject_len,
                           uint64_t hash, sublist_result **out)
{
    uint64_t names_bytes = 0;
    for (uint32_t index = 0; index < sublist->group_count; index++)
        names_bytes += sublist->groups_scratch[index].name_len;
    uint64_t size = sizeof(sublist_result) +
                    ((uint64_t)sublist->plain_count + sublist->member_count) * sizeof(void *) +
                    (uint64_t)sublist->group_count * sizeof(kci_match_group) + subject_len +
                    names_bytes;
    /* Only a 32-bit size_t can fall short here. */
    // cppcheck-suppress knownConditionTrueFalse
    if ((size_t)size != size) return KC_ERR_NOMEM;
    sublist_result *result = malloc((size_t)size);
    if (result == NULL) return KC_ERR_NOMEM;
    void **plain = (void **)(result + 1);
    void **members = plain + sublist->plain_count;
    kci_match_group *groups = (kci_match_group *)(members + sublist->member_count);
    char *key = (char *)(groups + sublist->group_count);
    char *names = key + subject_len;
    if (sublist->plain_count > 0)
        memcpy(plain, sublist->plain_scratch, sublist->plain_count * sizeof(void *));
    memcpy(key, subject, subject_len);
    uint32_t member_offset = 0;
    for (uint32_t index = 0; index < sublist->group_count; index++) {
        scratch_group *group = &sublist->groups_scratch[index];
        char *name = names;
        memcpy(name, group->name, group->name_len);
        names += group->name_len;
        groups[index] =
            (kci_match_group){name, group->name_len, members + member_offset, group->member_count};
        group->member_offset = member_offset;
        group->member_fill = 0;
        member_offset += group->member_count;
    }
    assert(member_offset == sublist->member_count);
    for (uint32_t index = 0; index < sublist->member_count; index++) {
        const scratch_member *member = &sublist->members_scratch[index];
        scratch_group *group = &sublist->groups_scratch[member->group_index];
        assert(group->member_fill < group->member_count);
        members[group->member_offset + group->member_fill++] = member->sub;
    }
    result->match = (kci_match){sublist->plain_count > 0 ? plain : NULL, sublist->plain_count,
                                sublist->group_count > 0 ? groups : NULL, sublist->group_count};
    result->retired_next = NULL;
    result->key = key;
    result->key_hash = hash;
    result->key_len = (uint32_t)subject_len;
    result->cache_index = CACHE_INDEX_NONE;
    result->subscription_count = sublist->plain_count + sublist->member_count;
    result->referenced = false;
    *out = result;
    return KC_OK;
}

static kc_err match_miss(kci_sublist *sublist, const char *subject, size_t subject_len,
                         uint64_t hash, sublist_result **out)
{
    /* A subject with '*' or '>' tokens is matched with them as literal
     * tokens, as nats-server does for a non-pedantic publish. */
    if (!kci_subject_valid_filter(subject, subject_len)) return KC_ERR_INVALID_SUBJECT;
    subject_split(sublist, subject, subject_len);
    sublist->matched_count = 0;
    kc_err err = match_level(sublist, &sublist->root, 0);
    if (err == KC_OK) err = scratch_gather(sublist);
    if (err == KC_OK) err = result_build(sublist, subject, subject_len, hash, out);
    return err;
}

/* ---------------------------------------------------------------------------
 * API */

/* A per-sublist secret so clients cannot aim hash collisions at the tables. */
static uint64_t sublist_seed(const kci_sublist *sublist)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed) return seed;
    /* No entropy yet (early boot): time and address are weaker but losing
     * the secret costs only flooding resistance, never correctness. */
    struct timespec now = {0, 0};
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t material[3] = {(uint64_t)now.tv_sec, (uint64_t)now.tv_nsec,
                            (uint64_t)(uintptr_t)sublist};
    return kci_hash_bytes(material, sizeof material);
}

kc_err kci_sublist_create(kci_sublist **out, uint32_t cache_entries_max)
{
    assert(out != NULL);
    *out = NULL;
    if (cache_entries_max > SUBLIST_CACHE_ENTRIES_LIMIT) return KC_ERR_INVALID_ARGUMENT;
    kci_sublist *sublist = calloc(1, sizeof *sublist);
    if (sublist == NULL) return KC_ERR_NOMEM;
    sublist->hash_seed = sublist_seed(sublist);
    sublist->cache_entries_max = cache_entries_max;
    if (cache_entries_max > 0) {
        uint32_t slot_count = TABLE_SLOTS_MIN;
        while (slot_count < 2 * cache_entries_max)
            slot_count *= 2;
        sublist->cache.slots = calloc(slot_count, sizeof *sublist->cache.slots);
        sublist->cache.slot_count = slot_count;
        sublist->cache_entries = calloc(cache_entries_max, sizeof *sublist->cache_entries);
        if (sublist->cache.slots == NULL || sublist->cache_entries == NULL) {
            kci_sublist_destroy(sublist);
            return KC_ERR_NOMEM;
        }
    }
    *out = sublist;
    return KC_OK;
}

void kci_sublist_destroy(kci_sublist *sublist)
{
    if (sublist == NULL) return;
    kci_sublist_collect(sublist);
    for (uint32_t index = 0; sublist->cache_entries != NULL && index < sublist->cache_entry_count;
         index++)
        free(sublist->cache_entries[index]);
    free(sublist->cache_entries);
    free(sublist->cache.slots);
    level_destroy_children(&sublist->root);
    free(sublist->matched);
    free(sublist->plain_scratch);
    free(sublist->members_scratch);
    free(sublist->groups_scratch);
    free(sublist->group_slots);
    free(sublist);
}

static uint64_t queue_hash(const kci_sublist *sublist, const char *queue, size_t queue_len)
{
    return queue_len == 0 ? 0 : kci_hash_bytes_seeded(queue, queue_len, sublist->hash_seed);
}

kc_err kci_sublist_insert(kci_sublist *sublist, const char *subject, size_t subject_len,
                          const char *queue, size_t queue_len, void *sub)
{
    assert(sublist != NULL);
    if (sub == NULL || queue_len > SUBLIST_QUEUE_BYTES_MAX) return KC_ERR_INVALID_ARGUMENT;
    if (queue == NULL && queue_len > 0) return KC_ERR_INVALID_ARGUMENT;
    if (!kci_subject_valid_filter(subject, subject_len)) return KC_ERR_INVALID_SUBJECT;
    if (sublist->subscription_count >= SUBLIST_SUBSCRIPTIONS_MAX) return KC_ERR_LIMIT;
    subject_split(sublist, subject, subject_len);
    uint32_t depth = 0;
    kc_err err = trie_descend(sublist, true, &depth);
    if (err == KC_OK) {
        assert(depth == sublist->token_count);
        err = node_add_sub(sublist->path_nodes[depth - 1], queue, (uint32_t)queue_len,
                           queue_hash(sublist, queue, queue_len), sub);
    }
    if (err != KC_OK) {
        trie_prune(sublist, depth); /* frees whatever the failed insert created */
        return err;
    }
    sublist->subscription_count++;
    sublist->insert_count++;
    cache_invalidate(sublist, subject, subject_len);
    return KC_OK;
}

kc_err kci_sublist_remove(kci_sublist *sublist, const char *subject, size_t subject_len,
                          const char *queue, size_t queue_len, void *sub)
{
    assert(sublist != NULL);
    /* Whatever insert would have refused cannot be there to remove. */
    if (sub == NULL || queue_len > SUBLIST_QUEUE_BYTES_MAX) return KC_ERR_NOT_FOUND;
    if (queue == NULL && queue_len > 0) return KC_ERR_NOT_FOUND;
    if (!kci_subject_valid_filter(subject, subject_len)) return KC_ERR_NOT_FOUND;
    subject_split(sublist, subject, subject_len);
    uint32_t depth = 0;
    kc_err err = trie_descend(sublist, false, &depth);
    if (err != KC_OK) return err;
    err = node_remove_sub(sublist->path_nodes[depth - 1], queue, (uint32_t)queue_len,
                          queue_hash(sublist, queue, queue_len), sub);
    if (err != KC_OK) return err;
    trie_prune(sublist, depth);
    assert(sublist->subscription_count > 0);
    sublist->subscription_count--;
    sublist->remove_count++;
    cache_invalidate(sublist, subject, subject_len);
    return KC_OK;
}

kc_err kci_sublist_match(kci_sublist *sublist, const char *subject, size_t subject_len,
                         const kci_match **out)
{
    assert(sublist != NULL && out != NULL);
    assert(subject != NULL || subject_len == 0);
    uint64_t hash = kci_hash_bytes_seeded(subject, subject_len, sublist->hash_seed);
    sublist_result *result = cache_find(sublist, subject, subject_len, hash);
    if (result != NULL) {
        result->referenced = true;
        sublist->cache_hit_count++;
    } else {
        kc_err err = match_miss(sublist, subject, subject_len, hash, &result);
        if (err != KC_OK) return err;
        /* Invalidation matches filters against literal cache keys, so a
         * wildcard-bearing subject is answered but never cached. */
        if (kci_subject_valid_literal(subject, subject_len))
            cache_add(sublist, result);
        else
            result_retire(sublist, result);
    }
    sublist->match_count++;
    sublist->fanout_total += result->subscription_count;
    if (result->subscription_count > sublist->fanout_max)
        sublist->fanout_max = result->subscription_count;
    *out = &result->match;
    return KC_OK;
}

void kci_sublist_collect(kci_sublist *sublist)
{
    assert(sublist != NULL);
    sublist_result *result = sublist->retired_head;
    while (result != NULL) {
        sublist_result *next = result->retired_next;
        assert(result->cache_index == CACHE_INDEX_NONE);
        free(result);
        result = next;
    }
    sublist->retired_head = NULL;
}

void kci_sublist_get_stats(const kci_sublist *sublist, kci_sublist_stats *out)
{
    assert(sublist != NULL && out != NULL);
    *out = (kci_sublist_stats){
        .subscription_count = sublist->subscription_count,
        .cache_entry_count = sublist->cache_entry_count,
        .insert_count = sublist->insert_count,
        .remove_count = sublist->remove_count,
        .match_count = sublist->match_count,
        .cache_hit_count = sublist->cache_hit_count,
        .fanout_max = sublist->fanout_max,
        .fanout_average = sublist->match_count == 0
                              ? 0.0
                              : (double)sublist->fanout_total / (double)sublist->match_count,
    };
}

uint64_t kci_sublist_node_count(const kci_sublist *sublist)
{
    assert(sublist != NULL);
    return sublist->node_count;
}
