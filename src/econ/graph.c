/* graph.c - building the money-flow graph (see graph.h).
 *
 * Account names go through an open-addressing table with linear probing,
 * kept at most half full (name -> vertex id), looked up in batches with
 * prefetches. Payments are appended as (payer, payee, amount) and summed per
 * pair in batches (edges_compact: group by payer, then one pass with a table
 * per payee), which reads memory in order where a hash table of pairs
 * missed the cache once per payment. Memory is 16 bytes per payment kept
 * between batches (at most twice the distinct pairs once batches run) and
 * 24 bytes plus the name per account; the graph keeps the names and the
 * name table for lookups. */
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
    free(builder->pending_text);
    memset(builder, 0, sizeof *builder);
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

kc_err kci_econ_builder_reserve(kci_econ_builder *builder, int64_t payments_expected)
{
    if (payments_expected > KCI_ECON_RESERVE_PAYMENTS_MAX)
        payments_expected = KCI_ECON_RESERVE_PAYMENTS_MAX;
    if (payments_expected <= builder->edge_capacity) return KC_OK;
    return edge_arrays_resize(builder, payments_expected);
}

/* Groups the payments by payer in vertex order (a stable counting sort) and
 * sums those with the same payee into the first of them, in file order: the
 * same sums, in the same order of additions, as adding each payment to its
 * pair as it comes. The pairs of one payer keep the order in which they
 * first appeared. O(V + E) time; 16 bytes per payment and 8 per account of
 * scratch. */
static kc_err edges_compact(kci_econ_builder *builder, kci_econ_error *error)
{
    int64_t node_count = builder->node_count, edge_count = builder->edge_count;
    int64_t *starts = calloc((size_t)node_count + 1, sizeof *starts);
    int32_t *from = malloc((size_t)builder->edge_capacity * sizeof *from);
    int32_t *to = malloc((size_t)builder->edge_capacity * sizeof *to);
    double *amount = malloc((size_t)builder->edge_capacity * sizeof *amount);
    /* per payee: the payer whose group last saw it + 1, and where */
    struct seen {
        int32_t payer;
        int32_t at;
    } *seen = calloc((size_t)node_count + 1, sizeof *seen);
    if (starts == NULL || from == NULL || to == NULL || amount == NULL || seen == NULL) {
        free(starts);
        free(from);
        free(to);
        free(amount);
        free(seen);
        kci_econ_error_set(error, "out of memory summing %lld payments", (long long)edge_count);
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
        from[at] = builder->edge_from[edge];
        to[at] = builder->edge_to[edge];
        amount[at] = builder->edge_amount[edge];
    }
    free(starts);
    free(builder->edge_from);
    free(builder->edge_to);
    free(builder->edge_amount);
    builder->edge_from = from;
    builder->edge_to = to;
    builder->edge_amount = amount;
    /* in place: the write position never passes the read position */
    int64_t kept = 0;
    for (int64_t edge = 0; edge < edge_count; edge++) {
        struct seen *payee = &seen[to[edge]];
        if (payee->payer == from[edge] + 1) {
            amount[payee->at] += amount[edge];
            continue;
        }
        payee->payer = from[edge] + 1;
        payee->at = (int32_t)kept;
        from[kept] = from[edge];
        to[kept] = to[edge];
        amount[kept] = amount[edge];
        kept++;
    }
    free(seen);
    builder->edge_count = kept;
    builder->compacted_count = kept;
    if (kept > KCI_ECON_EDGES_MAX) {
        kci_econ_error_set(error, "more than %d distinct payer-payee pairs", KCI_ECON_EDGES_MAX);
        return KC_ERR_TOO_LARGE;
    }
    return KC_OK;
}

/* The edge arrays are full: sum the payments since the last time if they
 * are many enough to pay for the O(V + E) pass (so each payment costs O(1)
 * on average), and double the arrays unless that freed half of them. */
