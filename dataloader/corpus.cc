#include "dataloader/corpus.h"

#include <glob.h>
#include <sys/stat.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "common/options.h"
#include "dataloader/hash.h"
#include "dataloader/text_clean.h"

namespace glm::dataloader {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 1 << 16;
constexpr size_t kBinaryProbeBytes = 8192;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view StripGz(std::string_view path) {
  return EndsWith(path, ".gz") ? path.substr(0, path.size() - 3) : path;
}

bool HasCorpusExtension(std::string_view path) {
  std::string_view p = StripGz(path);
  for (std::string_view ext : {".txt", ".text", ".jsonl", ".ndjson", ".json"}) {
    if (EndsWith(p, ext)) return true;
  }
  return false;
}

bool IsWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '\n';
}

bool HasText(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!IsWhitespace(p[i])) return true;
  }
  return false;
}

// --- Byte sources -------------------------------------------------------------

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `n` bytes into buf; 0 at the end; -1 on error (see error()).
  virtual int64_t Read(char* buf, size_t n) = 0;
  virtual std::string error() const { return "read error"; }
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  int64_t Read(char* buf, size_t n) override {
    const size_t k = std::min(n, bytes_.size() - pos_);
    if (k > 0) std::memcpy(buf, bytes_.data() + pos_, k);
    pos_ += k;
    return static_cast<int64_t>(k);
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(std::FILE* f) : f_(f) {}
  ~FileSource() override { std::fclose(f_); }
  int64_t Read(char* buf, size_t n) override {
    const size_t k = std::fread(buf, 1, n, f_);
    if (k == 0 && std::ferror(f_)) return -1;
    return static_cast<int64_t>(k);
  }
  std::FILE* file() { return f_; }

 private:
  std::FILE* f_;
};

class GzSource : public ByteSource {
 public:
  explicit GzSource(gzFile f) : f_(f) {}
  ~GzSource() override { gzclose(f_); }
  int64_t Read(char* buf, size_t n) override {
    const int k = gzread(f_, buf, static_cast<unsigned>(std::min<size_t>(n, 1 << 30)));
    if (k < 0) return -1;
    if (k == 0) {
      // A stream that ends early reads as EOF with Z_BUF_ERROR pending.
      int code = Z_OK;
      gzerror(f_, &code);
      if (code == Z_BUF_ERROR) return -1;
    }
    return k;
  }
  std::string error() const override {
    int code = 0;
    const char* msg = gzerror(f_, &code);
    if (code == Z_BUF_ERROR) return "gzip: unexpected end of the compressed stream";
    return std::string("gzip: ") + (msg ? msg : "error");
  }

 private:
  gzFile f_;
};

// --- Document sink: clean, trim, split, deliver ---------------------------------

class DocumentSink {
 public:
  DocumentSink(const CorpusOptions& options, const DocumentCallback& callback, CorpusStats* stats,
               uint64_t* ordinal)
      : options_(options), callback_(callback), stats_(stats), ordinal_(ordinal) {}

  // Delivers a whole document (split when over the limit).
  Status Emit(std::string_view raw, const std::string& source) {
    bool split = false;
    while (static_cast<int64_t>(raw.size()) > options_.max_document_bytes) {
      const size_t cut = CutPoint(raw);
      if (!split) ++stats_->documents_split;
      GLM_RETURN_IF_ERROR(Deliver(raw.substr(0, cut), source, split));
      split = true;
      raw.remove_prefix(cut);
    }
    return Deliver(raw, source, split);
  }

  // Streaming form: delivers leading pieces of *buffer while it is over the
  // limit, keeping the rest; `*split` remembers a split already happened.
  Status Drain(std::string* buffer, const std::string& source, bool* split) {
    size_t consumed = 0;
    while (static_cast<int64_t>(buffer->size() - consumed) > options_.max_document_bytes) {
      std::string_view rest(buffer->data() + consumed, buffer->size() - consumed);
      const size_t cut = CutPoint(rest);
      if (!*split) ++stats_->documents_split;
      GLM_RETURN_IF_ERROR(Deliver(rest.substr(0, cut), source, *split));
      *split = true;
      consumed += cut;
    }
    if (consumed > 0) buffer->erase(0, consumed);
    return Status::Ok();
  }

  Status Finish(std::string_view raw, const std::string& source, bool split) {
    return Deliver(raw, source, split);
  }

