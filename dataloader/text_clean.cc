#include "dataloader/text_clean.h"

#include <cstring>

namespace glm::dataloader {

void CleanText(std::string_view in, bool normalize_punctuation, std::string* out,
               CleanTextCounts* counts) {
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  out->reserve(out->size() + n);
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      // ASCII run: copy in one go.
      size_t j = i + 1;
      while (j < n && s[j] < 0x80) ++j;
      out->append(in.data() + i, j - i);
      i = j;
      continue;
    }
    // Expected length and the allowed range of the second byte (Unicode
    // Table 3-7, well-formed UTF-8 byte sequences).
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3, lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      len = 3, hi = 0x9F;
    } else if (c == 0xF0) {
      len = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4, hi = 0x8F;
    }
    size_t valid = 0;  // bytes of the longest valid prefix
    if (len > 0) {
      valid = 1;
      if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
        valid = 2;
        while (static_cast<int>(valid) < len && i + valid < n && s[i + valid] >= 0x80 &&
               s[i + valid] <= 0xBF) {
          ++valid;
        }
      }
    }
    if (len > 0 && static_cast<int>(valid) == len) {
      if (normalize_punctuation && len == 3 && c == 0xE2 && s[i + 1] == 0x80) {
        const unsigned char t = s[i + 2];
        char replacement = 0;
        if (t == 0x9C || t == 0x9D) replacement = '"';
        else if (t == 0x98 || t == 0x99) replacement = '\'';
        else if (t == 0x93) replacement = '-';
        if (replacement != 0) {
          out->push_back(replacement);
          ++counts->punctuation_normalized;
          i += 3;
          continue;
        }
      }
      out->append(in.data() + i, len);
      i += len;
      continue;
    }
    // Invalid: replace the maximal subpart (at least one byte).
    out->append("\xEF\xBF\xBD");
    ++counts->invalid_utf8;
    i += valid > 0 ? valid : 1;
  }
}

std::string_view TrimWhitespace(std::string_view in) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t b = 0, e = in.size();
  while (b < e && ws(in[b])) ++b;
  while (e > b && ws(in[e - 1])) --e;
  return in.substr(b, e - b);
}

bool LooksBinary(std::string_view bytes) {
  return !bytes.empty() && std::memchr(bytes.data(), 0, bytes.size()) != nullptr;
}

}  // namespace glm::dataloader
