#include "coordinator/http/prometheus_text.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace glm::http {
namespace {

void AppendEscaped(const std::string& s, bool escape_quote, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '"' && escape_quote) {
      *out += "\\\"";
    } else {
      *out += c;
    }
  }
}

void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    *out += "NaN";
  } else if (std::isinf(v)) {
    *out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    *out += buf;
  } else {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    *out += buf;
  }
}

Status LineError(int line, const std::string& what) {
  return InvalidArgumentError("metrics text line " + std::to_string(line) + ": " + what);
}

bool ParseValue(const std::string& token, double* value) {
  if (token == "+Inf" || token == "Inf") {
    *value = INFINITY;
    return true;
  }
  if (token == "-Inf") {
    *value = -INFINITY;
    return true;
  }
  if (token == "NaN") {
    *value = NAN;
    return true;
  }
  if (token.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(token.c_str(), &end);
  return end == token.c_str() + token.size();
}

// The family a sample name belongs to, given the declared types.
std::string FamilyOf(const std::string& name, const std::map<std::string, MetricType>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == MetricType::kHistogram) return base;
    }
  }
  return "";
}

// Parses `{a="x",b="y"}` starting at text[*pos] == '{'.
Status ParseLabels(const std::string& text, size_t* pos, int line,
                   std::map<std::string, std::string>* labels) {
  size_t i = *pos + 1;
  while (true) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i < text.size() && text[i] == '}') {
      *pos = i + 1;
      return Status::Ok();
    }
    size_t name_start = i;
    while (i < text.size() && text[i] != '=' && text[i] != ' ') ++i;
    std::string name = text.substr(name_start, i - name_start);
    if (!IsValidLabelName(name)) return LineError(line, "bad label name '" + name + "'");
    if (i + 1 >= text.size() || text[i] != '=' || text[i + 1] != '"') {
      return LineError(line, "expected =\" after label " + name);
    }
    i += 2;
    std::string value;
    bool closed = false;
    while (i < text.size()) {
      char c = text[i++];
      if (c == '\\') {
        if (i >= text.size()) break;
        char e = text[i++];
        if (e == 'n') {
          value += '\n';
        } else if (e == '\\' || e == '"') {
          value += e;
        } else {
          return LineError(line, std::string("bad escape \\") + e + " in label " + name);
        }
      } else if (c == '"') {
        closed = true;
        break;
      } else {
        value += c;
      }
    }
    if (!closed) return LineError(line, "unterminated value of label " + name);
    if (labels->count(name)) return LineError(line, "label " + name + " given twice");
    (*labels)[name] = value;
    if (i < text.size() && text[i] == ',') ++i;
    else if (i < text.size() && text[i] == '}') continue;
    else return LineError(line, "expected , or } after label " + name);
  }
}

std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char e = s[++i];
      out += e == 'n' ? '\n' : e;
    } else {
      out += s[i];
    }
  }
  return out;
}

Status CheckHistograms(const ParsedMetrics& m) {
  // Per histogram child (labels without le): buckets cumulative, +Inf == count.
  for (const auto& [family, type] : m.types) {
    if (type != MetricType::kHistogram) continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    for (const ParsedSample& s : m.samples) {
      if (s.name != family + "_bucket") continue;
      auto it = s.labels.find("le");
      if (it == s.labels.end()) return InvalidArgumentError(family + "_bucket sample without le");
      double le;
      if (!ParseValue(it->second, &le)) return InvalidArgumentError(family + ": bad le " + it->second);
      auto key = s.labels;
      key.erase("le");
      buckets[key].emplace_back(le, s.value);
    }
    for (const auto& [labels, list] : buckets) {
      for (size_t i = 1; i < list.size(); ++i) {
        if (!(list[i].first > list[i - 1].first) || list[i].second < list[i - 1].second) {
          return InvalidArgumentError(family + ": buckets are not increasing and cumulative");
        }
      }
      if (list.empty() || !std::isinf(list.back().first)) {
        return InvalidArgumentError(family + ": last bucket is not le=\"+Inf\"");
      }
      std::optional<double> count = m.Find(family + "_count", labels);
      if (!count || *count != list.back().second) {
        return InvalidArgumentError(family + ": _count missing or not equal to the +Inf bucket");
      }
      if (!m.Find(family + "_sum", labels)) return InvalidArgumentError(family + ": _sum missing");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string WritePrometheusText(const std::vector<CollectedFamily>& families) {
  std::string out;
  for (const CollectedFamily& family : families) {
    out += "# HELP " + family.name + " ";
    AppendEscaped(family.help, false, &out);
    out += "\n# TYPE " + family.name + " " + MetricTypeName(family.type) + "\n";
    for (const CollectedSample& s : family.samples) {
      out += s.name;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i) out += ',';
          out += s.labels[i].first + "=\"";
          AppendEscaped(s.labels[i].second, true, &out);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      AppendValue(s.value, &out);
      out += '\n';
    }
  }
  return out;
}

std::optional<double> ParsedMetrics::Find(const std::string& name,
                                          const std::map<std::string, std::string>& labels) const {
  for (const ParsedSample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

std::vector<const ParsedSample*> ParsedMetrics::All(const std::string& name) const {
  std::vector<const ParsedSample*> out;
  for (const ParsedSample& s : samples) {
    if (s.name == name) out.push_back(&s);
  }
  return out;
}

StatusOr<ParsedMetrics> ParsePrometheusText(const std::string& text) {
  ParsedMetrics m;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (keyword == "TYPE") {
        std::string type;
        words >> type;
        if (!IsValidMetricName(name)) return LineError(line_no, "bad metric name '" + name + "'");
        MetricType t;
        if (type == "counter") t = MetricType::kCounter;
        else if (type == "gauge") t = MetricType::kGauge;
        else if (type == "histogram") t = MetricType::kHistogram;
        else return LineError(line_no, "unsupported metric type '" + type + "'");
        if (m.types.count(name)) return LineError(line_no, "second TYPE line for " + name);
        m.types[name] = t;
      } else if (keyword == "HELP") {
        size_t at = line.find(name, line.find("HELP") + 4) + name.size();
        m.help[name] = at < line.size() ? Unescape(line.substr(at + 1)) : "";
      }
      continue;  // other comments are allowed
    }
    ParsedSample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!IsValidMetricName(s.name)) return LineError(line_no, "bad metric name '" + s.name + "'");
    if (i < line.size() && line[i] == '{') GLM_RETURN_IF_ERROR(ParseLabels(line, &i, line_no, &s.labels));
    std::istringstream rest(line.substr(i));
    std::string value_token, timestamp, extra;
    rest >> value_token >> timestamp >> extra;
    if (!extra.empty()) return LineError(line_no, "trailing text after value");
    if (!ParseValue(value_token, &s.value)) {
      return LineError(line_no, "bad value '" + value_token + "' for " + s.name);
    }
    if (FamilyOf(s.name, m.types).empty()) {
      return LineError(line_no, "sample " + s.name + " has no preceding # TYPE line");
    }
    m.samples.push_back(std::move(s));
  }
  GLM_RETURN_IF_ERROR(CheckHistograms(m));
  return m;
}

}  // namespace glm::http
