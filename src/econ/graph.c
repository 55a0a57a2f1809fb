/* graph.c - building the money-flow graph (see graph.h).
 *
 * Two open-addressing tables with linear probing, both kept at most half
 * full: account name -> vertex id, and (payer, payee) -> edge index, so a
 * payment costs two hashes and a few probes. Memory is about 40 bytes per
 * distinct edge and 24 bytes plus the name per account while building;
 * the graph keeps the names and the name table for lookups. */
#include "graph.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

enum {
    TABLE_SLOTS_INITIAL = 1024,
    ARRAY_CAPACITY_INITIAL = 1024,
};

void kci_econ_error_set(kci_econ_error *error, const char *format, ...)
{
    if (error == NULL) return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->text, sizeof error->text, format, arguments);
    va_end(arguments);
}

kc_err kci_econ_igraph_error(igraph_error_t status, const char *what, kci_econ_error *error)
{
    kci_econ_error_set(error, "%s failed in igraph: %s", what, igraph_strerror(status));
    return status == IGRAPH_ENOMEM ? KC_ERR_NOMEM : KC_ERR_INVALID_ARGUMENT;
}

void kci_econ_builder_init(kci_econ_builder *builder)
{
    memset(builder, 0, sizeof *builder);
}

static void arena_free(kci_econ_arena *arena)
{
    for (int64_t index = 0; index < arena->chunk_count; index++)
        free(arena->chunks[index]);
    free(arena->chunks);
    memset(arena, 0, sizeof *arena);
}

/* A copy of name (NUL-terminated) in the arena, or NULL. */
static char *arena_copy(kci_econ_arena *arena, const char *name, size_t length)
{
    _Static_assert(KCI_ECON_NAME_BYTES_MAX + 1 <= KCI_ECON_ARENA_CHUNK_BYTES,
                   "a name fits a chunk");
    if (arena->chunk_count == 0 || arena->used + length + 1 > KCI_ECON_ARENA_CHUNK_BYTES) {
        char **chunks = realloc(arena->chunks, sizeof *chunks * (size_t)(arena->chunk_count + 1));
        if (chunks == NULL) return NULL;
        arena->chunks = chunks;
        chunks[arena->chunk_count] = malloc(KCI_ECON_ARENA_CHUNK_BYTES);
        if (chunks[arena->chunk_count] == NULL) return NULL;
        arena->chunk_count++;
        arena->used = 0;
    }
    char *copy = arena->chunks[arena->chunk_count - 1] + arena->used;
    memcpy(copy, name, length);
    copy[length] = '\0';
    arena->used += length + 1;
    return copy;
}

void kci_econ_builder_free(kci_econ_builder *builder)
{
    arena_free(&builder->arena);
    free(builder->names);
    free(builder->name_slots);
    free(builder->edge_from);
    free(builder->edge_to);
    free(builder->edge_amount);
    free(builder->edge_slots);
    free(builder->pending_text);
    memset(builder, 0, sizeof *builder);
}

static uint64_t edge_key(int32_t from, int32_t to)
{
    return ((uint64_t)(uint32_t)from << 32) | (uint32_t)to;
}

static uint64_t edge_key_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    key *= 0xc4ceb9fe1a85ec53ULL;
    return key ^ (key >> 33);
}

/* The vertex id of name (whose hash is given), or -(slot + 1) of the empty
 * slot where it goes. */
static int64_t name_probe(const kci_econ_name_slot *slots, int64_t slot_count, const char *name,
                          size_t length, uint64_t hash)
{
    uint64_t mask = (uint64_t)slot_count - 1;
    uint64_t slot = hash & mask;
    uint32_t tag = (uint32_t)(hash >> 32);
    for (;;) {
        const char *candidate = slots[slot].name;
        if (candidate == NULL) return -(int64_t)slot - 1;
        if (slots[slot].tag == tag && memcmp(candidate, name, length) == 0 &&
            candidate[length] == '\0')
            return slots[slot].id;
        slot = (slot + 1) & mask;
    }
}