 private:
  // Where to cut a piece of at most max_document_bytes: the last whitespace in
  // its second half, else the last UTF-8 character boundary.
  size_t CutPoint(std::string_view raw) const {
    const size_t max = static_cast<size_t>(options_.max_document_bytes);
    for (size_t i = max; i > max / 2; --i) {
      if (IsWhitespace(raw[i - 1])) return i;
    }
    size_t i = max;
    for (int back = 0; back < 4 && i > 1 && (static_cast<unsigned char>(raw[i]) & 0xC0) == 0x80;
         ++back) {
      --i;
    }
    return i;
  }

  Status Deliver(std::string_view raw, const std::string& source, bool continuation) {
    RawDocument doc;
    CleanTextCounts counts;
    CleanText(TrimWhitespace(raw), options_.normalize_punctuation, &doc.text, &counts);
    stats_->invalid_utf8 += counts.invalid_utf8;
    stats_->punctuation_normalized += counts.punctuation_normalized;
    if (counts.invalid_utf8 > 0) ++stats_->documents_repaired;
    if (TrimWhitespace(doc.text).empty()) {
      if (!continuation) ++stats_->empty_skipped;  // a split's empty tail is not a document
      return Status::Ok();
    }
    if (continuation) ++stats_->split_pieces;
    doc.source = source;
    doc.ordinal = (*ordinal_)++;
    ++stats_->documents;
    return callback_(std::move(doc));
  }

  const CorpusOptions& options_;
  const DocumentCallback& callback_;
  CorpusStats* stats_;
  uint64_t* ordinal_;
};

// Reads the first chunk, counting bytes; false when the source looks binary.
struct ReadContext {
  const CorpusOptions& options;
  CorpusStats* stats;
  DocumentSink* sink;
  std::string name;           // file path for messages and sources
  uint64_t first_offset = 0;  // absolute offset of the first byte read
  uint64_t range_end = UINT64_MAX;  // stop before a record starting here
  bool skip_first_record = false;   // text range: inside a document at the start
  bool check_binary = true;
};

Status ReadFailure(ByteSource* source, const std::string& name) {
  return DataLossError("reading " + name + ": " + source->error() +
                       " (truncated or corrupt file?)");
}

// --- text ------------------------------------------------------------------------

Status ReadText(ByteSource* source, ReadContext* ctx, bool one_per_file) {
  std::vector<char> chunk(kChunkBytes);
  std::string doc;
  bool split = false;
  bool line_has_text = false;
  bool doc_has_text = false;
  bool skipping = ctx->skip_first_record;
  uint64_t line_no = 1, doc_line = 1;
  uint64_t offset = ctx->first_offset, line_start = ctx->first_offset;
  bool first = true;
  auto source_name = [&] {
    return one_per_file ? ctx->name : ctx->name + ":" + std::to_string(doc_line);
  };
  for (;;) {
    const int64_t k = source->Read(chunk.data(), chunk.size());
    if (k < 0) return ReadFailure(source, ctx->name);
    if (k == 0) break;
    ctx->stats->bytes += static_cast<uint64_t>(k);
    if (first && ctx->check_binary &&
        LooksBinary(std::string_view(chunk.data(), std::min<size_t>(k, kBinaryProbeBytes)))) {
      ++ctx->stats->files_skipped;
      return Status::Ok();
    }
    first = false;
    const char* p = chunk.data();
    const char* end = p + k;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      const char* seg_end = nl ? nl : end;
      const size_t seg = static_cast<size_t>(seg_end - p);
      if (!line_has_text && HasText(p, seg)) {
        line_has_text = true;
        if (!skipping && !doc_has_text) {
          // A document starts on this line; a byte-range shard stops before
          // the first document that starts past its range.
          if (!one_per_file && line_start >= ctx->range_end) return Status::Ok();
          doc_line = line_no;
          doc_has_text = true;
        }
      }
      if (!skipping) {
        doc.append(p, seg);
        GLM_RETURN_IF_ERROR(ctx->sink->Drain(&doc, source_name(), &split));
      }
      offset += seg;
      p = seg_end;
      if (nl) {
        if (!line_has_text && !one_per_file) {
          // A blank line ends the document (or the skipped partial one).
          if (skipping) {
            skipping = false;
          } else if (doc_has_text) {
            GLM_RETURN_IF_ERROR(ctx->sink->Finish(doc, source_name(), split));
          }
          doc.clear();
          doc_has_text = false;
          split = false;
        } else if (!skipping) {
          doc.push_back('\n');
        }
        ++p;
        ++offset;
        ++line_no;
        line_start = offset;
        line_has_text = false;
      }
    }
  }
  if (one_per_file || doc_has_text) return ctx->sink->Finish(doc, source_name(), split);
  return Status::Ok();
}

