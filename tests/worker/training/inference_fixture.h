// A tiny trained-looking run directory for the inference tests, made in a
// second: a SentencePiece tokenizer trained on a small synthetic corpus
// (<run>/tokenizer) and a random-weight GLM of the default tiny shape saved
// as <run>/checkpoints/step-0000000005/ (model.safetensors + config.json),
// the layout `glm pretrain` leaves.
#ifndef GLM_TESTS_WORKER_TRAINING_INFERENCE_FIXTURE_H_
#define GLM_TESTS_WORKER_TRAINING_INFERENCE_FIXTURE_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dataloader/tokenizer.h"
#include "model/glm_config.h"
#include "model/glm_model.h"
#include "model/safetensors.h"

namespace glm::testing {

struct InferenceFixture {
  std::filesystem::path root;        // everything lives under here
  std::filesystem::path run;         // <root>/run
  std::filesystem::path checkpoint;  // <run>/checkpoints/step-0000000005
  std::filesystem::path tokenizer;   // <run>/tokenizer
  std::filesystem::path corpus;      // <root>/corpus/text.txt
};

// Sentences of the corpus; the cloze tests use its words.
inline const std::vector<std::string>& FixtureSentences() {
  static const std::vector<std::string> s = {
      "The state of the Union is strong.",        "Congress shall meet at least once a year.",
      "Peace with all nations is our first wish!", "The public debt was reduced.",
      "Treaties were concluded with several tribes.", "The mint coined gold and silver.",
      "The apple harvest was large this year.",    "A stone bridge was built over the river.",
      "The army and the navy were ready.",         "Trade with our neighbors grew every year."};
  return s;
}

// Builds the fixture under `root` (removed first). Fails the current test on
// error.
inline InferenceFixture MakeInferenceFixture(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  InferenceFixture f;
  f.root = root;
  f.run = root / "run";
  f.checkpoint = f.run / "checkpoints" / "step-0000000005";
  f.tokenizer = f.run / "tokenizer";
  f.corpus = root / "corpus" / "text.txt";
  fs::remove_all(root);
  fs::create_directories(f.corpus.parent_path());
  {
    std::ofstream out(f.corpus);
    const auto& s = FixtureSentences();
    for (int para = 0; para < 40; ++para) {
      for (int k = 0; k < 4; ++k) out << s[(para * 7 + k * 3) % s.size()] << " ";
      out << "\n\n";
    }
  }
  dataloader::TokenizerTrainOptions o;
  o.corpus.paths = {f.corpus.string()};
  o.output_dir = f.tokenizer.string();
  o.vocab_size = 120;
  o.threads = 1;
  auto t = dataloader::TrainTokenizer(o, nullptr);
  EXPECT_TRUE(t.ok()) << t.status().message();
  if (!t.ok()) return f;
  model::GlmConfig c;  // tiny: 2 layers, H 64, 4 heads, P 128
  c.vocab_size = t->padded_vocab_size;
  model::GlmModel m(model::GlmModelOptions{c, 1234});
  Status s = model::SaveModel(m, f.checkpoint.string());
  EXPECT_TRUE(s.ok()) << s.message();
  return f;
}

}  // namespace glm::testing

#endif  // GLM_TESTS_WORKER_TRAINING_INFERENCE_FIXTURE_H_