static kc_err name_table_grow(kci_econ_builder *builder)
{
    int64_t slot_count =
        builder->name_slot_count == 0 ? TABLE_SLOTS_INITIAL : builder->name_slot_count * 2;
    kci_econ_name_slot *slots = calloc((size_t)slot_count, sizeof *slots);
    if (slots == NULL) return KC_ERR_NOMEM;
    uint64_t mask = (uint64_t)slot_count - 1;
    for (int64_t id = 0; id < builder->node_count; id++) {
        const char *name = builder->names[id];
        uint64_t hash = kci_hash_bytes(name, strlen(name));
        uint64_t slot = hash & mask;
        while (slots[slot].name != NULL)
            slot = (slot + 1) & mask;
        slots[slot].name = name;
        slots[slot].id = (uint32_t)id;
        slots[slot].tag = (uint32_t)(hash >> 32);
    }
    free(builder->name_slots);
    builder->name_slots = slots;
    builder->name_slot_count = slot_count;
    return KC_OK;
}

static kc_err name_check(const char *name, size_t length, kci_econ_error *error)
{
    if (length == 0) {
        kci_econ_error_set(error, "empty account name");
        return KC_ERR_PARSE;
    }
    if (length > KCI_ECON_NAME_BYTES_MAX || memchr(name, '\0', length) != NULL) {
        kci_econ_error_set(error, "account name longer than %d bytes or holding a NUL byte",
                           KCI_ECON_NAME_BYTES_MAX);
        return KC_ERR_PARSE;
    }
    return KC_OK;
}

static kc_err intern(kci_econ_builder *builder, const char *name, size_t length, uint64_t hash,
                     int32_t *id_out, kci_econ_error *error)
{
    if ((builder->node_count + 1) * 2 > builder->name_slot_count &&
        name_table_grow(builder) != KC_OK)
        goto nomem;
    int64_t found = name_probe(builder->name_slots, builder->name_slot_count, name, length, hash);
    if (found >= 0) {
        *id_out = (int32_t)found;
        return KC_OK;
    }
    if (builder->node_count >= KCI_ECON_NODES_MAX) {
        kci_econ_error_set(error, "more than %d accounts", KCI_ECON_NODES_MAX);
        return KC_ERR_TOO_LARGE;
    }
    if (builder->node_count == builder->node_capacity) {
        int64_t capacity =
            builder->node_capacity == 0 ? ARRAY_CAPACITY_INITIAL : builder->node_capacity * 2;
        char **names = realloc(builder->names, (size_t)capacity * sizeof *names);
        if (names == NULL) goto nomem;
        builder->names = names;
        builder->node_capacity = capacity;
    }
    char *copy = arena_copy(&builder->arena, name, length);
    if (copy == NULL) goto nomem;
    int64_t id = builder->node_count++;
    builder->names[id] = copy;
    builder->name_slots[-found - 1].name = copy;
    builder->name_slots[-found - 1].id = (uint32_t)id;
    builder->name_slots[-found - 1].tag = (uint32_t)(hash >> 32);
    *id_out = (int32_t)id;
    return KC_OK;
nomem:
    kci_econ_error_set(error, "out of memory after %lld accounts", (long long)builder->node_count);
    return KC_ERR_NOMEM;
}

static kc_err edge_table_resize(kci_econ_builder *builder, int64_t slot_count)
{
    assert(slot_count > builder->edge_slot_count && (slot_count & (slot_count - 1)) == 0);
    kci_econ_edge_slot *slots = calloc((size_t)slot_count, sizeof *slots);
    if (slots == NULL) return KC_ERR_NOMEM;
    uint64_t mask = (uint64_t)slot_count - 1;
    for (int64_t old = 0; old < builder->edge_slot_count; old++) {
        if (builder->edge_slots[old].index == 0) continue;
        uint64_t slot = edge_key_hash(builder->edge_slots[old].key) & mask;
        while (slots[slot].index != 0)
            slot = (slot + 1) & mask;
        slots[slot] = builder->edge_slots[old];
    }
    free(builder->edge_slots);
    builder->edge_slots = slots;
    builder->edge_slot_count = slot_count;
    return KC_OK;
}

static kc_err edge_table_grow(kci_econ_builder *builder)
{
    return edge_table_resize(builder, builder->edge_slot_count == 0 ? TABLE_SLOTS_INITIAL
                                                                    : builder->edge_slot_count * 2);
}