// --- JSON records ------------------------------------------------------------------

// Returns the document text of one parsed record, or false when malformed.
bool RecordText(const nlohmann::json& record, const std::string& field, std::string* text) {
  if (record.is_string()) {
    *text = record.get<std::string>();
    return true;
  }
  if (!record.is_object()) return false;
  auto it = record.find(field);
  if (it == record.end() || !it->is_string()) return false;
  *text = it->get<std::string>();
  return true;
}

// True when `bytes` has a byte outside ASCII (only then can UTF-8 be invalid).
bool HasHighBytes(std::string_view bytes) {
  for (char c : bytes) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

// Where a chunk's trailing, possibly incomplete UTF-8 sequence starts (the
// bytes from there on wait for the next chunk); `bytes.size()` if it ends on
// a complete sequence or an invalid byte (which repair replaces anyway).
size_t CompleteUtf8Prefix(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

Status ReadJsonl(ByteSource* source, ReadContext* ctx) {
  std::vector<char> chunk(kChunkBytes);
  std::string line;
  bool too_long = false;
  uint64_t line_no = 1, offset = ctx->first_offset, line_start = ctx->first_offset;
  bool first = true;
  auto finish_line = [&]() -> Status {
    if (too_long) {
      ++ctx->stats->lines_too_long;
    } else if (HasText(line.data(), line.size())) {
      // Invalid UTF-8 (which the JSON parser refuses) is replaced by U+FFFD
      // first; it never touches JSON's ASCII structure.
      CleanTextCounts repaired;
      if (HasHighBytes(line)) {
        std::string clean;
        CleanText(line, /*normalize_punctuation=*/false, &clean, &repaired);
        if (repaired.invalid_utf8 > 0) line.swap(clean);
      }
      nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      std::string text;
      if (record.is_discarded() || !RecordText(record, ctx->options.text_field, &text)) {
        ++ctx->stats->malformed_skipped;
      } else {
        if (repaired.invalid_utf8 > 0) {
          ctx->stats->invalid_utf8 += repaired.invalid_utf8;
          ++ctx->stats->documents_repaired;
        }
        GLM_RETURN_IF_ERROR(ctx->sink->Emit(text, ctx->name + ":" + std::to_string(line_no)));
      }
    }
    line.clear();
    too_long = false;
    return Status::Ok();
  };
  for (;;) {
    const int64_t k = source->Read(chunk.data(), chunk.size());
    if (k < 0) return ReadFailure(source, ctx->name);
    if (k == 0) break;
    ctx->stats->bytes += static_cast<uint64_t>(k);
    if (first && ctx->check_binary &&
        LooksBinary(std::string_view(chunk.data(), std::min<size_t>(k, kBinaryProbeBytes)))) {
      ++ctx->stats->files_skipped;
      return Status::Ok();
    }
    first = false;
    const char* p = chunk.data();
    const char* end = p + k;
    while (p < end) {
      if (line.empty() && !too_long && line_start >= ctx->range_end) return Status::Ok();
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      const char* seg_end = nl ? nl : end;
      const size_t seg = static_cast<size_t>(seg_end - p);
      if (!too_long) {
        if (static_cast<int64_t>(line.size() + seg) > ctx->options.max_line_bytes) {
          too_long = true;
          line.clear();
          line.shrink_to_fit();
        } else {
          line.append(p, seg);
        }
      }
      offset += seg;
      p = seg_end;
      if (nl) {
        GLM_RETURN_IF_ERROR(finish_line());
        ++p;
        ++offset;
        ++line_no;
        line_start = offset;
      }
    }
  }
  if (!line.empty() || too_long) GLM_RETURN_IF_ERROR(finish_line());
  return Status::Ok();
}

// std::streambuf over a ByteSource, for nlohmann's SAX parser.
class SourceStreamBuf : public std::streambuf {
 public:
  SourceStreamBuf(ByteSource* source, ReadContext* ctx) : source_(source), ctx_(ctx), buf_(kChunkBytes) {}
  bool failed() const { return failed_; }
  bool binary() const { return binary_; }
  // Invalid UTF-8 sequences replaced so far (the JSON parser refuses them).
  uint64_t invalid_utf8() const { return invalid_utf8_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    while (true) {
      const int64_t k = source_->Read(buf_.data(), buf_.size());
      if (k < 0) failed_ = true;
      if (k <= 0) {
        if (carry_.empty()) return traits_type::eof();
        Repair(std::exchange(carry_, std::string()));  // a truncated last character
        break;
      }
      if (first_ && ctx_->check_binary &&
          LooksBinary(std::string_view(buf_.data(), std::min<size_t>(k, kBinaryProbeBytes)))) {
        binary_ = true;
        return traits_type::eof();
      }
      first_ = false;
      ctx_->stats->bytes += static_cast<uint64_t>(k);
      std::string_view chunk(buf_.data(), static_cast<size_t>(k));
      if (carry_.empty() && !HasHighBytes(chunk)) {
        setg(buf_.data(), buf_.data(), buf_.data() + k);
        return traits_type::to_int_type(*gptr());
      }
      // Non-ASCII: repair invalid UTF-8, holding back a character that
      // continues in the next chunk.
      std::string bytes = std::exchange(carry_, std::string());
      bytes.append(chunk);
      const size_t keep = CompleteUtf8Prefix(bytes);
      carry_ = bytes.substr(keep);
      bytes.resize(keep);
      if (bytes.empty()) continue;
      Repair(std::move(bytes));
      break;
    }
    setg(out_.data(), out_.data(), out_.data() + out_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  void Repair(std::string bytes) {
    out_.clear();
    CleanTextCounts counts;
    CleanText(bytes, /*normalize_punctuation=*/false, &out_, &counts);
    invalid_utf8_ += counts.invalid_utf8;
  }

  ByteSource* source_;
  ReadContext* ctx_;
  std::vector<char> buf_;
  std::string carry_;  // the start of a character split across chunks
  std::string out_;    // repaired bytes being served
  uint64_t invalid_utf8_ = 0;
  bool failed_ = false, binary_ = false, first_ = true;
};

// Collects records at depth 1 (a top-level object) or 2 (objects or strings
// in a top-level array) and delivers their text field.
class JsonRecordHandler : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit JsonRecordHandler(ReadContext* ctx) : ctx_(ctx) {}
  Status status() const { return status_; }
  bool failed_parse() const { return failed_parse_; }
  uint64_t records() const { return records_; }

  bool null() override { return Scalar(); }
  bool boolean(bool) override { return Scalar(); }
  bool number_integer(number_integer_t) override { return Scalar(); }
  bool number_unsigned(number_unsigned_t) override { return Scalar(); }
  bool number_float(number_float_t, const string_t&) override { return Scalar(); }
  bool binary(binary_t&) override { return Scalar(); }
  bool string(string_t& val) override {
    if (top_is_array_ && depth_ == 1) {
      ++records_;
      return Deliver(val);
    }
    if (in_record_ && depth_ == record_depth_ && key_is_text_) {
      text_ = std::move(val);
      has_text_ = true;
    }
    key_is_text_ = false;
    return true;
  }
  bool start_object(std::size_t) override {
    key_is_text_ = false;
    ++depth_;
    if (depth_ == 1 || (depth_ == 2 && top_is_array_)) {
      in_record_ = true;
      record_depth_ = depth_;
      has_text_ = false;
      text_.clear();
    }
    return true;
  }
  bool key(string_t& val) override {
    if (in_record_ && depth_ == record_depth_) key_is_text_ = val == ctx_->options.text_field;
    return true;
  }
  bool end_object() override {
    if (in_record_ && depth_ == record_depth_) {
      in_record_ = false;
      ++records_;
      if (!has_text_) {
        ++ctx_->stats->malformed_skipped;
      } else if (!Deliver(text_)) {
        return false;
      }
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    key_is_text_ = false;
    ++depth_;
    if (depth_ == 1) top_is_array_ = true;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    failed_parse_ = true;
    return false;
  }

 private:
  bool Scalar() {
    if (top_is_array_ && depth_ == 1) ++ctx_->stats->malformed_skipped;
    key_is_text_ = false;
    return true;
  }
  bool Deliver(const std::string& text) {
    status_ = ctx_->sink->Emit(text, ctx_->name + "#" + std::to_string(records_ - 1));
    return status_.ok();
  }

  ReadContext* ctx_;
  Status status_;
  int depth_ = 0;
  int record_depth_ = 0;
  bool top_is_array_ = false;
  bool in_record_ = false;
  bool key_is_text_ = false;
  bool has_text_ = false;
  bool failed_parse_ = false;
  uint64_t records_ = 0;
  std::string text_;
};

Status ReadJson(ByteSource* source, ReadContext* ctx) {
  SourceStreamBuf buf(source, ctx);
  std::istream in(&buf);
  JsonRecordHandler handler(ctx);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(in, &handler);
  } catch (const std::exception&) {
    ok = false;
  }
  if (buf.binary()) {
    ++ctx->stats->files_skipped;
    return Status::Ok();
  }
  if (buf.failed()) return ReadFailure(source, ctx->name);
  GLM_RETURN_IF_ERROR(handler.status());
  // Counted per file: the documents they fell in are not tracked here.
  ctx->stats->invalid_utf8 += buf.invalid_utf8();
  if (!ok) {
    // Records before the error were delivered; the rest of the file is lost.
    ++ctx->stats->malformed_skipped;
  }
  return Status::Ok();
}

Status ReadSource(ByteSource* source, CorpusFormat format, ReadContext* ctx) {
  switch (format) {
    case CorpusFormat::kText:
      return ReadText(source, ctx, ctx->options.text_split == "file");
    case CorpusFormat::kJsonl:
      return ReadJsonl(source, ctx);
    case CorpusFormat::kJson:
      return ReadJson(source, ctx);
  }
  return InternalError("unknown corpus format");
}

// True when the line that ends just before `line_start` is blank
// (whitespace only) or there is none.
bool PreviousLineBlank(std::FILE* f, uint64_t line_start) {
  if (line_start == 0) return true;
  int64_t pos = static_cast<int64_t>(line_start) - 2;  // skip that line's '\n'
  while (pos >= 0) {
    if (std::fseek(f, pos, SEEK_SET) != 0) return true;
    const int c = std::fgetc(f);
    if (c == '\n') return true;
    if (c == EOF || !IsWhitespace(static_cast<char>(c))) return c == EOF;
    --pos;
  }
  return true;
}

Status ReadPart(const CorpusOptions& options, const CorpusShardPart& part, DocumentSink* sink,
                CorpusStats* stats) {
  ReadContext ctx{options, stats, sink, part.path};
  ++stats->files;
  if (EndsWith(part.path, ".gz")) {
    gzFile gz = gzopen(part.path.c_str(), "rb");
    if (gz == nullptr) {
      return NotFoundError("cannot open corpus file " + part.path + ": " + std::strerror(errno));
    }
    gzbuffer(gz, 1 << 17);
    GzSource source(gz);
    return ReadSource(&source, part.format, &ctx);
  }
  std::FILE* f = std::fopen(part.path.c_str(), "rb");
  if (f == nullptr) {
    return NotFoundError("cannot open corpus file " + part.path + ": " + std::strerror(errno));
  }
  FileSource source(f);
  if (!part.whole_file) {
    ctx.range_end = part.end;
    if (part.begin > 0) {
      // Start at the first line that begins at or after `begin`.
      if (std::fseek(f, static_cast<long>(part.begin - 1), SEEK_SET) != 0) {
        return DataLossError("cannot seek to byte " + std::to_string(part.begin) + " of " +
                             part.path + " (did the file shrink?)");
      }
      uint64_t pos = part.begin - 1;
      int c;
      while ((c = std::fgetc(f)) != EOF && c != '\n') ++pos;
      if (c == EOF) return Status::Ok();
      const uint64_t line_start = pos + 1;
      if (part.format == CorpusFormat::kText) {
        ctx.skip_first_record = !PreviousLineBlank(f, line_start);
      }
      std::fseek(f, static_cast<long>(line_start), SEEK_SET);
      ctx.first_offset = line_start;
      ctx.check_binary = false;
      if (line_start >= part.end) return Status::Ok();
    }
  }
  return ReadSource(&source, part.format, &ctx);
}

std::string HumanBytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ULL << 30)) std::snprintf(buf, sizeof(buf), "%.1f GiB", bytes / 1073741824.0);
  else if (bytes >= (1ULL << 20)) std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  else if (bytes >= 1024) std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  else std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace

Status CorpusOptions::Validate() const {
  if (paths.empty()) {
    return InvalidArgumentError("no corpus given: set " + DescribeOption("input") +
                                " to files, directories or globs (e.g. 'data/sotu/*.txt')");
  }
  GLM_RETURN_IF_ERROR(RequireOneOf("format", format, {"auto", "text", "jsonl", "json"}));
  GLM_RETURN_IF_ERROR(RequireOneOf("text-split", text_split, {"blank-line", "file"}));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("text-field", text_field));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-document-bytes", max_document_bytes, 16));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-line-bytes", max_line_bytes, 16));
  GLM_RETURN_IF_ERROR(RequireAtLeast("shard-bytes", shard_bytes, 1));
  return Status::Ok();
}

