/* colored.c - the coloured-money formulas (colored.h). Kept apart from the
 * command so the hand-worked cases in tests/econ/colored_test.c check
 * exactly the arithmetic the command prints. */
#include "colored.h"

#include <math.h>

void kci_econ_colored_direct(double inflow_source, double inflow_sink, double inflow_hub,
                             double rate, kci_econ_colored *out)
{
    out->rate = rate;
    out->inflow_source = inflow_source;
    out->inflow_sink = inflow_sink;
    out->inflow_hub = inflow_hub;
    out->storage = fabs(inflow_source - inflow_sink);
    out->direct = fabs(out->storage * rate - inflow_hub);
}

void kci_econ_colored_indirect(double gdp, double inflow_hub, double rate, kci_econ_colored *out)
{
    out->rate = rate;
    out->gdp = gdp;
    out->inflow_hub = inflow_hub;
    out->indirect = fabs(gdp * rate - inflow_hub);
}

double kci_econ_graph_total(const kci_econ_graph *graph)
{
    double total = 0;
    for (int64_t edge = 0; edge < graph->edge_count; edge++)
        total += VECTOR(graph->amounts)[edge];
    return total;
}
