#include "schema/record_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <memory>

#include "schema/packing.h"
#include "schema/store.capnp.h"

namespace glm::schema {
namespace {

// Token arrays are copied as raw bytes into and out of Cap'n Proto lists,
// whose wire encoding is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "glm's record codec assumes a little-endian host");

namespace cp = ::glm::schema::capnp;
using ::capnp::ElementSize;

template <typename T>
constexpr ElementSize ElementSizeOf() {
  static_assert(sizeof(T) == 1 || sizeof(T) == 4 || sizeof(T) == 8);
  if constexpr (sizeof(T) == 1) return ElementSize::BYTE;
  if constexpr (sizeof(T) == 4) return ElementSize::FOUR_BYTES;
  return ElementSize::EIGHT_BYTES;
}

// Fills a freshly initialised list of v.size() primitive elements with one memcpy.
template <typename T>
void FillList(typename ::capnp::List<T>::Builder list, const std::vector<T>& v) {
  if (v.empty()) return;
  kj::ArrayPtr<const kj::byte> raw = ::capnp::AnyList::Reader(list.asReader()).getRawBytes();
  GLM_CHECK_EQ(raw.size(), v.size() * sizeof(T));
  std::memcpy(const_cast<kj::byte*>(raw.begin()), v.data(), raw.size());
}

// Copies a primitive list into *out: one memcpy when the list has the
// expected element size, element by element otherwise (a foreign but legal
// encoding, e.g. a struct list in place of a primitive one).
template <typename T>
void CopyList(typename ::capnp::List<T>::Reader list, std::vector<T>* out) {
  out->resize(list.size());
  if (list.size() == 0) return;
  ::capnp::AnyList::Reader any(list);
  if (any.getElementSize() == ElementSizeOf<T>()) {
    kj::ArrayPtr<const kj::byte> raw = any.getRawBytes();
    if (raw.size() == out->size() * sizeof(T)) {
      std::memcpy(out->data(), raw.begin(), raw.size());
      return;
    }
  }
  for (uint32_t i = 0; i < list.size(); ++i) (*out)[i] = list[i];
}

template <typename T>
size_t WordsFor(const std::vector<T>& v) {
  return (v.size() * sizeof(T) + 7) / 8;
}

// Writes the message in standard framing (segment table, then segments)
// straight into a string: one copy of each segment.
void FlattenTo(::capnp::MessageBuilder& builder, std::string* out) {
  kj::ArrayPtr<const kj::ArrayPtr<const ::capnp::word>> segments = builder.getSegmentsForOutput();
  const size_t num_segments = segments.size();
  const size_t table_bytes = ((num_segments + 1) * 4 + 7) & ~size_t{7};
  size_t total = table_bytes;
  for (const auto& s : segments) total += s.size() * sizeof(::capnp::word);
  out->resize(total);
  char* p = out->data();
  uint32_t count_minus_one = static_cast<uint32_t>(num_segments - 1);
  std::memcpy(p, &count_minus_one, 4);
  for (size_t i = 0; i < num_segments; ++i) {
    uint32_t words = static_cast<uint32_t>(segments[i].size());
    std::memcpy(p + 4 + 4 * i, &words, 4);
  }
  p += table_bytes;
  for (const auto& s : segments) {
    std::memcpy(p, s.begin(), s.size() * sizeof(::capnp::word));
    p += s.size() * sizeof(::capnp::word);
  }
}

std::string Flatten(::capnp::MessageBuilder& builder) {
  std::string out;
  FlattenTo(builder, &out);
  return out;
}

// WithReader for an unpacked message.
template <typename Fn>
Status WithFlatReader(std::string_view bytes, const DecodeOptions& options, const char* what,
                      Fn&& fn) {
  if (bytes.size() < 8 || bytes.size() % 8 != 0) {
    return DataLossError(std::string("not a valid ") + what + ": " + std::to_string(bytes.size()) +
                         " bytes is not a whole number of 8-byte words (truncated or not a record)");
  }
  const size_t num_words = bytes.size() / 8;
  const ::capnp::word* words = reinterpret_cast<const ::capnp::word*>(bytes.data());
  std::unique_ptr<::capnp::word[]> aligned;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(::capnp::word) != 0) {
    aligned.reset(new ::capnp::word[num_words]);
    std::memcpy(aligned.get(), bytes.data(), bytes.size());
    words = aligned.get();
  }
  try {
    ::capnp::ReaderOptions reader_options;
    reader_options.traversalLimitInWords = options.traversal_limit_words;
    reader_options.nestingLimit = options.nesting_limit;
    ::capnp::FlatArrayMessageReader reader(kj::arrayPtr(words, num_words), reader_options);
    if (reader.getEnd() != words + num_words) {
      return DataLossError(std::string("not a valid ") + what + ": " +
                           std::to_string((words + num_words - reader.getEnd()) * 8) +
                           " trailing bytes after the message");
    }
    return fn(reader);
  } catch (const kj::Exception& e) {
    return DataLossError(std::string("not a valid ") + what + " (corrupt or truncated): " +
                         e.getDescription().cStr());
  }
}

// Segment table + segments packed (kFirstPackedSampleVersion on) into *out.
void FlattenPackedTo(::capnp::MessageBuilder& builder, std::string* out) {
  kj::ArrayPtr<const kj::ArrayPtr<const ::capnp::word>> segments = builder.getSegmentsForOutput();
  out->clear();
  if (segments.size() == 1) {
    // The usual case: the table is one word, then the segment.
    const uint64_t table = uint64_t{segments[0].size()}
                           << 32;  // segment count - 1 = 0, then its size
    PackWords(&table, 1, out);
    PackWords(reinterpret_cast<const uint64_t*>(segments[0].begin()), segments[0].size(), out);
    return;
  }
  std::string flat;
  FlattenTo(builder, &flat);
  PackWords(reinterpret_cast<const uint64_t*>(flat.data()), flat.size() / 8, out);
}

// The unpacked words of the packed record being decoded on this thread.
thread_local std::vector<uint64_t> t_unpacked;

// Runs `fn(reader)` over the message in `bytes` with the limits of
// `options`, turning any Cap'n Proto exception into DataLoss. Unpacks a
// packed record into a per-thread buffer first; copies an unpacked one first
// when it is not 8-byte aligned (RocksDB values and ZeroMQ frames need not be).
template <typename Fn>
Status WithReader(std::string_view bytes, const DecodeOptions& options, const char* what, Fn&& fn) {
  if (IsPackedRecord(bytes)) {
    // The segment table is at most 512 segments: 257 words.
    StatusOr<size_t> num_words =
        UnpackWords(bytes, options.traversal_limit_words + 257, &t_unpacked);
    if (!num_words.ok()) {
      return DataLossError(std::string("not a valid ") + what + ": " +
                           num_words.status().message());
    }
    const std::string_view flat(reinterpret_cast<const char*>(t_unpacked.data()), *num_words * 8);
    return WithFlatReader(flat, options, what, fn);
  }
  return WithFlatReader(bytes, options, what, fn);
}

Status CheckHeader(const char* what, uint32_t version, uint64_t hash, const DecodeOptions& options) {
  if (version == 0) {
    return DataLossError(std::string("not a valid ") + what + ": format version 0 (not written by glm)");
  }
  if (version > kStoreFormatVersion) {
    return FailedPreconditionError(std::string(what) + " has format version " + std::to_string(version) +
                                   " but this glm reads versions up to " +
                                   std::to_string(kStoreFormatVersion) +
                                   "; HINT: read it with the newer glm that wrote it");
  }
  if (options.expected_tokenizer_hash != 0 && hash != options.expected_tokenizer_hash) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), " was written with tokenizer hash %016llx but %016llx was expected",
                  static_cast<unsigned long long>(hash),
                  static_cast<unsigned long long>(options.expected_tokenizer_hash));
    return FailedPreconditionError(std::string(what) + buf +
                                   "; HINT: use the tokenizer this store was built with, or "
                                   "rebuild the store with the new tokenizer");
  }
  return Status::Ok();
}