void CorpusStats::Add(const CorpusStats& o) {
  files += o.files;
  files_skipped += o.files_skipped;
  bytes += o.bytes;
  documents += o.documents;
  empty_skipped += o.empty_skipped;
  malformed_skipped += o.malformed_skipped;
  lines_too_long += o.lines_too_long;
  documents_split += o.documents_split;
  split_pieces += o.split_pieces;
  documents_repaired += o.documents_repaired;
  invalid_utf8 += o.invalid_utf8;
  punctuation_normalized += o.punctuation_normalized;
}

std::string CorpusStats::ToString() const {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "read %llu documents (%s) from %llu files; skipped: %llu empty, %llu malformed "
                "records, %llu over-long lines, %llu binary files; split: %llu documents into "
                "%llu extra pieces; repaired: %llu documents (%llu invalid UTF-8 sequences); "
                "punctuation normalised: %llu",
                static_cast<unsigned long long>(documents), HumanBytes(bytes).c_str(),
                static_cast<unsigned long long>(files), static_cast<unsigned long long>(empty_skipped),
                static_cast<unsigned long long>(malformed_skipped),
                static_cast<unsigned long long>(lines_too_long),
                static_cast<unsigned long long>(files_skipped),
                static_cast<unsigned long long>(documents_split),
                static_cast<unsigned long long>(split_pieces),
                static_cast<unsigned long long>(documents_repaired),
                static_cast<unsigned long long>(invalid_utf8),
                static_cast<unsigned long long>(punctuation_normalized));
  return buf;
}

