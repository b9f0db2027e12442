#include "worker/training/cloze.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>

#include "worker/trainer/optimizer.h"
#include "model/batch.h"
#include "worker/trainer/lr_schedule.h"
#include "worker/training/inference.h"

namespace glm::training {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kFormatHint =
    "each line must be {\"text\": \"... [MASK] ...\", \"choices\": [\"a\", \"b\", ...], \"label\": k}";

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgumentError(where + ": " + what + " (" + kFormatHint + ")");
}

// The rows of several examples, with each example's first row and count.
struct RowSet {
  std::vector<Sample> rows;
  std::vector<int64_t> first;
  std::vector<int64_t> count;
};

StatusOr<RowSet> RowsFor(const dataloader::GlmTokenizer& tokenizer, const std::vector<const ClozeExample*>& examples,
                         int64_t max_position) {
  RowSet set;
  for (const ClozeExample* e : examples) {
    GLM_ASSIGN_OR_RETURN(std::vector<Sample> rows, BuildClozeRows(tokenizer, *e, max_position));
    set.first.push_back(static_cast<int64_t>(set.rows.size()));
    set.count.push_back(static_cast<int64_t>(rows.size()));
    for (Sample& s : rows) set.rows.push_back(std::move(s));
  }
  return set;
}

// Candidate scores of `rows` (R): sums of target log-probabilities, divided
// by (tokens)^lp when lp != 0.
StatusOr<torch::Tensor> ScoreRows(model::GlmModel& model, const std::vector<Sample>& rows, double length_penalty) {
  GLM_ASSIGN_OR_RETURN(model::Batch batch, model::CollateSamples(rows));
  torch::Tensor scores = SumTargetLogProbs(model, batch);  // (R)
  if (length_penalty != 0) {
    torch::Tensor lengths = batch.loss_mask.sum(1).to(scores.scalar_type());  // (R)
    scores = scores / lengths.pow(length_penalty);
  }
  return scores;
}

int64_t Argmax(const std::vector<double>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); }

}  // namespace

StatusOr<ClozeExample> ParseClozeLine(const std::string& line, const std::string& where, bool require_label) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(where, "not valid JSON");
  if (!j.is_object()) return Bad(where, "not a JSON object");
  ClozeExample e;
  e.where = where;
  if (!j.contains("text") || !j["text"].is_string()) return Bad(where, "\"text\" is missing or not a string");
  e.text = j["text"].get<std::string>();
  if (!j.contains("choices") || !j["choices"].is_array()) return Bad(where, "\"choices\" is missing or not an array");
  for (const auto& c : j["choices"]) {
    if (!c.is_string()) return Bad(where, "every choice must be a string");
    if (c.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) {
      return Bad(where, "a choice is empty");
    }
    e.choices.push_back(c.get<std::string>());
  }
  if (e.choices.size() < 2) return Bad(where, "\"choices\" needs at least two candidates");
  if (j.contains("label") && !j["label"].is_null()) {
    if (!j["label"].is_number_integer()) return Bad(where, "\"label\" must be an integer index into choices");
    e.label = j["label"].get<int64_t>();
    if (e.label < 0 || e.label >= static_cast<int64_t>(e.choices.size())) {
      return Bad(where, "\"label\" " + std::to_string(e.label) + " is not an index of the " +
                            std::to_string(e.choices.size()) + " choices");
    }
  } else if (require_label) {
    return Bad(where, "\"label\" is missing");
  }
  return e;
}

StatusOr<std::vector<ClozeExample>> ReadClozeFile(const std::string& path, bool require_label) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError("cannot open cloze task file " + path);
  std::vector<ClozeExample> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    GLM_ASSIGN_OR_RETURN(ClozeExample e, ParseClozeLine(line, path + ":" + std::to_string(number), require_label));
    out.push_back(std::move(e));
  }
  if (out.empty()) return InvalidArgumentError(path + ": no examples (" + kFormatHint + ")");
  return out;
}

