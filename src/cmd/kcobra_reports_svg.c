/* kcobra_reports_svg.c - the picture of `kcobra arbiter reports --svg`: a
 * small SVG writer of our own (a bar chart and a circle layout need no
 * Graphviz, which the build does not depend on).
 *
 * Top: reports per window over the analysed span, a bar per window, the
 * windows where some node burst in red. Below: the who-reports-whom graph,
 * nodes on a circle (in the order the edges name them), an arrow per
 * reporter -> accused pair whose width grows with the reports' log, ring
 * members filled red and the densest core's members outlined thick. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kcobra_reports.h"

enum {
    WIDTH = 960,
    MARGIN = 40,
    CHART_HEIGHT = 220,
    GRAPH_TOP = CHART_HEIGHT + 2 * MARGIN,
    GRAPH_RADIUS = 300,
    GRAPH_NODES_MAX = 400, /* more would be unreadable: the graph is left out */
    BARS_MAX = 100 * 1000,
    NODE_RADIUS = 7,
    EDGE_OFFSET = 3, /* pixels between the two directions of a pair */
    TIME_TEXT_BYTES = 32,
};

static void escaped(FILE *out, const char *text)
{
    for (; text != NULL && *text != '\0'; text++) {
        switch (*text) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*text, out);
        }
    }
}

static void time_text(int64_t ms, char text[TIME_TEXT_BYTES])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) == NULL ||
        strftime(text, TIME_TEXT_BYTES, "%Y-%m-%d %H:%M:%SZ", &utc) == 0)
        snprintf(text, TIME_TEXT_BYTES, "%lld ms", (long long)ms);
}

static int64_t integer(json_t *object, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(object, key));
}

static bool burst_at(json_t *bursts, int64_t start_ms)
{
    size_t index;
    json_t *burst;
    json_array_foreach(bursts, index, burst)
    {
        if (integer(burst, "start_ms") == start_ms) return true;
    }
    return false;
}

static void chart(FILE *out, json_t *stats)
{
    int64_t window_ms = integer(stats, "window_ms");
    int64_t first_ms = integer(stats, "first_ms");
    int64_t bars = window_ms > 0 ? (integer(stats, "last_ms") - first_ms) / window_ms + 1 : 1;
    if (bars < 1 || bars > BARS_MAX) bars = 1;
    int64_t top = 1;
    size_t index;
    json_t *window;
    json_t *windows = json_object_get(stats, "windows");
    json_array_foreach(windows, index, window)
    {
        if (integer(window, "total") > top) top = integer(window, "total");
    }
    double bar_width = (double)(WIDTH - 2 * MARGIN) / (double)bars;
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" font-size=\"14\">reports per window (max %lld; red: a "
            "burst)</text>\n",
            MARGIN, MARGIN - 12, (long long)top);
    json_array_foreach(windows, index, window)
    {
        int64_t start_ms = integer(window, "start_ms");
        double height = (double)CHART_HEIGHT * (double)integer(window, "total") / (double)top;
        double x = MARGIN + bar_width * (double)((start_ms - first_ms) / window_ms);
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                "fill=\"%s\"><title>%lld</title></rect>\n",
                x, MARGIN + CHART_HEIGHT - height, bar_width > 1.5 ? bar_width - 0.5 : bar_width,
                height,
                burst_at(json_object_get(stats, "bursts"), start_ms) ? "#c0392b" : "#4682b4",
                (long long)integer(window, "total"));
    }
    char first[TIME_TEXT_BYTES], last[TIME_TEXT_BYTES];
    time_text(first_ms, first);
    time_text(integer(stats, "last_ms"), last);
    fprintf(out,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
            MARGIN, MARGIN + CHART_HEIGHT, WIDTH - MARGIN, MARGIN + CHART_HEIGHT, MARGIN,
            MARGIN + CHART_HEIGHT + 14, first, WIDTH - MARGIN, MARGIN + CHART_HEIGHT + 14, last);
}

static bool listed(json_t *names, const char *name)
{
    size_t index;
    json_t *value;
    json_array_foreach(names, index, value)
    {
        if (strcmp(json_string_value(value), name) == 0) return true;
    }
    return false;
}