static kc_err edge_arrays_resize(kci_econ_builder *builder, int64_t capacity)
{
    assert(capacity > builder->edge_capacity);
    int32_t *from = realloc(builder->edge_from, (size_t)capacity * sizeof *from);
    if (from == NULL) return KC_ERR_NOMEM;
    builder->edge_from = from;
    int32_t *to = realloc(builder->edge_to, (size_t)capacity * sizeof *to);
    if (to == NULL) return KC_ERR_NOMEM;
    builder->edge_to = to;
    double *amount = realloc(builder->edge_amount, (size_t)capacity * sizeof *amount);
    if (amount == NULL) return KC_ERR_NOMEM;
    builder->edge_amount = amount;
    builder->edge_capacity = capacity;
    return KC_OK;
}

static kc_err edge_arrays_grow(kci_econ_builder *builder)
{
    return edge_arrays_resize(builder, builder->edge_capacity == 0 ? ARRAY_CAPACITY_INITIAL
                                                                   : builder->edge_capacity * 2);
}

kc_err kci_econ_builder_reserve(kci_econ_builder *builder, int64_t payments_expected)
{
    if (payments_expected > KCI_ECON_EDGES_MAX) payments_expected = KCI_ECON_EDGES_MAX;
    if (payments_expected <= ARRAY_CAPACITY_INITIAL) return KC_OK;
    int64_t slot_count = TABLE_SLOTS_INITIAL;
    while (payments_expected * 10 > slot_count * 7) /* as edge_add keeps it */
        slot_count *= 2;
    kc_err err = KC_OK;
    if (slot_count > builder->edge_slot_count) err = edge_table_resize(builder, slot_count);
    if (err == KC_OK && payments_expected > builder->edge_capacity)
        err = edge_arrays_resize(builder, payments_expected);
    return err;
}

static kc_err edge_add(kci_econ_builder *builder, int32_t from_id, int32_t to_id, double amount,
                       kci_econ_error *error)
{
    builder->payments_read++;
    if (from_id == to_id) {
        builder->self_payments_dropped++;
        return KC_OK;
    }
    /* at most 70% full: 16-byte slots, one probe a payment on average */
    if ((builder->edge_count + 1) * 10 > builder->edge_slot_count * 7 &&
        edge_table_grow(builder) != KC_OK)
        goto nomem;
    uint64_t mask = (uint64_t)builder->edge_slot_count - 1;
    uint64_t key = edge_key(from_id, to_id);
    uint64_t slot = edge_key_hash(key) & mask;
    while (builder->edge_slots[slot].index != 0) {
        if (builder->edge_slots[slot].key == key) {
            builder->edge_amount[builder->edge_slots[slot].index - 1] += amount;
            return KC_OK;
        }
        slot = (slot + 1) & mask;
    }
    if (builder->edge_count >= KCI_ECON_EDGES_MAX) {
        kci_econ_error_set(error, "more than %d distinct payer-payee pairs", KCI_ECON_EDGES_MAX);
        return KC_ERR_TOO_LARGE;
    }
    if (builder->edge_count == builder->edge_capacity && edge_arrays_grow(builder) != KC_OK)
        goto nomem;
    int64_t index = builder->edge_count++;
    builder->edge_from[index] = from_id;
    builder->edge_to[index] = to_id;
    builder->edge_amount[index] = amount;
    builder->edge_slots[slot].key = key;
    builder->edge_slots[slot].index = (uint32_t)(index + 1);
    return KC_OK;
nomem:
    kci_econ_error_set(error, "out of memory after %lld edges", (long long)builder->edge_count);
    return KC_ERR_NOMEM;
}

/* Processes the queued payments in passes, each issuing the memory reads
 * of the next before any waits: prefetch every name's slot; prefetch the
 * names those slots point at; intern (all has arrived) and prefetch each
 * edge's slot; add the edges. A lookup per payment in a table of millions is a cache miss,
 * and this overlaps them instead of paying them one after the other. */