StatusOr<std::vector<Sample>> BuildClozeRows(const dataloader::GlmTokenizer& tokenizer, const ClozeExample& e,
                                             int64_t max_position) {
  const dataloader::SpecialTokenIds& ids = tokenizer.ids();
  std::vector<int32_t> part_a{ids.cls};
  for (int32_t t : tokenizer.Encode(e.text, /*parse_special_tokens=*/true)) part_a.push_back(t);
  part_a.push_back(ids.eod);
  int64_t blank = -1;
  int64_t blanks = 0;
  for (size_t i = 0; i < part_a.size(); ++i) {
    const int32_t t = part_a[i];
    if (t == ids.mask || t == ids.smask || t == ids.gmask) {
      blank = static_cast<int64_t>(i);
      ++blanks;
    }
  }
  if (blanks != 1) {
    return Bad(e.where, "the text must have exactly one blank ([MASK]), it has " + std::to_string(blanks));
  }
  const int32_t sep = static_cast<int32_t>(part_a.size());
  if (sep - 1 > max_position) {
    return Bad(e.where, "the text is " + std::to_string(sep) + " tokens but the model has positions 0.." +
                            std::to_string(max_position));
  }
  std::vector<Sample> rows;
  for (const std::string& choice : e.choices) {
    std::vector<int32_t> answer = tokenizer.Encode(choice);
    if (answer.empty()) return Bad(e.where, "choice \"" + choice + "\" encodes to no token");
    answer.push_back(ids.eop);
    if (static_cast<int64_t>(answer.size()) > max_position) {
      return Bad(e.where, "choice \"" + choice.substr(0, 40) + "\" is too long for the model's block positions");
    }
    Sample s;
    s.tokens = part_a;
    s.targets.assign(sep, 0);
    s.loss_mask.assign(sep, 0);
    s.position_ids.resize(sep);
    std::iota(s.position_ids.begin(), s.position_ids.end(), 0);
    s.block_position_ids.assign(sep, 0);
    s.sep = sep;
    for (size_t j = 0; j < answer.size(); ++j) {
      s.tokens.push_back(j == 0 ? ids.sop : answer[j - 1]);
      s.targets.push_back(answer[j]);
      s.loss_mask.push_back(1);
      s.position_ids.push_back(static_cast<int32_t>(blank));
      s.block_position_ids.push_back(static_cast<int32_t>(j + 1));
    }
    rows.push_back(std::move(s));
  }
  return rows;
}

Status ClozeOptions::Validate() const {
  if (!std::isfinite(length_penalty)) return InvalidArgumentError("--length-penalty must be finite");
  if (batch_size < 1) return InvalidArgumentError("--batch-size must be >= 1");
  return Status::Ok();
}

std::string ClozeEvalResult::ToJson(bool with_predictions) const {
  nlohmann::json j = {{"examples", examples}, {"labeled", labeled}, {"correct", correct}, {"accuracy", accuracy}};
  if (with_predictions) {
    j["predictions"] = predictions;
    j["scores"] = scores;
  }
  return j.dump(2);
}

StatusOr<ClozeEvalResult> EvaluateCloze(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                        const std::vector<ClozeExample>& examples, const ClozeOptions& options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const int64_t max_position = model->config().max_sequence_length;
  ClozeEvalResult r;
  // Examples are packed into forward passes of about batch_size rows.
  size_t next = 0;
  while (next < examples.size()) {
    std::vector<const ClozeExample*> group;
    int64_t rows = 0;
    while (next < examples.size() &&
           (group.empty() || rows + static_cast<int64_t>(examples[next].choices.size()) <= options.batch_size)) {
      rows += static_cast<int64_t>(examples[next].choices.size());
      group.push_back(&examples[next++]);
    }
    GLM_ASSIGN_OR_RETURN(RowSet set, RowsFor(tokenizer, group, max_position));
    GLM_ASSIGN_OR_RETURN(torch::Tensor scores, ScoreRows(model, set.rows, options.length_penalty));
    scores = scores.to(torch::kFloat64).contiguous();
    const double* s = scores.data_ptr<double>();
    for (size_t g = 0; g < group.size(); ++g) {
      std::vector<double> ex(s + set.first[g], s + set.first[g] + set.count[g]);
      const int64_t pred = Argmax(ex);
      r.predictions.push_back(pred);
      r.scores.push_back(std::move(ex));
      ++r.examples;
      if (group[g]->label >= 0) {
        ++r.labeled;
        if (pred == group[g]->label) ++r.correct;
      }
    }
  }
  r.accuracy = r.labeled > 0 ? static_cast<double>(r.correct) / static_cast<double>(r.labeled) : 0.0;
  if (was_training) model->train();
  return r;
}

Status ClozeFinetuneOptions::Validate() const {
  GLM_RETURN_IF_ERROR(cloze.Validate());
  if (epochs < 1) return InvalidArgumentError("--epochs must be >= 1");
  if (batch_size < 1) return InvalidArgumentError("--batch-size must be >= 1");
  if (!(lr > 0) || !std::isfinite(lr)) return InvalidArgumentError("--lr must be > 0");
  if (!(warmup >= 0 && warmup < 1)) return InvalidArgumentError("--warmup must be in [0, 1)");
  if (!(clip_grad >= 0)) return InvalidArgumentError("--clip-grad must be >= 0 (0 = off)");
  trainer::AdamWOptions a;
  a.beta1 = beta1;
  a.beta2 = beta2;
  a.eps = eps;
  a.weight_decay = weight_decay;
  return a.Validate();
}

