/* colored.h - coloured money, the original design's estimates of money
 * that is stored rather than spent and of the part of it a tax hub sees:
 *
 *   storage  = |inflow(source) - inflow(sink)|
 *   direct   = |storage * rate - inflow(hub)|
 *   indirect = |gdp * rate - inflow(indirect-tax hub)|
 *
 * where inflow(v) is the sum of the amounts paid to v and gdp is the total
 * of goods and services (by default the total of every payment). */
#ifndef KCI_ECON_COLORED_H
#define KCI_ECON_COLORED_H

#include "graph.h"

typedef struct kci_econ_colored {
    double rate;
    double inflow_hub;
    /* direct */
    double inflow_source, inflow_sink, storage, direct;
    /* indirect */
    double gdp, indirect;
} kci_econ_colored;

void kci_econ_colored_direct(double inflow_source, double inflow_sink, double inflow_hub,
                             double rate, kci_econ_colored *out);
void kci_econ_colored_indirect(double gdp, double inflow_hub, double rate, kci_econ_colored *out);
/* Total of every payment of the graph (the default gdp). */
double kci_econ_graph_total(const kci_econ_graph *graph);

#endif
