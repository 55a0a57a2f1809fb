/* exchange_bench.c - the matching engine alone (src/exchange/book.c):
 * orders matched per second on a seeded random stream, no I/O, no ledger.
 *
 * The stream (generated before the clock starts): limit orders around a
 * mid price that drifts in a random walk, so about half cross and half
 * rest; one order in ten a market order; one operation in four a cancel of
 * one of the last 1,000 ids (some already filled: the refusal costs a
 * lookup, as in life). The book keeps up to 1,000,000 resting orders.
 *
 * Usage: exchange_bench [ORDERS [ROUNDS [SEED]]] (defaults 2000000, 5, 42).
 * Prints one line per round and a JSON summary line with the median:
 * operations/s, orders/s (submits), trades/s and the resting count at the
 * end. bench/run_exchange.sh runs it. Settled trades per second need the
 * ledger and the exchange component, which do not exist yet
 * (docs/exchange.md, "Not yet"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exchange/book.h"

enum { BOOK_ORDERS_MAX = 1000000, CANCEL_WINDOW = 1000, ROUNDS_MAX = 50 };

typedef struct operation {
    kci_book_order order; /* order_id only, for a cancel */
    int cancel;
} operation;

static uint64_t random_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void stream_make(operation *operations, size_t count, uint64_t seed)
{
    uint64_t state = seed, next_id = 1;
    int64_t mid = 10000;
    for (size_t i = 0; i < count; i++) {
        uint64_t r = random_next(&state);
        if (r % 4 == 0 && next_id > 1) {
            uint64_t back = 1 + (r >> 8) % CANCEL_WINDOW;
            operations[i] =
                (operation){.cancel = 1, .order.order_id = next_id > back ? next_id - back : 1};
            continue;
        }
        mid += (int64_t)((r >> 4) % 3) - 1;
        if (mid < 100) mid = 100;
        kci_book_side side = (r >> 8) & 1 ? KCI_BOOK_BUY : KCI_BOOK_SELL;
        int64_t offset = (int64_t)((r >> 16) % 41) - 20; /* buys above mid cross asks... */
        operations[i] =
            (operation){.order = {.order_id = next_id++,
                                  .owner = (r >> 32) % 64,
                                  .side = side,
                                  .kind = (r >> 40) % 10 == 0 ? KCI_BOOK_MARKET : KCI_BOOK_LIMIT,
                                  .price = mid + (side == KCI_BOOK_BUY ? offset - 5 : offset + 5),
                                  .quantity = 1 + (int64_t)((r >> 48) % 100)}};
    }
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One round on a fresh book: returns the seconds, counts in the outs. */
static double round_run(const operation *operations, size_t count, uint64_t *submits,
                        uint64_t *trades, uint32_t *resting)
{
    kci_book *book = NULL;
    if (kci_book_create(&book, "BENCH", BOOK_ORDERS_MAX) != KC_OK) exit(1);
    uint64_t submit_count = 0;
    double start = seconds_now();
    for (size_t i = 0; i < count; i++) {
        if (operations[i].cancel) {
            (void)kci_book_cancel(book, operations[i].order.order_id, NULL);
            continue;
        }
        kci_book_result result;
        (void)kci_book_submit(book, &operations[i].order, NULL, NULL, &result);
        submit_count++;
    }
    double seconds = seconds_now() - start;
    *submits = submit_count;
    *trades = kci_book_trade_count(book);
    *resting = kci_book_order_count(book);
    kci_book_destroy(book);
    return seconds;
}

int main(int argc, char **argv)
{
    size_t count = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 42;
    if (count == 0 || rounds < 1 || rounds > ROUNDS_MAX) {
        fprintf(stderr, "usage: exchange_bench [ORDERS [ROUNDS(1-50) [SEED]]]\n");
        return 2;
    }
    operation *operations = calloc(count, sizeof *operations);
    if (!operations) return 1;
    stream_make(operations, count, seed);
    double seconds[ROUNDS_MAX];
    uint64_t submits = 0, trades = 0;
    uint32_t resting = 0;
    for (int r = 0; r < rounds; r++) {
        seconds[r] = round_run(operations, count, &submits, &trades, &resting);
        printf("round %d: %.3f s, %.0f operations/s\n", r + 1, seconds[r],
               (double)count / seconds[r]);
    }
    qsort(seconds, (size_t)rounds, sizeof seconds[0], compare_double);
    double median = seconds[rounds / 2];
    printf("{\"bench\":\"exchange_matching\",\"operations\":%zu,\"submits\":%" PRIu64
           ",\"trades\":%" PRIu64 ",\"resting_at_end\":%" PRIu32
           ",\"median_s\":%.4f,\"operations_per_s\":%.0f,\"orders_per_s\":%.0f,"
           "\"trades_per_s\":%.0f}\n",
           count, submits, trades, resting, median, (double)count / median,
           (double)submits / median, (double)trades / median);
    free(operations);
    return 0;
}
