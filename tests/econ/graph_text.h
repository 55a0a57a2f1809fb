/* graph_text.h - for the econ unit tests: a graph from CSV text, through the
 * real loader (kci_econ_csv), failing the test on any error. Include after
 * cmocka.h. */
#ifndef KC_TEST_ECON_GRAPH_TEXT_H
#define KC_TEST_ECON_GRAPH_TEXT_H

#include <string.h>

#include "econ/graph_load.h"

/* The graph most hand-worked cases use:
 * s->a 10, s->b 5, a->b 15, a->t 4, b->t 9, t->s 3, x->y 1 */
static const char ECON_TEST_GRAPH[] =
    "from,to,amount\ns,a,10\ns,b,5\na,b,15\na,t,4\nb,t,9\nt,s,3\nx,y,1\n";

static void econ_test_graph_load(const char *text, kci_econ_graph *graph)
{
    kci_econ_builder builder;
    kci_econ_builder_init(&builder);
    kci_econ_csv csv;
    kci_econ_error error = {{0}};
    kci_econ_csv_init(&csv, &builder);
    assert_int_equal(kci_econ_csv_feed(&csv, text, strlen(text), &error), KC_OK);
    assert_int_equal(kci_econ_csv_finish(&csv, &error), KC_OK);
    assert_int_equal(kci_econ_graph_finish(&builder, graph, &error), KC_OK);
    kci_econ_builder_free(&builder);
}

#endif
