#include "tools/plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace seqcast::tools {

std::string svgPlot(const std::vector<Series>& series, const std::string& title) {
    const double W = 900, H = 520, L = 80, R = 200, T = 50, B = 60;
    const double pw = W - L - R, ph = H - T - B;
    const double xMax = 5;  // up to 99.999 %
    std::uint64_t yMaxNs = 1;
    for (const auto& s : series) yMaxNs = std::max(yMaxNs, s.h->quantile(0.99999));
    const double yMax = std::pow(10.0, std::ceil(std::log10(static_cast<double>(yMaxNs) / 1000.0 + 1e-9)));
    auto X = [&](double x) { return L + pw * x / xMax; };
    auto Y = [&](double us) { return T + ph * (1.0 - std::min(us, yMax) / yMax); };
    static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"};
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << ' ' << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << L << "\" y=\"28\" font-size=\"16\">" << title << "</text>\n";
    // Grid and axes.
    const char* xl[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    for (int i = 0; i <= 5; ++i) {
        o << "<line x1=\"" << X(i) << "\" y1=\"" << T << "\" x2=\"" << X(i) << "\" y2=\"" << T + ph
          << "\" stroke=\"#ddd\"/>\n<text x=\"" << X(i) << "\" y=\"" << T + ph + 18 << "\" text-anchor=\"middle\">" << xl[i] << "</text>\n";
    }
    for (int i = 0; i <= 5; ++i) {
        const double us = yMax * i / 5;
        o << "<line x1=\"" << L << "\" y1=\"" << Y(us) << "\" x2=\"" << L + pw << "\" y2=\"" << Y(us) << "\" stroke=\"#ddd\"/>\n"
          << "<text x=\"" << L - 8 << "\" y=\"" << Y(us) + 4 << "\" text-anchor=\"end\">" << us << "</text>\n";
    }
    o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\"" << ph << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << L + pw / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">percentile</text>\n"
      << "<text x=\"20\" y=\"" << T + ph / 2 << "\" transform=\"rotate(-90 20 " << T + ph / 2
      << ")\" text-anchor=\"middle\">latency (us)</text>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        o << "<polyline class=\"series\" data-series=\"" << s.name << "\" fill=\"none\" stroke-width=\"2\" stroke=\""
          << colors[k % 5] << "\" points=\"";
        for (int i = 0; i <= 200; ++i) {
            const double x = xMax * i / 200.0;
            const double q = 1.0 - std::pow(10.0, -x);
            const double us = static_cast<double>(s.h->quantile(q)) / 1000.0;
            o << X(x) << ',' << Y(us) << ' ';
        }
        o << "\"/>\n<text x=\"" << L + pw + 12 << "\" y=\"" << T + 20 + 20 * static_cast<double>(k) << "\" fill=\"" << colors[k % 5]
          << "\">" << s.name << "</text>\n";
    }
    o << "</svg>\n";
    return o.str();
}

}  // namespace seqcast::tools
