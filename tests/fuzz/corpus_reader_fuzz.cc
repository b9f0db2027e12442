// libFuzzer target: the corpus readers on arbitrary bytes. The first byte
// picks the format and the split limit; the rest is the file. Besides not
// crashing (ASan/UBSan watch), every delivered document must be non-empty,
// valid UTF-8 and within the size bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dataloader/corpus.h"
#include "dataloader/text_clean.h"

using glm::Status;
using glm::dataloader::CleanText;
using glm::dataloader::CleanTextCounts;
using glm::dataloader::CorpusFormat;
using glm::dataloader::CorpusOptions;
using glm::dataloader::CorpusStats;
using glm::dataloader::RawDocument;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  CorpusOptions options;
  options.paths = {"<fuzz>"};
  options.max_document_bytes = 16 + (mode >> 3);  // small: exercise splitting
  options.max_line_bytes = 64 + (mode >> 2);
  options.normalize_punctuation = (mode & 4) != 0;
  CorpusFormat format = CorpusFormat::kText;
  switch (mode & 3) {
    case 0: format = CorpusFormat::kText; break;
    case 1: format = CorpusFormat::kText; options.text_split = "file"; break;
    case 2: format = CorpusFormat::kJsonl; break;
    case 3: format = CorpusFormat::kJson; break;
  }
  CorpusStats stats;
  Status s = glm::dataloader::ReadDocumentsFromBuffer(
      bytes, format, options,
      [&](RawDocument&& doc) {
        if (doc.text.empty()) std::abort();
        // Repaired text is valid UTF-8: cleaning it again changes nothing.
        std::string again;
        CleanTextCounts counts;
        CleanText(doc.text, false, &again, &counts);
        if (counts.invalid_utf8 != 0 || again != doc.text) std::abort();
        // A piece holds at most max_document_bytes raw bytes; repair can
        // turn each raw byte into at most 3 (U+FFFD).
        if (format != CorpusFormat::kJson && format != CorpusFormat::kJsonl &&
            doc.text.size() > 3 * static_cast<size_t>(options.max_document_bytes)) {
          std::abort();
        }
        return Status::Ok();
      },
      &stats);
  if (!s.ok()) std::abort();  // a buffer has no I/O errors to report
  return 0;
}