template <typename T>
void AppendPod(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
void AppendVector(std::string* out, const std::vector<T>& v) {
  AppendPod<uint64_t>(out, v.size());
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

bool IsPackedRecord(std::string_view bytes) {
  // An unpacked record starts with (segment count - 1) as a little-endian
  // uint32: below 16 for every record glm writes. A packed one starts with
  // the tag of that table word, whose bits 4-7 are not all zero because the
  // first segment is never empty.
  return !bytes.empty() && static_cast<uint8_t>(bytes[0]) >= 0x10;
}

std::string EncodeDocument(const Document& doc, uint64_t tokenizer_hash, uint32_t format_version) {
  ::capnp::MallocMessageBuilder builder(16 + WordsFor(doc.tokens) + WordsFor(doc.sentence_end),
                                        ::capnp::AllocationStrategy::GROW_HEURISTICALLY);
  auto r = builder.initRoot<cp::DocumentRecord>();
  r.setFormatVersion(format_version);
  r.setTokenizerHash(tokenizer_hash);
  r.setId(doc.id);
  FillList<int32_t>(r.initTokens(doc.tokens.size()), doc.tokens);
  FillList<uint8_t>(r.initSentenceEnd(doc.sentence_end.size()), doc.sentence_end);
  return Flatten(builder);
}

std::string EncodeSample(const Sample& s, uint64_t tokenizer_hash, uint32_t format_version) {
  std::string out;
  EncodeSampleTo(s, tokenizer_hash, &out, format_version);
  return out;
}

void EncodeSampleTo(const Sample& s, uint64_t tokenizer_hash, std::string* out, uint32_t format_version) {
  const size_t words = 32 + WordsFor(s.source) + 2 * s.spans.size() + WordsFor(s.tokens) +
                       WordsFor(s.targets) + WordsFor(s.loss_mask) + WordsFor(s.position_ids) +
                       WordsFor(s.block_position_ids);
  ::capnp::MallocMessageBuilder builder(words, ::capnp::AllocationStrategy::GROW_HEURISTICALLY);
  auto r = builder.initRoot<cp::SampleRecord>();
  r.setFormatVersion(format_version);
  r.setTokenizerHash(tokenizer_hash);
  r.setObjective(static_cast<uint8_t>(s.objective));
  r.setEpoch(s.epoch);
  r.setIndex(s.index);
  FillList<int32_t>(r.initSource(s.source.size()), s.source);
  auto spans = r.initSpans(s.spans.size());
  for (size_t i = 0; i < s.spans.size(); ++i) {
    spans[i].setStart(s.spans[i].first);
    spans[i].setEnd(s.spans[i].second);
  }
  r.setSuffixLayout(s.suffix_layout);
  FillList<int32_t>(r.initTokens(s.tokens.size()), s.tokens);
  FillList<int32_t>(r.initTargets(s.targets.size()), s.targets);
  FillList<uint8_t>(r.initLossMask(s.loss_mask.size()), s.loss_mask);
  FillList<int32_t>(r.initPositionIds(s.position_ids.size()), s.position_ids);
  FillList<int32_t>(r.initBlockPositionIds(s.block_position_ids.size()), s.block_position_ids);
  r.setSep(s.sep);
  if (format_version >= kFirstPackedSampleVersion) {
    FlattenPackedTo(builder, out);
  } else {
    FlattenTo(builder, out);
  }
}

std::string EncodeStoreInfo(const StoreInfo& info) {
  ::capnp::MallocMessageBuilder builder(64);
  auto r = builder.initRoot<cp::StoreInfoRecord>();
  r.setFormatVersion(info.format_version);
  r.setTokenizerHash(info.tokenizer_hash);
  r.setCreatedUnixMs(info.created_unix_ms);
  r.setDescription(info.description);
  return Flatten(builder);
}

std::string EncodeDocIndex(const std::vector<uint64_t>& lengths, uint64_t tokenizer_hash) {
  ::capnp::MallocMessageBuilder builder(16 + lengths.size());
  auto r = builder.initRoot<cp::DocIndexRecord>();
  r.setFormatVersion(kStoreFormatVersion);
  r.setTokenizerHash(tokenizer_hash);
  FillList<uint64_t>(r.initLengths(lengths.size()), lengths);
  return Flatten(builder);
}

StatusOr<Document> DecodeDocument(std::string_view bytes, const DecodeOptions& options) {
  Document doc;
  Status s = WithReader(bytes, options, "DocumentRecord", [&](::capnp::MessageReader& m) {
    auto r = m.getRoot<cp::DocumentRecord>();
    GLM_RETURN_IF_ERROR(
        CheckHeader("DocumentRecord", r.getFormatVersion(), r.getTokenizerHash(), options));
    doc.id = r.getId();
    CopyList<int32_t>(r.getTokens(), &doc.tokens);
    CopyList<uint8_t>(r.getSentenceEnd(), &doc.sentence_end);
    if (doc.sentence_end.size() != doc.tokens.size()) {
      return DataLossError("not a valid DocumentRecord: " + std::to_string(doc.tokens.size()) +
                           " tokens but " + std::to_string(doc.sentence_end.size()) +
                           " sentence-end flags");
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return doc;
}

StatusOr<uint64_t> DecodedDocumentLength(std::string_view bytes, const DecodeOptions& options) {
  uint64_t length = 0;
  Status s = WithReader(bytes, options, "DocumentRecord", [&](::capnp::MessageReader& m) {
    auto r = m.getRoot<cp::DocumentRecord>();
    GLM_RETURN_IF_ERROR(
        CheckHeader("DocumentRecord", r.getFormatVersion(), r.getTokenizerHash(), options));
    length = r.getTokens().size();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return length;
}

Status DecodeSampleInto(std::string_view bytes, const DecodeOptions& options, Sample* out) {
  return WithReader(bytes, options, "SampleRecord", [&](::capnp::MessageReader& m) {
    auto r = m.getRoot<cp::SampleRecord>();
    GLM_RETURN_IF_ERROR(
        CheckHeader("SampleRecord", r.getFormatVersion(), r.getTokenizerHash(), options));
    if (r.getObjective() >= kNumObjectives) {
      return DataLossError("not a valid SampleRecord: objective " +
                           std::to_string(r.getObjective()) + " is not 0, 1 or 2");
    }
    out->objective = static_cast<Objective>(r.getObjective());
    out->epoch = r.getEpoch();
    out->index = r.getIndex();
    CopyList<int32_t>(r.getSource(), &out->source);
    auto spans = r.getSpans();
    out->spans.resize(spans.size());
    for (uint32_t i = 0; i < spans.size(); ++i) {
      int32_t b = spans[i].getStart(), e = spans[i].getEnd();
      if (b < 0 || b > e || static_cast<size_t>(e) > out->source.size()) {
        return DataLossError("not a valid SampleRecord: span " + std::to_string(i) + " [" +
                             std::to_string(b) + ", " + std::to_string(e) +
                             ") is outside the source of length " +
                             std::to_string(out->source.size()));
      }
      out->spans[i] = {b, e};
    }
    out->suffix_layout = r.getSuffixLayout();
    CopyList<int32_t>(r.getTokens(), &out->tokens);
    CopyList<int32_t>(r.getTargets(), &out->targets);
    CopyList<uint8_t>(r.getLossMask(), &out->loss_mask);
    CopyList<int32_t>(r.getPositionIds(), &out->position_ids);
    CopyList<int32_t>(r.getBlockPositionIds(), &out->block_position_ids);
    out->sep = r.getSep();
    const size_t n = out->tokens.size();
    if (out->targets.size() != n || out->loss_mask.size() != n || out->position_ids.size() != n ||
        out->block_position_ids.size() != n) {
      return DataLossError("not a valid SampleRecord: arrays of unequal length (tokens " +
                           std::to_string(n) + ", targets " + std::to_string(out->targets.size()) +
                           ", loss_mask " + std::to_string(out->loss_mask.size()) +
                           ", position_ids " + std::to_string(out->position_ids.size()) +
                           ", block_position_ids " +
                           std::to_string(out->block_position_ids.size()) + ")");
    }
    if (out->sep < 0 || static_cast<size_t>(out->sep) > n) {
      return DataLossError("not a valid SampleRecord: sep " + std::to_string(out->sep) +
                           " outside [0, " + std::to_string(n) + "]");
    }
    return Status::Ok();
  });
}

StatusOr<Sample> DecodeSample(std::string_view bytes, const DecodeOptions& options) {
  Sample sample;
  GLM_RETURN_IF_ERROR(DecodeSampleInto(bytes, options, &sample));
  return sample;
}

StatusOr<StoreInfo> DecodeStoreInfo(std::string_view bytes, const DecodeOptions& options) {
  StoreInfo info;
  Status s = WithReader(bytes, options, "StoreInfoRecord", [&](::capnp::MessageReader& m) {
    auto r = m.getRoot<cp::StoreInfoRecord>();
    GLM_RETURN_IF_ERROR(
        CheckHeader("the store", r.getFormatVersion(), r.getTokenizerHash(), options));
    info.format_version = r.getFormatVersion();
    info.tokenizer_hash = r.getTokenizerHash();
    info.created_unix_ms = r.getCreatedUnixMs();
    info.description = r.getDescription();
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return info;
}

StatusOr<std::vector<uint64_t>> DecodeDocIndex(std::string_view bytes, const DecodeOptions& options) {
  std::vector<uint64_t> lengths;
  Status s = WithReader(bytes, options, "DocIndexRecord", [&](::capnp::MessageReader& m) {
    auto r = m.getRoot<cp::DocIndexRecord>();
    GLM_RETURN_IF_ERROR(
        CheckHeader("DocIndexRecord", r.getFormatVersion(), r.getTokenizerHash(), options));
    CopyList<uint64_t>(r.getLengths(), &lengths);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return lengths;
}

std::string CanonicalBytes(const Document& doc) {
  std::string out = "D";
  AppendPod(&out, doc.id);
  AppendVector(&out, doc.tokens);
  AppendVector(&out, doc.sentence_end);
  return out;
}

std::string CanonicalBytes(const Sample& s) {
  std::string out = "S";
  AppendPod(&out, static_cast<uint8_t>(s.objective));
  AppendPod(&out, s.epoch);
  AppendPod(&out, s.index);
  AppendVector(&out, s.source);
  AppendPod<uint64_t>(&out, s.spans.size());
  for (const auto& [b, e] : s.spans) {
    AppendPod(&out, b);
    AppendPod(&out, e);
  }
  AppendPod<uint8_t>(&out, s.suffix_layout ? 1 : 0);
  AppendVector(&out, s.tokens);
  AppendVector(&out, s.targets);
  AppendVector(&out, s.loss_mask);
  AppendVector(&out, s.position_ids);
  AppendVector(&out, s.block_position_ids);
  AppendPod(&out, s.sep);
  return out;
}

bool RecordsEqual(const Document& a, const Document& b) {
  return a.id == b.id && a.tokens == b.tokens && a.sentence_end == b.sentence_end;
}

bool RecordsEqual(const Sample& a, const Sample& b) {
  return a.objective == b.objective && a.epoch == b.epoch && a.index == b.index &&
         a.source == b.source && a.spans == b.spans && a.suffix_layout == b.suffix_layout &&
         a.tokens == b.tokens && a.targets == b.targets && a.loss_mask == b.loss_mask &&
         a.position_ids == b.position_ids && a.block_position_ids == b.block_position_ids &&
         a.sep == b.sep;
}

}  // namespace glm::schema
