// Corpus readers: plain text, JSONL and JSON files (optionally gzip'd), named
// by files, directories and globs, read as a stream of documents with
// bounded memory. A corpus is a CorpusOptions value, so another corpus is a
// config change.
//
//   CorpusOptions corpus;
//   corpus.paths = {"data/sotu/*.txt"};
//   CorpusStats stats;
//   GLM_RETURN_IF_ERROR(ReadCorpus(corpus, [&](RawDocument&& d) { ...; return Status::Ok(); },
//                                  &stats));
//   spdlog::info("{}", stats.ToString());
//
// Sharding for tokenizer actors: PlanShards cuts the corpus into shards
// (groups of small files, or byte ranges of large uncompressed text/JSONL
// files) deterministically; ReadShard reads one. Every document belongs to
// exactly one shard: a byte-range shard owns the documents that *start* in
// its range (and reads past its end to finish the last one).
//
// Formats (docs/data-pipeline.md):
//   text   documents separated by blank (whitespace-only) lines, or one
//          document per file with text_split = "file"
//   jsonl  one JSON object per line; the document is its `text_field` string
//   json   one JSON object, or an array of objects, per file
// Each document is repaired (invalid UTF-8 -> U+FFFD, counted), punctuation-
// normalised, trimmed; empty ones are skipped and counted; ones longer than
// max_document_bytes are split (at whitespace when possible) and counted.
//
// Thread-safety: the functions are reentrant; callbacks run on the caller's
// thread.
#ifndef GLM_DATALOADER_CORPUS_H_
#define GLM_DATALOADER_CORPUS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace glm::dataloader {

enum class CorpusFormat { kText, kJsonl, kJson };

struct CorpusOptions {
  // Files, directories (searched recursively for files with a known
  // extension: .txt .text .jsonl .ndjson .json, each optionally .gz) and
  // glob patterns. Expanded and sorted, so the order never depends on the
  // file system. Default: none (required).
  std::vector<std::string> paths;
  std::string format = "auto";       // Default: auto (by extension: .jsonl/.ndjson, .json, else text)
  std::string text_field = "text";   // Default: text (the JSON key holding a document)
  std::string text_split = "blank-line";  // Default: blank-line; or "file": one document per file
  bool normalize_punctuation = true;      // Default: true (GLM_SPEC 1.1)
  int64_t max_document_bytes = 1 << 20;   // Default: 1 MiB; longer documents are split
  int64_t max_line_bytes = 64 << 20;      // Default: 64 MiB; longer JSONL lines are skipped
  int64_t shard_bytes = 16 << 20;         // Default: 16 MiB; PlanShards' target shard size

  Status Validate() const;
};

// What a read did; printed after every read (ToString) and summed over shards.
struct CorpusStats {
  uint64_t files = 0;                   // files opened
  uint64_t files_skipped = 0;           // binary files (a NUL byte in the first 8 KiB)
  uint64_t bytes = 0;                   // bytes read (decompressed)
  uint64_t documents = 0;               // documents delivered
  uint64_t empty_skipped = 0;           // empty or whitespace-only documents skipped
  uint64_t malformed_skipped = 0;       // JSON records that did not parse or had no text field
  uint64_t lines_too_long = 0;          // JSONL lines over max_line_bytes (skipped)
  uint64_t documents_split = 0;         // documents over max_document_bytes
  uint64_t split_pieces = 0;            // extra documents those splits produced
  uint64_t documents_repaired = 0;      // documents with invalid UTF-8 replaced
  uint64_t invalid_utf8 = 0;            // invalid UTF-8 sequences replaced by U+FFFD
  uint64_t punctuation_normalized = 0;  // characters changed by the normalisation

  void Add(const CorpusStats& other);
  // "read 233 documents (10.7 MB) from 233 files; skipped: 0 empty, ...".
  std::string ToString() const;
};

struct RawDocument {
  std::string text;     // cleaned UTF-8
  std::string source;   // "path" or "path:line" (1-based line of the record or first line)
  uint64_t ordinal = 0; // index among the documents of its shard (or of the whole read)
};

using DocumentCallback = std::function<Status(RawDocument&& document)>;

// One file or byte range of one file.
struct CorpusShardPart {
  std::string path;
  CorpusFormat format = CorpusFormat::kText;
  uint64_t begin = 0;   // byte range [begin, end) of the file; whole file when
  uint64_t end = 0;     //   whole_file is true
  bool whole_file = true;
};

struct CorpusShard {
  uint32_t index = 0;                  // 0..num_shards-1, the manifest order
  std::vector<CorpusShardPart> parts;  // read in this order
  uint64_t bytes = 0;                  // file bytes covered (compressed size for .gz)
};

// The files `options.paths` name, sorted and de-duplicated. InvalidArgument
// when a path does not exist or a glob matches nothing.
StatusOr<std::vector<std::string>> ExpandCorpusPaths(const CorpusOptions& options);

// The format a file is read with.
CorpusFormat FormatForPath(const CorpusOptions& options, std::string_view path);

// Deterministic shards of about options.shard_bytes each.
StatusOr<std::vector<CorpusShard>> PlanShards(const CorpusOptions& options);

// Names a shard plan: paths, formats, ranges and file sizes.
uint64_t ShardPlanHash(const std::vector<CorpusShard>& shards);

// Reads one shard; *stats is added to. A callback error stops the read and
// is returned.
Status ReadShard(const CorpusOptions& options, const CorpusShard& shard,
                 const DocumentCallback& callback, CorpusStats* stats);

// Reads every shard of PlanShards(options) in order; ordinals count across
// the whole corpus.
Status ReadCorpus(const CorpusOptions& options, const DocumentCallback& callback,
                  CorpusStats* stats);

// Parses an in-memory file (the fuzz target's entry point; tests).
Status ReadDocumentsFromBuffer(std::string_view bytes, CorpusFormat format,
                               const CorpusOptions& options, const DocumentCallback& callback,
                               CorpusStats* stats);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_CORPUS_H_
