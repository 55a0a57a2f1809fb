/* graph.c - walks and the causality check over the store (graph.h).
 *
 * A walk is breadth first with a visited set (a small open-addressing table
 * of ids, bounded by KCI_EVENTNET_WALK_NODES_MAX) so a diamond is listed
 * once; an id named as a cause but never recorded is listed as missing,
 * never filled in. The check compares each recorded cause's HLC time with
 * its effect's: a cause must be strictly earlier (the HLC's guarantee for
 * send before receive before send). */
#include "eventnet/graph.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "service/last_error.h"

enum { VISITED_SLOTS = 2 * KCI_EVENTNET_WALK_NODES_MAX + 1 };

typedef struct visited_set {
    kci_uuid slots[VISITED_SLOTS];
    bool used[VISITED_SLOTS];
    size_t count;
} visited_set;

/* True if id was new (and is now in the set). */
static bool visited_add(visited_set *set, const kci_uuid *id)
{
    uint64_t hash = 0;
    memcpy(&hash, (const unsigned char *)id + 8, sizeof hash); /* v7's random bits */
    for (size_t probe = 0; probe < VISITED_SLOTS; probe++) {
        size_t slot = (size_t)((hash + probe) % VISITED_SLOTS);
        if (!set->used[slot]) {
            set->used[slot] = true;
            set->slots[slot] = *id;
            set->count++;
            return true;
        }
        if (kci_uuid_compare(&set->slots[slot], id) == 0) return false;
    }
    assert(false && "the visited set is never full: count is bounded first");
    return false;
}

static json_t *ts_json(const kci_hlc_timestamp *ts)
{
    char text[KCI_HLC_TEXT_BYTES_MAX];
    kci_hlc_format(ts, text);
    return json_string(text);
}

static json_t *id_json(const kci_uuid *id)
{
    char text[KC_UUID_TEXT_BYTES + 1];
    kci_uuid_format(id, text);
    return json_string(text);
}

json_t *kci_eventnet_event_json(const kci_event *event);
json_t *kci_eventnet_event_json(const kci_event *event)
{
    json_t *causes = json_array();
    for (size_t index = 0; index < event->cause_count; index++)
        json_array_append_new(causes, id_json(&event->causes[index]));
    return json_pack("{s:o, s:o, s:s, s:s, s:s, s:o}", "id", id_json(&event->id), "ts",
                     ts_json(&event->ts), "kind", event->kind, "node", event->node, "subject",
                     event->subject, "causes", causes);
}

typedef struct walk_state {
    kci_eventnet_store *store;
    bool effects;
    visited_set visited;
    kci_uuid queue[KCI_EVENTNET_WALK_NODES_MAX];
    int depths[KCI_EVENTNET_WALK_NODES_MAX];
    size_t queue_count;
    bool truncated;
    kci_uuid next[KCI_EVENTNET_FANOUT_MAX];
} walk_state;

static void walk_enqueue(walk_state *state, const kci_uuid *id, int depth)
{
    if (state->queue_count == KCI_EVENTNET_WALK_NODES_MAX) {
        state->truncated = true;
        return;
    }
    if (!visited_add(&state->visited, id)) return;
    state->queue[state->queue_count] = *id;
    state->depths[state->queue_count++] = depth;
}

static kc_err walk_one(walk_state *state, size_t index, int depth_max, json_t *events)
{
    const kci_uuid *id = &state->queue[index];
    int depth = state->depths[index];
    kci_event event;
    kc_err err = kci_eventnet_store_get(state->store, id, &event);
    if (err == KC_ERR_NOT_FOUND) {
        json_array_append_new(events, json_pack("{s:o, s:i, s:b}", "id", id_json(id), "depth",
                                                depth, "missing", true));
        /* an unrecorded event's effects are still known by the edges */
        if (!state->effects) return KC_OK;
    } else if (err != KC_OK) {
        return err;
    } else {
        json_t *object = kci_eventnet_event_json(&event);
        json_object_set_new(object, "depth", json_integer(depth));
        json_array_append_new(events, object);
    }
    if (depth >= depth_max) return KC_OK;
    kci_uuid *next = state->next;
    size_t next_count = 0;
    if (state->effects) {
        err = kci_eventnet_store_neighbours(state->store, id, true, next, KCI_EVENTNET_FANOUT_MAX,
                                            &next_count);
        if (err != KC_OK) return err;
    } else {
        memcpy(next, event.causes, event.cause_count * sizeof next[0]);
        next_count = event.cause_count;
    }
    for (size_t position = 0; position < next_count; position++)
        walk_enqueue(state, &next[position], depth + 1);
    return KC_OK;
}

