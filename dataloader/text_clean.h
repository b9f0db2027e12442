// Text repair applied to every document before tokenization: invalid UTF-8
// replaced, the reference's punctuation normalisation (GLM_SPEC.md 1.1),
// surrounding whitespace trimmed.
//
// Thread-safety: pure functions.
#ifndef GLM_DATALOADER_TEXT_CLEAN_H_
#define GLM_DATALOADER_TEXT_CLEAN_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace glm::dataloader {

struct CleanTextCounts {
  uint64_t invalid_utf8 = 0;            // maximal invalid sequences replaced by U+FFFD
  uint64_t punctuation_normalized = 0;  // curly quotes and en dashes made ASCII
};

// Appends the cleaned `in` to *out: every maximal invalid UTF-8 subsequence
// (WHATWG/Unicode "substitution of maximal subparts") becomes U+FFFD; with
// `normalize_punctuation`, U+201C/U+201D become ", U+2018/U+2019 become ' and
// U+2013 becomes - (the reference's punctuation_standardization).
void CleanText(std::string_view in, bool normalize_punctuation, std::string* out,
               CleanTextCounts* counts);

// `in` without leading and trailing ASCII whitespace.
std::string_view TrimWhitespace(std::string_view in);

// True when `bytes` look binary: they contain a NUL byte.
bool LooksBinary(std::string_view bytes);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_TEXT_CLEAN_H_
