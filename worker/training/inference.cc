#include "worker/training/inference.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

#include "model/safetensors.h"

namespace glm::training {
namespace fs = std::filesystem;

namespace {

constexpr const char* kWeightsFile = "model.safetensors";

bool HasWeights(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kWeightsFile, ec);
}

// The step number of "step-0000000120" (-1 when the name is not a step).
int64_t StepOf(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() == 5) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
    step = step * 10 + (name[i] - '0');
    if (step > (int64_t{1} << 50)) return -1;
  }
  return step;
}

// The newest step-* directory under `root` with weights; "" when none.
std::string NewestStep(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return "";
  int64_t best = -1;
  fs::path best_path;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    const int64_t step = StepOf(e.path().filename().string());
    if (step > best && HasWeights(e.path())) {
      best = step;
      best_path = e.path();
    }
  }
  return best >= 0 ? best_path.string() : "";
}

bool IsBlank(const dataloader::SpecialTokenIds& ids, int32_t t) {
  return t == ids.mask || t == ids.smask || t == ids.gmask;
}

// Chooses the next token from `logits` (vocab entries) per `o`.
int64_t Choose(std::vector<double>& logits, const SamplingOptions& o, std::mt19937_64& rng) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const int64_t v = static_cast<int64_t>(logits.size());
  if (o.Greedy()) {
    return std::max_element(logits.begin(), logits.end()) - logits.begin();
  }
  const double t = o.temperature > 0 ? o.temperature : 1.0;
  for (double& x : logits) x /= t;
  if (o.top_k > 0 && o.top_k < v) {
    std::vector<double> sorted(logits);
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<double>());
    const double kth = sorted[o.top_k - 1];
    // Ties at the k-th value are kept: the cut is by value, deterministic.
    for (double& x : logits) {
      if (x < kth) x = neg_inf;
    }
  }
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(v);
  double sum = 0;
  for (int64_t i = 0; i < v; ++i) {
    p[i] = logits[i] == neg_inf ? 0.0 : std::exp(logits[i] - max);
    sum += p[i];
  }
  for (double& x : p) x /= sum;
  if (o.top_p > 0 && o.top_p < 1) {
    std::vector<int64_t> order(v);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    double mass = 0;
    size_t keep = 0;
    while (keep < order.size() && mass < o.top_p) mass += p[order[keep++]];
    for (size_t i = keep; i < order.size(); ++i) p[order[i]] = 0;
    for (double& x : p) x /= mass;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng);
  int64_t last = 0;
  for (int64_t i = 0; i < v; ++i) {
    if (p[i] <= 0) continue;
    last = i;
    r -= p[i];
    if (r < 0) return i;
  }
  return last;  // rounding: the last token with mass
}

torch::Tensor Row(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64).unsqueeze(0); }

}  // namespace

const char* const kBlankHint =
    "write each blank as [MASK] (a few words), [sMASK] (a sentence) or [gMASK] (the rest of the "
    "text), e.g. --text \"The [MASK] of the union is strong.\"";

StatusOr<std::string> ResolveCheckpointDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgumentError("--checkpoint DIR is required (a checkpoint or run directory)");
  const fs::path d(dir);
  std::error_code ec;
  if (!fs::exists(d, ec)) return NotFoundError("checkpoint " + dir + " does not exist");
  if (HasWeights(d)) return d.string();
  if (std::string s = NewestStep(d / "checkpoints"); !s.empty()) return s;
  if (std::string s = NewestStep(d); !s.empty()) return s;
  return NotFoundError("no model in " + dir + ": expected " + dir + "/" + kWeightsFile + " (a checkpoint directory) or " +
                       dir + "/checkpoints/step-N/" + kWeightsFile + " (a run directory of glm pretrain/train)");
}

StatusOr<std::string> FindTokenizerDir(const std::string& checkpoint_dir) {
  fs::path d = fs::absolute(fs::path(checkpoint_dir));
  for (int up = 0; up <= 3 && !d.empty(); ++up) {
    std::error_code ec;
    if (fs::is_regular_file(d / "tokenizer" / dataloader::kTokenizerModelFile, ec)) {
      return (d / "tokenizer").string();
    }
    if (!d.has_parent_path() || d.parent_path() == d) break;
    d = d.parent_path();
  }
  return NotFoundError("no tokenizer found for checkpoint " + checkpoint_dir +
                       " (looked for tokenizer/ in it and up to its run directory); pass --tokenizer DIR");
}