CorpusFormat FormatForPath(const CorpusOptions& options, std::string_view path) {
  if (options.format == "text") return CorpusFormat::kText;
  if (options.format == "jsonl") return CorpusFormat::kJsonl;
  if (options.format == "json") return CorpusFormat::kJson;
  std::string_view p = StripGz(path);
  if (EndsWith(p, ".jsonl") || EndsWith(p, ".ndjson")) return CorpusFormat::kJsonl;
  if (EndsWith(p, ".json")) return CorpusFormat::kJson;
  return CorpusFormat::kText;
}

StatusOr<std::vector<std::string>> ExpandCorpusPaths(const CorpusOptions& options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  std::set<std::string> files;
  auto add_path = [&](const std::string& path) -> Status {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(path, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && HasCorpusExtension(it->path().string())) {
          files.insert(it->path().string());
        }
      }
      if (ec) return NotFoundError("cannot list corpus directory " + path + ": " + ec.message());
      return Status::Ok();
    }
    if (fs::is_regular_file(path, ec)) {
      files.insert(path);
      return Status::Ok();
    }
    return NotFoundError("corpus path " + path + " is not a file or directory");
  };
  for (const std::string& p : options.paths) {
    if (p.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      const int rc = ::glob(p.c_str(), 0, nullptr, &g);
      if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        globfree(&g);
        return InvalidArgumentError("corpus glob '" + p +
                                    "' matches no files (HINT: for the default corpus run "
                                    "scripts/setup, which fetches data/sotu)");
      }
      if (rc != 0) {
        globfree(&g);
        return InvalidArgumentError("corpus glob '" + p + "' failed");
      }
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        Status s = add_path(g.gl_pathv[i]);
        if (!s.ok()) {
          globfree(&g);
          return s;
        }
      }
      globfree(&g);
    } else {
      GLM_RETURN_IF_ERROR(add_path(p));
    }
  }
  if (files.empty()) {
    return InvalidArgumentError("the corpus paths name no readable files with a known extension "
                                "(.txt .text .jsonl .ndjson .json, optionally .gz)");
  }
  return std::vector<std::string>(files.begin(), files.end());
}

