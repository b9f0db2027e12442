#include "dataloader/raw_sample.h"

#include <algorithm>
#include <string>

namespace glm::dataloader {
namespace {

Status DrawDocument(const DocumentSource& documents, SampleRng* rng,
                    std::vector<int32_t>* doc_scratch, DocumentView* view) {
  const uint64_t position = rng->Uniform64(documents.total_tokens());
  GLM_ASSIGN_OR_RETURN(uint64_t id, documents.FindDocument(position));
  GLM_RETURN_IF_ERROR(documents.ReadDocument(id, doc_scratch, view));
  if (view->size == 0) {
    return DataLossError("document " + std::to_string(id) + " is empty (it must end with eod)");
  }
  return Status::Ok();
}

}  // namespace

Status BuildRawSample(const DocumentSource& documents, const VocabInfo& vocab,
                      const RawSampleOptions& options, SampleRng* rng,
                      std::vector<int32_t>* doc_scratch, std::vector<int32_t>* out) {
  out->clear();
  if (documents.total_tokens() == 0) {
    return FailedPreconditionError("the document source has no tokens");
  }
  const int32_t seq = options.seq_length;
  const int32_t cls = vocab.ids.cls;
  DocumentView doc;
  GLM_RETURN_IF_ERROR(DrawDocument(documents, rng, doc_scratch, &doc));
  const int64_t len = static_cast<int64_t>(doc.size);
  const int64_t excess = len - seq + 1;
  if (excess > 0) {
    // Long document: random left cut, moved to a sentence start.
    int64_t cut = static_cast<int64_t>(rng->Uniform64(static_cast<uint64_t>(excess)));
    if (options.non_sentence_start <= 0 || rng->NextDouble() > options.non_sentence_start) {
      int32_t moves = 0;
      // Python's tokens[-1] when the cut is 0: the document's last token.
      auto before = [&](int64_t c) { return doc.tokens[c > 0 ? c - 1 : len - 1]; };
      if ((rng->NextU32() & 1u) == 0) {
        while (moves < seq / 2 && cut > 0 && !vocab.EndsSentence(before(cut))) {
          --cut;
          ++moves;
        }
      } else {
        while (moves < seq / 2 && cut < len && !vocab.EndsSentence(before(cut))) {
          ++cut;
          ++moves;
        }
      }
    }
    const int32_t size = static_cast<int32_t>(len - cut + 1);
    const int32_t keep = RightStripKeep(size, seq, vocab, [&](int32_t i) {
      return i == 0 ? cls : doc.tokens[cut + i - 1];
    });
    out->reserve(seq);
    out->push_back(cls);
    out->insert(out->end(), doc.tokens + cut, doc.tokens + cut + keep - 1);
    return Status::Ok();
  }
  // Short document: [CLS] + doc, then more weighted documents until full;
  // the one that reaches the room left is right-stripped and ends packing.
  out->reserve(seq);
  out->push_back(cls);
  out->insert(out->end(), doc.tokens, doc.tokens + len);
  while (static_cast<int32_t>(out->size()) < seq) {
    GLM_RETURN_IF_ERROR(DrawDocument(documents, rng, doc_scratch, &doc));
    const int32_t room = seq - static_cast<int32_t>(out->size());
    const int32_t size = static_cast<int32_t>(doc.size) + 1;
    const bool is_last = size >= room;
    const int32_t keep = RightStripKeep(size, room, vocab, [&](int32_t i) {
      return i == 0 ? cls : doc.tokens[i - 1];
    });
    out->push_back(cls);
    out->insert(out->end(), doc.tokens, doc.tokens + (keep - 1));
    if (is_last) break;
  }
  return Status::Ok();
}

void ShortenRawSample(const VocabInfo& vocab, int32_t seq_length, SampleRng* rng,
                      std::vector<int32_t>* x, std::vector<int32_t>* scratch) {
  if (seq_length - 1 <= 32) return;
  const int32_t target = 32 + static_cast<int32_t>(rng->Uniform(seq_length - 1 - 32));
  const int32_t eod = vocab.ids.eod;
  // tokens = x[1:] (the leading [CLS] dropped).
  const int32_t* t = x->data() + 1;
  const int32_t len = static_cast<int32_t>(x->size()) - 1;
  int32_t start = 0, end = len;
  if (target < len) {
    start = static_cast<int32_t>(rng->Uniform(static_cast<uint32_t>(len - target)));
    while (start > 0 && (t[start] == eod || !(vocab.EndsSentence(t[start - 1]) || t[start - 1] == eod))) {
      --start;
    }
    end = start + target;
    while (end > start && !(vocab.EndsSentence(t[end - 1]) || t[end - 1] == eod)) --end;
    if (end - start < target / 2) end = start + target;
  }
  scratch->assign(1, vocab.ids.cls);
  scratch->insert(scratch->end(), t + start, t + end);
  x->swap(*scratch);
}

}  // namespace glm::dataloader
