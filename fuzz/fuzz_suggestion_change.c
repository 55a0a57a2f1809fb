/* fuzz_suggestion_change.c - libFuzzer target for a change line of the
 * suggestions file (kci_suggestion_change_parse, src/keeper/suggestion_state.c),
 * which the keeper's loader reads at every start. Checks: an accepted line
 * names an action among ours, an operator that is a subject token and, for
 * assign only, an assignee; written back with kci_suggestion_change_format
 * it parses to the same change (the writer and the reader agree); and a
 * book holding its suggestion applies it exactly when the state machine
 * allows it from open. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keeper/suggestion_state.h"
#include "service/headers.h"

#define FUZZ_CHECK(condition)                                                                      \
    do {                                                                                           \
        if (!(condition)) abort();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void round_trip(const kci_suggestion_change *change)
{
    char *line = kci_suggestion_change_format(change);
    FUZZ_CHECK(line != NULL && strchr(line, '\n') == NULL);
    json_t *root = NULL;
    kci_suggestion_change again;
    FUZZ_CHECK(kci_suggestion_change_parse(line, strlen(line), &root, &again));
    FUZZ_CHECK(strcmp(again.id, change->id) == 0 && again.action == change->action &&
               strcmp(again.by, change->by) == 0 && strcmp(again.ts, change->ts) == 0 &&
               same(again.assignee, change->assignee) && same(again.note, change->note));
    json_decref(root);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = NULL;
    kci_suggestion_change change;
    if (kci_suggestion_change_parse((const char *)data, size, &root, &change)) {
        FUZZ_CHECK(kci_token_valid(change.by));
        FUZZ_CHECK((change.action == KCI_SUGGESTION_ASSIGN) == (change.assignee != NULL));
        round_trip(&change);
        json_t *book = kci_suggestion_book_new();
        FUZZ_CHECK(book != NULL && kci_suggestion_book_add(book, change.id) == KC_OK);
        kci_suggestion_status next;
        const char *why = NULL;
        bool allowed = kci_suggestion_transition(KCI_SUGGESTION_OPEN, change.action, &next, &why);
        FUZZ_CHECK((kci_suggestion_book_apply(book, &change) == KC_OK) == allowed);
        json_decref(book);
    }
    json_decref(root);
    return 0;
}