StatusOr<std::vector<CorpusShard>> PlanShards(const CorpusOptions& options) {
  GLM_ASSIGN_OR_RETURN(std::vector<std::string> files, ExpandCorpusPaths(options));
  const uint64_t target = static_cast<uint64_t>(options.shard_bytes);
  std::vector<CorpusShard> shards;
  CorpusShard group;
  auto flush_group = [&] {
    if (!group.parts.empty()) {
      group.index = static_cast<uint32_t>(shards.size());
      shards.push_back(std::move(group));
      group = CorpusShard();
    }
  };
  for (const std::string& path : files) {
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return NotFoundError("cannot stat corpus file " + path + ": " + ec.message());
    CorpusShardPart part;
    part.path = path;
    part.format = FormatForPath(options, path);
    const bool splittable = !EndsWith(path, ".gz") &&
                            (part.format == CorpusFormat::kJsonl ||
                             (part.format == CorpusFormat::kText && options.text_split == "blank-line"));
    if (splittable && size > target) {
      flush_group();
      for (uint64_t begin = 0; begin < size; begin += target) {
        CorpusShard shard;
        CorpusShardPart range = part;
        range.whole_file = false;
        range.begin = begin;
        range.end = std::min(size, begin + target);
        shard.bytes = range.end - range.begin;
        shard.parts.push_back(range);
        shard.index = static_cast<uint32_t>(shards.size());
        shards.push_back(std::move(shard));
      }
      continue;
    }
    part.end = size;
    group.parts.push_back(part);
    group.bytes += size;
    if (group.bytes >= target) flush_group();
  }
  flush_group();
  return shards;
}