StatusOr<LoadedCheckpoint> LoadCheckpointForInference(const std::string& dir, const std::string& tokenizer_dir) {
  LoadedCheckpoint out;
  GLM_ASSIGN_OR_RETURN(out.checkpoint_dir, ResolveCheckpointDir(dir));
  if (tokenizer_dir.empty()) {
    GLM_ASSIGN_OR_RETURN(out.tokenizer_dir, FindTokenizerDir(out.checkpoint_dir));
  } else {
    out.tokenizer_dir = tokenizer_dir;
  }
  GLM_ASSIGN_OR_RETURN(out.tokenizer, dataloader::GlmTokenizer::Load(out.tokenizer_dir));
  GLM_ASSIGN_OR_RETURN(out.model, model::LoadModel((fs::path(out.checkpoint_dir) / kWeightsFile).string()));
  if (out.tokenizer->padded_vocab_size() != out.model->config().vocab_size) {
    return InvalidArgumentError("the tokenizer in " + out.tokenizer_dir + " has a padded vocabulary of " +
                                   std::to_string(out.tokenizer->padded_vocab_size()) + " but the model in " +
                                   out.checkpoint_dir + " has " + std::to_string(out.model->config().vocab_size) +
                                   " rows: pass the run's tokenizer with --tokenizer DIR");
  }
  out.model->eval();
  return out;
}

// --- Blank filling ---

Status SamplingOptions::Validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    return InvalidArgumentError("--temperature must be >= 0 (0 = greedy)");
  }
  if (top_k < 0) return InvalidArgumentError("--top-k must be >= 0 (0 = off)");
  if (!(top_p >= 0 && top_p <= 1)) return InvalidArgumentError("--top-p must be in [0, 1] (0 = off)");
  if (max_tokens < 1) return InvalidArgumentError("--max-tokens must be >= 1");
  if (min_tokens < 0 || min_tokens > max_tokens) {
    return InvalidArgumentError("--min-tokens must be in [0, --max-tokens]");
  }
  return Status::Ok();
}

StatusOr<std::vector<BlankFill>> FillBlanks(model::GlmModel& model, const dataloader::SpecialTokenIds& ids,
                                            int64_t vocab_size, const std::vector<int32_t>& part_a,
                                            const std::vector<int64_t>& blank_positions,
                                            const SamplingOptions& options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  const int64_t n = static_cast<int64_t>(part_a.size());
  const int64_t max_position = model->config().max_sequence_length;  // tables have P + 1 rows
  if (n == 0) return InvalidArgumentError("empty context");
  if (n - 1 > max_position) {
    return InvalidArgumentError("the context is " + std::to_string(n) + " tokens but the model has positions 0.." +
                                std::to_string(max_position) + "; shorten the text");
  }
  if (options.max_tokens > max_position) {
    return InvalidArgumentError("--max-tokens " + std::to_string(options.max_tokens) +
                                " exceeds the model's block positions (" + std::to_string(max_position) + ")");
  }
  if (vocab_size <= 0 || vocab_size > model->config().vocab_size) {
    return InvalidArgumentError("vocabulary size " + std::to_string(vocab_size) + " does not fit the model");
  }
  for (int64_t p : blank_positions) {
    if (p < 0 || p >= n) return InvalidArgumentError("blank position " + std::to_string(p) + " is outside the context");
  }
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();

  // Part A, bidirectional (sep = n), into the memory.
  std::vector<int64_t> tokens(part_a.begin(), part_a.end());
  std::vector<int64_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  std::vector<int64_t> blocks(n, 0);
  std::vector<torch::Tensor> memory =
      model->ForwardWithMemory(Row(tokens), Row(positions), Row(blocks), torch::tensor({n}, torch::kInt64), {}).memory;

  std::mt19937_64 rng(options.seed);
  const torch::Tensor no_sep = torch::tensor({int64_t{0}}, torch::kInt64);
  std::vector<BlankFill> fills;
  for (int64_t position : blank_positions) {
    BlankFill fill;
    fill.position = position;
    int64_t current = ids.sop;
    for (int64_t b = 1; b <= options.max_tokens; ++b) {
      model::GlmMemoryOutput step =
          model->ForwardWithMemory(Row({current}), Row({position}), Row({b}), no_sep, memory);
      memory = std::move(step.memory);
      torch::Tensor last = step.logits.index({0, -1}).slice(0, 0, vocab_size).to(torch::kFloat64).contiguous();
      std::vector<double> logits(last.data_ptr<double>(), last.data_ptr<double>() + vocab_size);
      if (static_cast<int64_t>(fill.tokens.size()) < options.min_tokens) {
        for (int32_t stop : {ids.eop, ids.eod}) {
          if (stop >= 0 && stop < vocab_size) logits[stop] = -std::numeric_limits<double>::infinity();
        }
      }
      const int64_t next = Choose(logits, options, rng);
      if (next == ids.eop || next == ids.eod) {
        fill.ended = true;
        break;
      }
      fill.tokens.push_back(static_cast<int32_t>(next));
      current = next;
    }
    fills.push_back(std::move(fill));
  }
  if (was_training) model->train();
  return fills;
}