kc_err kci_econ_builder_flush(kci_econ_builder *builder, kci_econ_error *error)
{
    kci_econ_pending *pending = builder->pending;
    int count = builder->pending_count;
    builder->pending_count = 0;
    builder->pending_text_used = 0;
    if (count == 0) return KC_OK;
    if (builder->name_slot_count > 0) {
        uint64_t mask = (uint64_t)builder->name_slot_count - 1;
        for (int k = 0; k < count; k++) {
            __builtin_prefetch(&builder->name_slots[pending[k].from_hash & mask]);
            __builtin_prefetch(&builder->name_slots[pending[k].to_hash & mask]);
        }
        /* the slots have arrived meanwhile: now the names they point at */
        for (int k = 0; k < count; k++) {
            __builtin_prefetch(builder->name_slots[pending[k].from_hash & mask].name);
            __builtin_prefetch(builder->name_slots[pending[k].to_hash & mask].name);
        }
    }
    for (int k = 0; k < count; k++) {
        kci_econ_pending *payment = &pending[k];
        kc_err err = intern(builder, builder->pending_text + payment->from_offset,
                            payment->from_length, payment->from_hash, &payment->from_id, error);
        if (err == KC_OK)
            err = intern(builder, builder->pending_text + payment->to_offset, payment->to_length,
                         payment->to_hash, &payment->to_id, error);
        if (err != KC_OK) return err;
        if (builder->edge_slot_count > 0)
            __builtin_prefetch(
                &builder->edge_slots[edge_key_hash(edge_key(payment->from_id, payment->to_id)) &
                                     ((uint64_t)builder->edge_slot_count - 1)]);
    }
    for (int k = 0; k < count; k++) {
        kc_err err =
            edge_add(builder, pending[k].from_id, pending[k].to_id, pending[k].amount, error);
        if (err != KC_OK) return err;
    }
    return KC_OK;
}

kc_err kci_econ_builder_add(kci_econ_builder *builder, const char *from, size_t from_length,
                            const char *to, size_t to_length, double amount, kci_econ_error *error)
{
    assert(isfinite(amount) && amount >= 0);
    kc_err err = name_check(from, from_length, error);
    if (err == KC_OK) err = name_check(to, to_length, error);
    if (err != KC_OK) return err;
    if (builder->pending_text == NULL) {
        builder->pending_text = malloc(KCI_ECON_PENDING_TEXT_BYTES);
        if (builder->pending_text == NULL) {
            kci_econ_error_set(error, "out of memory");
            return KC_ERR_NOMEM;
        }
    }
    kci_econ_pending *payment = &builder->pending[builder->pending_count++];
    payment->from_offset = (uint32_t)builder->pending_text_used;
    memcpy(builder->pending_text + builder->pending_text_used, from, from_length);
    builder->pending_text_used += from_length;
    payment->to_offset = (uint32_t)builder->pending_text_used;
    memcpy(builder->pending_text + builder->pending_text_used, to, to_length);
    builder->pending_text_used += to_length;
    payment->from_length = (uint32_t)from_length;
    payment->to_length = (uint32_t)to_length;
    payment->from_hash = kci_hash_bytes(from, from_length);
    payment->to_hash = kci_hash_bytes(to, to_length);
    payment->amount = amount;
    if (builder->pending_count == KCI_ECON_PENDING_MAX)
        return kci_econ_builder_flush(builder, error);
    return KC_OK;
}

/* Moves the builder's edges into edges (from, to pairs) and amounts,
 * grouped by payer in vertex order (a stable counting sort, O(V + E); the
 * payees of one payer stay in the order they first appeared). Why:
 * igraph_create indexes the edges by payer and by payee with linked-list
 * radix sorts (igraph_vector_int_pair_order) that walk chains of edges
 * sharing a key; on edges in file order every step of every pass is a cache
 * miss (a third of `kcobra econ scc` on 1,000,000 payments, perf), grouped
 * by payer two of its four passes walk memory in order. Each account's
 * out-edges are then side by side, which igraph's adjacency lists (SCC,
 * max-flow) read. The builder's edge arrays are freed. */
static kc_err edges_group(kci_econ_builder *builder, igraph_vector_int_t *edges,
                          igraph_vector_t *amounts, kci_econ_error *error)
{
    int64_t node_count = builder->node_count, edge_count = builder->edge_count;
    int64_t *starts = calloc((size_t)node_count + 1, sizeof *starts);
    if (starts == NULL) {
        kci_econ_error_set(error, "out of memory ordering %lld edges", (long long)edge_count);
        return KC_ERR_NOMEM;
    }
    for (int64_t edge = 0; edge < edge_count; edge++)
        starts[builder->edge_from[edge]]++;
    int64_t sum = 0;
    for (int64_t vertex = 0; vertex <= node_count; vertex++) {
        int64_t count = starts[vertex];
        starts[vertex] = sum;
        sum += count;
    }
    for (int64_t edge = 0; edge < edge_count; edge++) {
        int64_t at = starts[builder->edge_from[edge]]++;
        VECTOR(*edges)[2 * at] = builder->edge_from[edge];
        VECTOR(*edges)[2 * at + 1] = builder->edge_to[edge];
        VECTOR(*amounts)[at] = builder->edge_amount[edge];
    }
    free(starts);
    free(builder->edge_from);
    free(builder->edge_to);
    free(builder->edge_amount);
    builder->edge_from = builder->edge_to = NULL;
    builder->edge_amount = NULL;
    return KC_OK;
}