uint64_t ShardPlanHash(const std::vector<CorpusShard>& shards) {
  Hasher h;
  h.Update("glm-shards-v1");
  h.UpdateU64(shards.size());
  for (const CorpusShard& shard : shards) {
    h.UpdateU64(shard.parts.size());
    for (const CorpusShardPart& p : shard.parts) {
      h.UpdateU64(p.path.size());
      h.Update(p.path);
      h.UpdateU64(static_cast<uint64_t>(p.format));
      h.UpdateU64(p.whole_file ? 1 : 0);
      h.UpdateU64(p.begin);
      h.UpdateU64(p.end);
    }
  }
  return h.Finish();
}

namespace {

Status ReadShardWithOrdinal(const CorpusOptions& options, const CorpusShard& shard,
                            const DocumentCallback& callback, CorpusStats* stats,
                            uint64_t* ordinal) {
  DocumentSink sink(options, callback, stats, ordinal);
  for (const CorpusShardPart& part : shard.parts) {
    GLM_RETURN_IF_ERROR(ReadPart(options, part, &sink, stats));
  }
  return Status::Ok();
}

}  // namespace

Status ReadShard(const CorpusOptions& options, const CorpusShard& shard,
                 const DocumentCallback& callback, CorpusStats* stats) {
  GLM_RETURN_IF_ERROR(options.Validate());
  uint64_t ordinal = 0;
  return ReadShardWithOrdinal(options, shard, callback, stats, &ordinal);
}

Status ReadCorpus(const CorpusOptions& options, const DocumentCallback& callback,
                  CorpusStats* stats) {
  GLM_ASSIGN_OR_RETURN(std::vector<CorpusShard> shards, PlanShards(options));
  uint64_t ordinal = 0;
  for (const CorpusShard& shard : shards) {
    GLM_RETURN_IF_ERROR(ReadShardWithOrdinal(options, shard, callback, stats, &ordinal));
  }
  return Status::Ok();
}

Status ReadDocumentsFromBuffer(std::string_view bytes, CorpusFormat format,
                               const CorpusOptions& options, const DocumentCallback& callback,
                               CorpusStats* stats) {
  uint64_t ordinal = 0;
  DocumentSink sink(options, callback, stats, &ordinal);
  ReadContext ctx{options, stats, &sink, "<buffer>"};
  MemorySource source(bytes);
  return ReadSource(&source, format, &ctx);
}

}  // namespace glm::dataloader
