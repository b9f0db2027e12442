#include "dataloader/sample_json.h"

#include <nlohmann/json.hpp>

#include "dataloader/hash.h"

namespace glm::dataloader {

std::string SampleToJsonLine(const Sample& sample) {
  nlohmann::json spans = nlohmann::json::array();
  for (const auto& s : sample.spans) spans.push_back({s.first, s.second});
  nlohmann::json j = {
      {"objective", std::string(ObjectiveName(sample.objective))},
      {"epoch", sample.epoch},
      {"index", sample.index},
      {"tokenizer_hash", HashToHex(sample.tokenizer_hash)},
      {"source", sample.source},
      {"spans", spans},
      {"layout", sample.suffix_layout ? "suffix" : "blank"},
      {"tokens", sample.tokens},
      {"targets", sample.targets},
      {"loss_mask", sample.loss_mask},
      {"position_ids", sample.position_ids},
      {"block_position_ids", sample.block_position_ids},
      {"sep", sample.sep},
  };
  return j.dump();
}

}  // namespace glm::dataloader