kc_err kci_econ_graph_finish(kci_econ_builder *builder, kci_econ_graph *graph,
                             kci_econ_error *error)
{
    memset(graph, 0, sizeof *graph);
    kc_err err = kci_econ_builder_flush(builder, error);
    if (err != KC_OK) return err;
    /* the pair table is done with: free it before igraph's copies */
    free(builder->edge_slots);
    builder->edge_slots = NULL;
    builder->edge_slot_count = 0;
    igraph_vector_int_t edges;
    igraph_error_t status = igraph_vector_int_init(&edges, builder->edge_count * 2);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "allocating edges", error);
    status = igraph_vector_init(&graph->amounts, builder->edge_count);
    if (status != IGRAPH_SUCCESS) {
        igraph_vector_int_destroy(&edges);
        return kci_econ_igraph_error(status, "allocating amounts", error);
    }
    err = edges_group(builder, &edges, &graph->amounts, error);
    if (err == KC_OK) {
        status = igraph_create(&graph->graph, &edges, builder->node_count, IGRAPH_DIRECTED);
        if (status != IGRAPH_SUCCESS) err = kci_econ_igraph_error(status, "building the graph", error);
    }
    igraph_vector_int_destroy(&edges);
    if (err != KC_OK) {
        igraph_vector_destroy(&graph->amounts);
        return err;
    }
    graph->made = true;
    graph->names = builder->names;
    graph->arena = builder->arena;
    memset(&builder->arena, 0, sizeof builder->arena);
    graph->node_count = builder->node_count;
    graph->edge_count = builder->edge_count;
    graph->payments_read = builder->payments_read;
    graph->name_slots = builder->name_slots;
    graph->name_slot_count = builder->name_slot_count;
    builder->names = NULL;
    builder->node_count = 0;
    builder->name_slots = NULL;
    kci_econ_builder_free(builder);
    assert(igraph_ecount(&graph->graph) == graph->edge_count);
    return KC_OK;
}

void kci_econ_graph_free(kci_econ_graph *graph)
{
    if (!graph->made) return;
    igraph_destroy(&graph->graph);
    igraph_vector_destroy(&graph->amounts);
    arena_free(&graph->arena);
    free(graph->names);
    free(graph->name_slots);
    memset(graph, 0, sizeof *graph);
}

int64_t kci_econ_graph_find(const kci_econ_graph *graph, const char *name)
{
    if (graph->name_slot_count == 0) return -1;
    size_t length = strlen(name);
    int64_t found = name_probe(graph->name_slots, graph->name_slot_count, name, length,
                               kci_hash_bytes(name, length));
    return found >= 0 ? found : -1;
}

kc_err kci_econ_graph_vertex(const kci_econ_graph *graph, const char *name, const char *what,
                             int64_t *vertex_out, kci_econ_error *error)
{
    *vertex_out = kci_econ_graph_find(graph, name);
    if (*vertex_out >= 0) return KC_OK;
    kci_econ_error_set(error, "unknown account '%s' (given as %s): it neither pays nor is paid",
                       name, what);
    return KC_ERR_NOT_FOUND;
}

void kci_econ_graph_inflow(const kci_econ_graph *graph, double *inflow, double *outflow)
{
    for (int64_t vertex = 0; vertex < graph->node_count; vertex++) {
        inflow[vertex] = 0;
        outflow[vertex] = 0;
    }
    for (int64_t edge = 0; edge < graph->edge_count; edge++) {
        double amount = VECTOR(graph->amounts)[edge];
        inflow[IGRAPH_TO(&graph->graph, edge)] += amount;
        outflow[IGRAPH_FROM(&graph->graph, edge)] += amount;
    }
}