static kc_err edge_arrays_full(kci_econ_builder *builder, kci_econ_error *error)
{
    int64_t fresh = builder->edge_count - builder->compacted_count;
    if (fresh > 0 && fresh >= builder->edge_capacity / 2 && fresh >= builder->node_count / 4) {
        kc_err err = edges_compact(builder, error);
        if (err != KC_OK) return err;
    }
    if (builder->edge_capacity > 0 && builder->edge_count <= builder->edge_capacity / 2)
        return KC_OK;
    int64_t capacity =
        builder->edge_capacity == 0 ? ARRAY_CAPACITY_INITIAL : builder->edge_capacity * 2;
    if (capacity > 2 * (int64_t)KCI_ECON_EDGES_MAX + 2) {
        kci_econ_error_set(error, "more than %d distinct payer-payee pairs", KCI_ECON_EDGES_MAX);
        return KC_ERR_TOO_LARGE;
    }
    if (edge_arrays_resize(builder, capacity) == KC_OK) return KC_OK;
    kci_econ_error_set(error, "out of memory after %lld payments",
                       (long long)builder->payments_read);
    return KC_ERR_NOMEM;
}

/* Payments are appended as they come; repeated pairs are summed in
 * batches by edges_compact. A hash table of pairs did it one payment at a
 * time, with a cache miss each in a table of tens of MB: a fifth of loading
 * 1,000,000 payments (perf); the batch pass reads memory in order except
 * for a table of 8 bytes per account. */
static kc_err edge_add(kci_econ_builder *builder, int32_t from_id, int32_t to_id, double amount,
                       kci_econ_error *error)
{
    builder->payments_read++;
    if (from_id == to_id) {
        builder->self_payments_dropped++;
        return KC_OK;
    }
    if (builder->edge_count == builder->edge_capacity) {
        kc_err err = edge_arrays_full(builder, error);
        if (err != KC_OK) return err;
    }
    int64_t index = builder->edge_count++;
    builder->edge_from[index] = from_id;
    builder->edge_to[index] = to_id;
    builder->edge_amount[index] = amount;
    return KC_OK;
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

kc_err kci_econ_graph_finish(kci_econ_builder *builder, kci_econ_graph *graph,
                             kci_econ_error *error)
{
    memset(graph, 0, sizeof *graph);
    kc_err err = kci_econ_builder_flush(builder, error);
    if (err != KC_OK) return err;
    /* Grouped by payer, igraph_create's linked-list radix sorts
     * (igraph_vector_int_pair_order), which walk chains of edges sharing a
     * key, read memory in order in two of their four passes instead of
     * missing the cache at every step as on edges in file order (a third of
     * `kcobra econ scc` on 1,000,000 payments, perf); and igraph's
     * adjacency lists (SCC, max-flow) find each account's out-edges side by
     * side. */
    if (builder->edge_count > builder->compacted_count) err = edges_compact(builder, error);
    if (err != KC_OK) return err;
    igraph_vector_int_t edges;
    igraph_error_t status = igraph_vector_int_init(&edges, builder->edge_count * 2);
    if (status != IGRAPH_SUCCESS) return kci_econ_igraph_error(status, "allocating edges", error);
    status = igraph_vector_init(&graph->amounts, builder->edge_count);
    if (status != IGRAPH_SUCCESS) {
        igraph_vector_int_destroy(&edges);
        return kci_econ_igraph_error(status, "allocating amounts", error);
    }
    for (int64_t edge = 0; edge < builder->edge_count; edge++) {
        VECTOR(edges)[2 * edge] = builder->edge_from[edge];
        VECTOR(edges)[2 * edge + 1] = builder->edge_to[edge];
    }
    if (builder->edge_count > 0) /* else edge_amount may be NULL */
        memcpy(VECTOR(graph->amounts), builder->edge_amount,
               (size_t)builder->edge_count * sizeof(double));
    free(builder->edge_from); /* before igraph's copies */
    free(builder->edge_to);
    free(builder->edge_amount);
    builder->edge_from = builder->edge_to = NULL;
    builder->edge_amount = NULL;
    status = igraph_create(&graph->graph, &edges, builder->node_count, IGRAPH_DIRECTED);
    igraph_vector_int_destroy(&edges);
    if (status != IGRAPH_SUCCESS) {
        igraph_vector_destroy(&graph->amounts);
        return kci_econ_igraph_error(status, "building the graph", error);
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