std::string InfillTextResult::ToJson() const {
  nlohmann::json bl = nlohmann::json::array();
  for (const FilledBlank& b : blanks) {
    bl.push_back({{"kind", b.kind}, {"fill", b.fill}, {"tokens", b.tokens}, {"ended", b.ended}});
  }
  nlohmann::json j = {{"text", text}, {"filled", filled}, {"context_tokens", context_tokens}, {"blanks", bl}};
  return j.dump(2);
}

StatusOr<InfillTextResult> InfillText(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                      const std::string& text, const SamplingOptions& options) {
  const dataloader::SpecialTokenIds& ids = tokenizer.ids();
  std::vector<int32_t> part_a{ids.cls};
  for (int32_t t : tokenizer.Encode(text, /*parse_special_tokens=*/true)) part_a.push_back(t);
  std::vector<int64_t> blanks;
  for (size_t i = 0; i < part_a.size(); ++i) {
    if (IsBlank(ids, part_a[i])) blanks.push_back(static_cast<int64_t>(i));
  }
  if (blanks.empty()) return InvalidArgumentError("the text has no blank to fill: " + std::string(kBlankHint));
  if (part_a.back() != ids.gmask) part_a.push_back(ids.eod);

  GLM_ASSIGN_OR_RETURN(std::vector<BlankFill> fills,
                       FillBlanks(model, ids, tokenizer.vocab_size(), part_a, blanks, options));

  InfillTextResult r;
  r.text = text;
  r.context_tokens = static_cast<int64_t>(part_a.size());
  // Find the blank markers in the string the way Encode does (earliest
  // special-token string first), and paste each fill in place of its marker.
  size_t start = 0;
  size_t k = 0;
  while (start < text.size()) {
    size_t best = std::string::npos;
    int32_t best_id = -1;
    for (int32_t i = 0; i < dataloader::kNumSpecialTokens; ++i) {
      const size_t at = text.find(dataloader::kSpecialTokenPieces[i], start);
      if (at < best) {
        best = at;
        best_id = i;
      }
    }
    if (best == std::string::npos) break;
    const size_t end = best + dataloader::kSpecialTokenPieces[best_id].size();
    r.filled += text.substr(start, best - start);
    if (IsBlank(ids, best_id) && k < fills.size()) {
      FilledBlank b;
      b.kind = std::string(dataloader::kSpecialTokenPieces[best_id]);
      b.tokens = fills[k].tokens;
      b.ended = fills[k].ended;
      GLM_ASSIGN_OR_RETURN(b.fill, tokenizer.Decode(b.tokens));
      r.filled += b.fill;
      r.blanks.push_back(std::move(b));
      ++k;
    } else {
      r.filled += text.substr(best, end - best);
    }
    start = end;
  }
  r.filled += text.substr(std::min(start, text.size()));
  if (r.blanks.size() != fills.size()) {
    return InternalError("found " + std::to_string(r.blanks.size()) + " blank markers in the text but " +
                         std::to_string(fills.size()) + " blank tokens");
  }
  return r;
}

// --- Scoring ---

torch::Tensor SumTargetLogProbs(model::GlmModel& model, const model::Batch& b) {
  torch::Tensor hidden = model->Hidden(b.tokens, b.position_ids, b.block_position_ids, b.sep);  // (B, S, H)
  torch::Tensor where = (b.loss_mask > 0).nonzero();                                             // (N, 2)
  torch::Tensor rows = where.select(1, 0);                                                       // (N)
  torch::Tensor cols = where.select(1, 1);                                                       // (N)
  torch::Tensor logits = model->Logits(hidden.index({rows, cols}));                              // (N, V)
  if (logits.scalar_type() != torch::kFloat64) logits = logits.to(torch::kFloat32);
  torch::Tensor targets = b.targets.index({rows, cols}).unsqueeze(1);                            // (N, 1)
  torch::Tensor lp = torch::log_softmax(logits, -1).gather(1, targets).squeeze(1);               // (N)
  return torch::zeros({b.batch_size()}, lp.options()).index_add(0, rows, lp);                    // (B)
}

// --- Zero-shot language modelling ---

Status LmEvalOptions::Validate() const {
  if (window != 0 && window < 2) return InvalidArgumentError("--window must be >= 2 (0 = the model's positions - 1)");
  if (stride < 0) return InvalidArgumentError("--stride must be >= 1 (0 = a quarter of the window)");
  if (window != 0 && stride > window) return InvalidArgumentError("--stride must be at most --window");
  if (batch_size < 1) return InvalidArgumentError("--batch-size must be >= 1");
  return Status::Ok();
}