kc_err kci_eventnet_walk(kci_eventnet_store *store, const kci_uuid *id, bool effects, int depth,
                         json_t **out)
{
    *out = NULL;
    if (depth < 0 || depth > KCI_EVENTNET_DEPTH_MAX)
        return kci_fail(KC_ERR_INVALID_ARGUMENT, "depth %d is not in 0..%d", depth,
                        KCI_EVENTNET_DEPTH_MAX);
    walk_state *state = calloc(1, sizeof *state);
    json_t *events = json_array();
    if (state == NULL || events == NULL) {
        free(state);
        json_decref(events);
        return kci_fail(KC_ERR_NOMEM, "eventnet: out of memory");
    }
    state->store = store;
    state->effects = effects;
    walk_enqueue(state, id, 0);
    kc_err err = KC_OK;
    for (size_t index = 0; err == KC_OK && index < state->queue_count; index++)
        err = walk_one(state, index, depth, events);
    if (err == KC_OK)
        *out = json_pack("{s:o, s:s, s:o, s:b}", "root", id_json(id), "direction",
                         effects ? "effects" : "causes", "events", events, "truncated",
                         state->truncated);
    else
        json_decref(events);
    free(state);
    return err;
}

/* ---- check ----------------------------------------------------------------- */

typedef struct check_state {
    kci_eventnet_store *store;
    kci_hlc_timestamp horizon;
    kci_eventnet_check_result *result;
    kc_err err;
} check_state;

static void problem_add(check_state *state, const char *problem, const kci_event *effect,
                        const kci_uuid *cause, const kci_event *cause_event)
{
    if (json_array_size(state->result->problems) >= KCI_EVENTNET_PROBLEMS_MAX) return;
    json_t *object =
        json_pack("{s:s, s:o, s:o, s:o}", "problem", problem, "effect", id_json(&effect->id),
                  "effect_ts", ts_json(&effect->ts), "cause", id_json(cause));
    if (cause_event != NULL) json_object_set_new(object, "cause_ts", ts_json(&cause_event->ts));
    json_array_append_new(state->result->problems, object);
}

/* A cause's UUIDv7 time at or before the horizon: dropped by retention. */
static bool behind_horizon(const check_state *state, const kci_uuid *cause)
{
    if (state->horizon.wall_ms == 0) return false;
    return kci_uuid_version(cause) == 7 && kci_uuid_v7_time_ms(cause) <= state->horizon.wall_ms;
}

static bool check_visit(const kci_event *event, void *context)
{
    check_state *state = context;
    kci_eventnet_check_result *result = state->result;
    result->event_count++;
    for (size_t index = 0; index < event->cause_count; index++) {
        const kci_uuid *cause = &event->causes[index];
        result->edge_count++;
        kci_event cause_event;
        kc_err err = kci_eventnet_store_get(state->store, cause, &cause_event);
        if (err == KC_ERR_NOT_FOUND) {
            if (behind_horizon(state, cause)) {
                result->dropped_cause_count++;
                continue;
            }
            result->missing_cause_count++;
            problem_add(state, "missing", event, cause, NULL);
        } else if (err != KC_OK) {
            state->err = err;
            return false;
        } else if (kci_hlc_compare(&cause_event.ts, &event->ts) >= 0) {
            result->order_violation_count++;
            problem_add(state, "order", event, cause, &cause_event);
        }
    }
    return true;
}

kc_err kci_eventnet_check(kci_eventnet_store *store, kci_eventnet_check_result *out)
{
    memset(out, 0, sizeof *out);
    if ((out->problems = json_array()) == NULL) return kci_fail(KC_ERR_NOMEM, "out of memory");
    check_state state = {.store = store, .result = out, .err = KC_OK};
    uint64_t count = 0;
    kc_err err = kci_eventnet_store_stats(store, &state.horizon, &count);
    if (err == KC_OK) err = kci_eventnet_store_scan(store, NULL, UINT64_MAX, check_visit, &state);
    if (err == KC_OK) err = state.err;
    return err;
}
