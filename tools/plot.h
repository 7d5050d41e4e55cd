// The familiar "latency by percentile" chart as SVG: x = percentile on a log scale of 1/(1-p),
// y = latency in microseconds, one polyline per series.
#pragma once

#include <string>
#include <vector>

#include "fabric/histogram.h"

namespace seqcast::tools {

struct Series {
    std::string name;
    const Histogram* h;
};

std::string svgPlot(const std::vector<Series>& series, const std::string& title);

}  // namespace seqcast::tools