std::vector<Sample> LmWindows(const std::vector<int32_t>& doc, const dataloader::SpecialTokenIds& ids, int64_t window,
                              int64_t stride) {
  std::vector<Sample> rows;
  const int64_t n = static_cast<int64_t>(doc.size());
  if (n < 2) return rows;
  const int64_t beyond = std::max<int64_t>(n - window, 0);
  const int64_t count = (beyond + stride - 1) / stride + 1;
  for (int64_t w = 0; w < count; ++w) {
    const int64_t begin = w * stride;
    const int64_t end = std::min(begin + window, n);
    const int64_t context = w == 0 ? 1 : window - stride;  // tokens of the window given as Part A
    Sample s;
    s.tokens.push_back(ids.cls);
    s.tokens.insert(s.tokens.end(), doc.begin() + begin, doc.begin() + begin + context);
    s.tokens.push_back(ids.gmask);
    const int32_t sep = static_cast<int32_t>(s.tokens.size());
    const int32_t mask_position = sep - 1;
    s.sep = sep;
    s.targets.assign(sep, 0);
    s.loss_mask.assign(sep, 0);
    s.position_ids.resize(sep);
    std::iota(s.position_ids.begin(), s.position_ids.end(), 0);
    s.block_position_ids.assign(sep, 0);
    // Part B: [sop] text[:-1] -> text.
    int32_t block = 1;
    for (int64_t i = begin + context; i < end; ++i) {
      s.tokens.push_back(i == begin + context ? ids.sop : doc[i - 1]);
      s.targets.push_back(doc[i]);
      s.loss_mask.push_back(1);
      s.position_ids.push_back(mask_position);
      s.block_position_ids.push_back(block++);
    }
    s.index = static_cast<uint64_t>(w);
    rows.push_back(std::move(s));
  }
  return rows;
}

std::string LmEvalResult::ToJson() const {
  nlohmann::json j = {{"documents", documents},
                      {"windows", windows},
                      {"window", window},
                      {"stride", stride},
                      {"tokens", tokens},
                      {"scored_tokens", scored_tokens},
                      {"words", words},
                      {"scored_words", scored_words},
                      {"nll", nll},
                      {"loss_per_token", scored_tokens > 0 ? nll / static_cast<double>(scored_tokens) : 0.0},
                      {"token_perplexity", token_perplexity},
                      {"word_perplexity", word_perplexity}};
  return j.dump(2);
}

StatusOr<LmEvalResult> EvaluateLm(model::GlmModel& model, const dataloader::SpecialTokenIds& ids,
                                  const std::vector<std::vector<int32_t>>& documents, int64_t words,
                                  const LmEvalOptions& options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  const int64_t max_position = model->config().max_sequence_length;
  LmEvalResult r;
  r.window = options.window > 0 ? options.window : max_position - 1;
  r.stride = options.stride > 0 ? options.stride : std::max<int64_t>(1, r.window / 4);
  if (r.window < 2) return InvalidArgumentError("the model's positions are too few for a window");
  if (r.window > max_position) {
    return InvalidArgumentError("--window " + std::to_string(r.window) + " exceeds the model's positions (" +
                                std::to_string(max_position) + ")");
  }
  if (r.stride > r.window) {
    return InvalidArgumentError("--stride " + std::to_string(r.stride) + " must be at most the window (" +
                                std::to_string(r.window) + ")");
  }

  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<Sample> pending;
  double nll = 0;
  int64_t scored = 0;
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::Ok();
    GLM_ASSIGN_OR_RETURN(model::Batch batch, model::CollateSamples(pending));
    nll -= SumTargetLogProbs(model, batch).sum().item<double>();
    scored += batch.loss_mask.sum().item<int64_t>();
    r.windows += static_cast<int64_t>(pending.size());
    pending.clear();
    return Status::Ok();
  };
  for (const std::vector<int32_t>& doc : documents) {
    if (doc.empty()) continue;
    ++r.documents;
    r.tokens += static_cast<int64_t>(doc.size());
    for (Sample& s : LmWindows(doc, ids, r.window, r.stride)) {
      pending.push_back(std::move(s));
      if (static_cast<int64_t>(pending.size()) >= options.batch_size) GLM_RETURN_IF_ERROR(flush());
    }
  }
  GLM_RETURN_IF_ERROR(flush());
  if (was_training) model->train();
  r.scored_tokens = r.tokens - r.documents;
  if (scored != r.scored_tokens) {
    return InternalError("scored " + std::to_string(scored) + " tokens, expected " + std::to_string(r.scored_tokens));
  }
  if (r.scored_tokens == 0) return InvalidArgumentError("no document has two or more tokens to score");
  r.nll = nll;
  r.words = words;
  r.scored_words = std::max<int64_t>(1, words - r.documents);
  r.token_perplexity = std::exp(nll / static_cast<double>(r.scored_tokens));
  r.word_perplexity = std::exp(nll / static_cast<double>(r.scored_words));
  return r;
}

int64_t CountWords(const std::string& text) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

}  // namespace glm::training