/* name -> position on the circle, in the order the edges name them. */
static json_t *layout(json_t *edges)
{
    json_t *positions = json_object();
    size_t index;
    json_t *edge;
    json_array_foreach(edges, index, edge)
    {
        const char *ends[2] = {json_string_value(json_object_get(edge, "from")),
                               json_string_value(json_object_get(edge, "to"))};
        for (int i = 0; i < 2; i++)
            if (json_object_get(positions, ends[i]) == NULL)
                json_object_set_new(positions, ends[i],
                                    json_integer((json_int_t)json_object_size(positions)));
    }
    return positions;
}

static void point(json_t *positions, const char *name, double *x, double *y)
{
    double count = (double)json_object_size(positions);
    double angle = 2 * M_PI * (double)json_integer_value(json_object_get(positions, name)) / count;
    *x = WIDTH / 2.0 + GRAPH_RADIUS * cos(angle);
    *y = GRAPH_TOP + MARGIN + GRAPH_RADIUS + GRAPH_RADIUS * sin(angle);
}

static json_t *ring_members(json_t *graph)
{
    json_t *members = json_array();
    size_t index;
    json_t *ring;
    json_array_foreach(json_object_get(graph, "rings"), index, ring)
    {
        json_array_extend(members, json_object_get(ring, "members"));
    }
    return members;
}

static void graph_edges(FILE *out, json_t *edges, json_t *positions)
{
    size_t index;
    json_t *edge;
    json_array_foreach(edges, index, edge)
    {
        double x1, y1, x2, y2;
        point(positions, json_string_value(json_object_get(edge, "from")), &x1, &y1);
        point(positions, json_string_value(json_object_get(edge, "to")), &x2, &y2);
        double length = hypot(x2 - x1, y2 - y1);
        if (length < 1) continue;
        /* a little to the right of the centre line, so that a -> b and
         * b -> a are two lines; stop at the target's circle so the
         * arrowhead shows */
        double dx = (x2 - x1) / length, dy = (y2 - y1) / length;
        x1 -= dy * EDGE_OFFSET, y1 += dx * EDGE_OFFSET;
        x2 -= dy * EDGE_OFFSET + dx * (NODE_RADIUS + 2);
        y2 += dx * EDGE_OFFSET - dy * (NODE_RADIUS + 2);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777\" "
                "stroke-width=\"%.1f\" marker-end=\"url(#arrow)\"/>\n",
                x1, y1, x2, y2, 1.0 + log2(1.0 + (double)integer(edge, "reports")) / 2);
    }
}

static void graph_nodes(FILE *out, json_t *graph, json_t *positions)
{
    json_t *rings = ring_members(graph);
    json_t *core = json_object_get(graph, "core");
    const char *name;
    json_t *value;
    json_object_foreach(positions, name, value)
    {
        double x, y;
        point(positions, name, &x, &y);
        fprintf(out,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" stroke=\"black\" "
                "stroke-width=\"%d\"/>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">",
                x, y, NODE_RADIUS, listed(rings, name) ? "#c0392b" : "#bbb",
                listed(core, name) ? 3 : 1, x + NODE_RADIUS + 2, y - NODE_RADIUS);
        escaped(out, name);
        fputs("</text>\n", out);
    }
    json_decref(rings);
}

bool kcobra_reports_svg_write(FILE *out, json_t *stats)
{
    json_t *graph = json_object_get(stats, "graph");
    json_t *positions = layout(json_object_get(graph, "edges"));
    bool drawn = positions != NULL && json_object_size(positions) <= GRAPH_NODES_MAX;
    int height = GRAPH_TOP + (drawn ? 2 * GRAPH_RADIUS + 3 * MARGIN : MARGIN);
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" "
            "refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\">"
            "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#777\"/></marker></defs>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            WIDTH, height);
    chart(out, stats);
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" font-size=\"14\">who reports whom (red: rings; thick: the "
            "densest core, k = %lld)%s</text>\n",
            MARGIN, GRAPH_TOP, (long long)integer(graph, "k_max"),
            drawn ? "" : ": too many nodes to draw, see --json");
    if (drawn) {
        graph_edges(out, json_object_get(graph, "edges"), positions);
        graph_nodes(out, graph, positions);
    }
    json_decref(positions);
    fputs("</svg>\n", out);
    return !ferror(out);
}