std::string ClozeFinetuneResult::ToJson() const {
  nlohmann::json ep = nlohmann::json::array();
  for (const ClozeEpoch& e : epochs) {
    nlohmann::json x = {{"epoch", e.epoch}, {"seconds", e.seconds}};
    if (e.epoch > 0) {
      x["train_loss"] = e.train_loss;
      x["train_accuracy"] = e.train_accuracy;
    }
    if (e.eval_accuracy >= 0) x["eval_accuracy"] = e.eval_accuracy;
    ep.push_back(x);
  }
  nlohmann::json j = {{"steps", steps}, {"epochs", ep}};
  return j.dump(2);
}

StatusOr<ClozeFinetuneResult> FinetuneCloze(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                            const std::vector<ClozeExample>& train,
                                            const std::vector<ClozeExample>& eval,
                                            const ClozeFinetuneOptions& o, const ClozeProgressFn& progress) {
  GLM_RETURN_IF_ERROR(o.Validate());
  if (train.empty()) return InvalidArgumentError("no training examples");
  for (const ClozeExample& e : train) {
    if (e.label < 0) return InvalidArgumentError(e.where + ": a training example needs a \"label\"");
  }
  const int64_t max_position = model->config().max_sequence_length;
  // Fail on a bad example before spending any time training.
  for (const ClozeExample& e : train) GLM_RETURN_IF_ERROR(BuildClozeRows(tokenizer, e, max_position).status());

  ClozeFinetuneResult result;
  auto evaluate = [&](ClozeEpoch* ep) -> Status {
    if (eval.empty()) return Status::Ok();
    GLM_ASSIGN_OR_RETURN(ClozeEvalResult r, EvaluateCloze(model, tokenizer, eval, o.cloze));
    ep->eval_accuracy = r.accuracy;
    return Status::Ok();
  };
  {
    ClozeEpoch before;
    const auto t0 = Clock::now();
    GLM_RETURN_IF_ERROR(evaluate(&before));
    before.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (progress) progress(before);
    result.epochs.push_back(before);
  }

  torch::manual_seed(o.seed);
  trainer::AdamWOptions ao;
  ao.beta1 = o.beta1;
  ao.beta2 = o.beta2;
  ao.eps = o.eps;
  ao.weight_decay = o.weight_decay;
  trainer::AdamW optimizer(trainer::CollectParameters(*model), ao);
  const int64_t n = static_cast<int64_t>(train.size());
  const int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  trainer::LrScheduleOptions lr;
  lr.lr = o.lr;
  lr.decay_steps = steps_per_epoch * o.epochs;
  lr.warmup_fraction = o.warmup;
  lr.style = trainer::DecayStyle::kLinear;
  lr.decay_ratio = 0;
  GLM_RETURN_IF_ERROR(lr.Validate());

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto t0 = Clock::now();
    model->train();
    // Fisher-Yates with our own draws: the same order on every platform.
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
    ClozeEpoch ep;
    ep.epoch = epoch;
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t begin = 0; begin < n; begin += o.batch_size) {
      std::vector<const ClozeExample*> group;
      for (int64_t i = begin; i < std::min(n, begin + o.batch_size); ++i) group.push_back(&train[order[i]]);
      GLM_ASSIGN_OR_RETURN(RowSet set, RowsFor(tokenizer, group, max_position));
      GLM_ASSIGN_OR_RETURN(torch::Tensor scores, ScoreRows(model, set.rows, o.cloze.length_penalty));  // (R)
      std::vector<torch::Tensor> losses;
      for (size_t g = 0; g < group.size(); ++g) {
        torch::Tensor s = scores.slice(0, set.first[g], set.first[g] + set.count[g]);  // (C)
        losses.push_back(-torch::log_softmax(s, 0)[group[g]->label]);
        if (s.argmax().item<int64_t>() == group[g]->label) ++correct;
      }
      torch::Tensor loss = torch::stack(losses).mean();
      loss.backward();
      if (o.clip_grad > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.clip_grad);
      optimizer.Step(trainer::LearningRate(lr, result.steps));
      for (const trainer::NamedParameter& p : optimizer.parameters()) p.tensor.mutable_grad() = torch::Tensor();
      ++result.steps;
      loss_sum += loss.item<double>() * static_cast<double>(group.size());
    }
    ep.train_loss = loss_sum / static_cast<double>(n);
    ep.train_accuracy = static_cast<double>(correct) / static_cast<double>(n);
    GLM_RETURN_IF_ERROR(evaluate(&ep));
    ep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (progress) progress(ep);
    result.epochs.push_back(ep);
  }
  model->eval();
  return result;
}

}  // namespace glm::training
