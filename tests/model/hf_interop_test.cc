// glm export / glm import (model/hf_interop.h): the HuggingFace THUDM/glm
// layout, the bit-exact round trip, the refusals, and the two commands run
// as a user would (the real binary).
#include "model/hf_interop.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "model/glm_config.h"
#include "model/glm_model.h"
#include "model/safetensors.h"
#include "tests/testing/run_command.h"

namespace glm::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

GlmConfig TinyConfig() {
  GlmConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.vocab_size = 128;
  c.max_sequence_length = 24;
  c.hidden_dropout = 0.05;  // non-defaults, so the round trip must carry them
  c.attention_dropout = 0.15;
  c.init_std = 0.01;
  return c;
}

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("glm_hf_interop_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// A glm checkpoint directory with random weights and a (fake) tokenizer.
fs::path MakeCheckpoint(const fs::path& root, const GlmConfig& c, uint64_t seed = 3) {
  GlmModel m(GlmModelOptions{c, seed});
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->named_parameters()) p.value().normal_(0.0, 0.3);
  }
  const fs::path dir = root / "step-0000000007";
  EXPECT_TRUE(SaveModel(m, dir.string()).ok());
  std::ofstream(dir / "tokenizer.model") << "sentencepiece bytes";
  std::ofstream(dir / "tokenizer.json") << R"({"vocab_size": 100})";
  return dir;
}

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The raw safetensors header, parsed independently of model/safetensors.
json RawHeader(const fs::path& p) {
  const std::string bytes = ReadBytes(p);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return json::parse(bytes.substr(8, n));
}

// Tensors of a safetensors file, by name.
std::map<std::string, torch::Tensor> ReadTensors(const fs::path& p) {
  auto file = SafetensorsFile::Open(p.string());
  EXPECT_TRUE(file.ok()) << file.status();
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : (*file)->entries()) out[e.name] = *(*file)->Read(e.name);
  return out;
}

bool BitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  torch::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

// The parameter names of the HuggingFace GLM code, written out from
// modeling_glm.py of the hub repositories THUDM/glm-large / glm-10b (the HF
// port, transformers-style models/glm/modeling_glm.py): GLMPreTrainedModel has
// base_model_prefix = "glm"; GLMModel holds `word_embeddings`
// (VocabEmbedding: `weight`) and `transformer` (GLMStack: position_embeddings,
// block_position_embeddings, layers = ModuleList of GLMBlock,
// final_layernorm); GLMBlock: input_layernorm, attention (SelfAttention:
// query_key_value, dense), post_attention_layernorm, mlp (MLP:
// dense_h_to_4h, dense_4h_to_h); Linear and LayerNorm have weight and bias.
std::set<std::string> HfGlmNames(int layers) {
  std::set<std::string> names = {
      "glm.word_embeddings.weight",
      "glm.transformer.position_embeddings.weight",
      "glm.transformer.block_position_embeddings.weight",
      "glm.transformer.final_layernorm.weight",
      "glm.transformer.final_layernorm.bias",
  };
  for (int i = 0; i < layers; ++i) {
    const std::string l = "glm.transformer.layers." + std::to_string(i) + ".";
    for (const char* s :
         {"input_layernorm.weight", "input_layernorm.bias", "attention.query_key_value.weight",
          "attention.query_key_value.bias", "attention.dense.weight", "attention.dense.bias",
          "post_attention_layernorm.weight", "post_attention_layernorm.bias",
          "mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h.bias", "mlp.dense_4h_to_h.weight",
          "mlp.dense_4h_to_h.bias"}) {
      names.insert(l + s);
    }
  }
  return names;
}

TEST(HfInteropTest, ExpectedShapesAreTheModelsParametersInOrder) {
  const GlmConfig c = TinyConfig();
  GlmModel m(c);
  auto expected = ExpectedTensorShapes(c);
  auto params = m->named_parameters();
  ASSERT_EQ(expected.size(), params.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(expected[i].first, params[i].key());
    EXPECT_EQ(expected[i].second, std::vector<int64_t>(params[i].value().sizes().begin(),
                                                       params[i].value().sizes().end()))
        << expected[i].first;
  }
}

TEST(HfInteropTest, ExportWritesHfGlmNamesConfigKeysAndTokenizer) {
  const fs::path root = TempDir("export");
  const GlmConfig c = TinyConfig();
  const fs::path ckpt = MakeCheckpoint(root, c);
  HfExportOptions o;
  o.checkpoint = ckpt.string();
  o.output = (root / "hf").string();
  auto r = ExportHf(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tensors, static_cast<int64_t>(HfGlmNames(2).size()));
  EXPECT_EQ(r->bytes, 4 * c.NumParameters());
  EXPECT_EQ(r->tokenizer_from, ckpt.lexically_normal().string());

  const json header = RawHeader(root / "hf" / "model.safetensors");
  std::set<std::string> names;
  for (const auto& [k, v] : header.items()) {
    if (k != "__metadata__") names.insert(k);
  }
  EXPECT_EQ(names, HfGlmNames(2));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");  // transformers refuses safetensors without it
  EXPECT_EQ(header["glm.word_embeddings.weight"]["dtype"], "F32");
  EXPECT_EQ(header["glm.word_embeddings.weight"]["shape"], json({128, 32}));
  EXPECT_EQ(header["glm.transformer.position_embeddings.weight"]["shape"],
            json({25, 32}));  // P + 1 rows

  // configuration_glm.py's GLMConfig keys, with this model's values.
  std::ifstream cf(root / "hf" / "config.json");
  const json cj = json::parse(cf);
  EXPECT_EQ(cj["model_type"], "glm");
  ASSERT_TRUE(cj["architectures"].is_array());
  EXPECT_EQ(cj["num_layers"], 2);
  EXPECT_EQ(cj["vocab_size"], 128);
  EXPECT_EQ(cj["hidden_size"], 32);
  EXPECT_EQ(cj["num_attention_heads"], 4);
  EXPECT_EQ(cj["max_sequence_length"], 24);
  EXPECT_EQ(cj["embedding_dropout_prob"], 0.05);
  EXPECT_EQ(cj["output_dropout_prob"], 0.05);
  EXPECT_EQ(cj["attention_dropout_prob"], 0.15);
  EXPECT_EQ(cj["initializer_range"], 0.01);
  EXPECT_EQ(cj["checkpoint_activations"], false);
  EXPECT_EQ(cj["checkpoint_num_layers"], 1);
  EXPECT_EQ(cj["block_position_encoding"], true);
  EXPECT_EQ(cj["relative_encoding"], false);
  EXPECT_EQ(cj["output_predict"], true);
  EXPECT_TRUE(cj.contains("spell_length") && cj["spell_length"].is_null());
  EXPECT_EQ(cj["spell_func"], "lstm");
  EXPECT_EQ(cj["attention_scale"], 1.0);
  EXPECT_EQ(cj["parallel_output"], true);
  EXPECT_EQ(cj["torch_dtype"], "float32");
  EXPECT_EQ(cj["auto_map"]["AutoConfig"], "THUDM/glm-large--configuration_glm.GLMConfig");
  EXPECT_EQ(cj["auto_map"]["AutoModelForSeq2SeqLM"],
            "THUDM/glm-large--modeling_glm.GLMForConditionalGeneration");

  EXPECT_EQ(ReadBytes(root / "hf" / "tokenizer.model"), "sentencepiece bytes");
  EXPECT_EQ(ReadBytes(root / "hf" / "glm_tokenizer.json"), R"({"vocab_size": 100})");
  EXPECT_FALSE(fs::exists(root / "hf" / "tokenizer.json"));  // that name means a HF fast tokenizer
  // glm's own loader reads the exported directory too (it strips "glm.").
  auto loaded = LoadModel((root / "hf" / "model.safetensors").string());
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  fs::remove_all(root);
}

TEST(HfInteropTest, ExportThenImportIsBitIdenticalWithAnEqualConfig) {
  const fs::path root = TempDir("roundtrip");
  GlmConfig c = TinyConfig();
  c.layernorm_epsilon = 1e-6;
  const fs::path ckpt = MakeCheckpoint(root, c);
  HfExportOptions eo;
  eo.checkpoint = (ckpt / "model.safetensors").string();  // the file works as well as the directory
  eo.output = (root / "hf").string();
  auto e = ExportHf(eo);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->warnings.size(), 1u);  // the HF code ignores layernorm_epsilon
  HfImportOptions io;
  io.input = eo.output;
  io.output = (root / "back").string();
  auto i = ImportHf(io);
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_TRUE(i->tokenizer);

  auto back_config = GlmConfig::FromJsonFile((root / "back" / "config.json").string());
  ASSERT_TRUE(back_config.ok());
  EXPECT_EQ(*back_config, c);
  EXPECT_EQ(i->config, c);
  auto file = SafetensorsFile::Open((root / "back" / "model.safetensors").string());
  ASSERT_TRUE(file.ok());
  auto meta_config = GlmConfig::FromMetadata((*file)->metadata());
  ASSERT_TRUE(meta_config.ok());
  EXPECT_EQ(*meta_config, c);

  const auto original = ReadTensors(ckpt / "model.safetensors");
  const auto back = ReadTensors(root / "back" / "model.safetensors");
  ASSERT_EQ(original.size(), back.size());
  for (const auto& [name, t] : original) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_TRUE(BitEqual(t, back.at(name))) << name;
  }
  // Same order as the model's parameters, so the files are byte-identical.
  EXPECT_EQ(ReadBytes(ckpt / "model.safetensors"), ReadBytes(root / "back" / "model.safetensors"));
  EXPECT_EQ(ReadBytes(root / "back" / "tokenizer.model"), "sentencepiece bytes");
  EXPECT_EQ(ReadBytes(root / "back" / "tokenizer.json"), R"({"vocab_size": 100})");
  fs::remove_all(root);
}

TEST(HfInteropTest, ExportConvertsDtypeAndWritesPytorchBin) {
  const fs::path root = TempDir("dtype");
  const GlmConfig c = TinyConfig();
  const fs::path ckpt = MakeCheckpoint(root, c);
  HfExportOptions o;
  o.checkpoint = ckpt.string();
  o.output = (root / "hf").string();
  o.dtype = "bfloat16";
  o.pytorch_bin = true;
  o.tokenizer = "none";
  auto r = ExportHf(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtype, "bfloat16");
  EXPECT_TRUE(r->tokenizer_from.empty());
  EXPECT_FALSE(fs::exists(root / "hf" / "tokenizer.model"));
  std::ifstream cf(root / "hf" / "config.json");
  EXPECT_EQ(json::parse(cf)["torch_dtype"], "bfloat16");
  const auto original = ReadTensors(ckpt / "model.safetensors");
  const auto hf = ReadTensors(root / "hf" / "model.safetensors");
  for (const auto& [name, t] : original) {
    EXPECT_TRUE(BitEqual(t.to(torch::kBFloat16), hf.at("glm." + name))) << name;
  }
  // pytorch_model.bin: torch.load's zip format with the same {name: tensor}.
  const std::string bin = ReadBytes(root / "hf" / "pytorch_model.bin");
  ASSERT_GT(bin.size(), 4u);
  EXPECT_EQ(bin.substr(0, 2), "PK");
  c10::IValue loaded = torch::jit::pickle_load(std::vector<char>(bin.begin(), bin.end()));
  ASSERT_TRUE(loaded.isGenericDict());
  auto dict = loaded.toGenericDict();
  EXPECT_EQ(dict.size(), hf.size());
  for (const auto& [name, t] : hf) EXPECT_TRUE(BitEqual(t, dict.at(name).toTensor())) << name;
  fs::remove_all(root);
}

// A HuggingFace directory written by hand: unprefixed names (a bare
// GLMModel's save_pretrained) split over two shards with an index.
TEST(HfInteropTest, ImportReadsShardedUnprefixedWeights) {
  const fs::path root = TempDir("shards");
  const GlmConfig c = TinyConfig();
  const fs::path ckpt = MakeCheckpoint(root, c);
  const auto original = ReadTensors(ckpt / "model.safetensors");
  const fs::path hf = root / "hf";
  fs::create_directories(hf);
  std::vector<std::pair<std::string, torch::Tensor>> a, b;
  json weight_map;
  for (const auto& [name, t] : original) {
    const bool first = name.find("layers.1.") == std::string::npos;
    (first ? a : b).emplace_back(name, t);
    weight_map[name] =
        first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  ASSERT_TRUE(
      WriteSafetensors((hf / "model-00001-of-00002.safetensors").string(), a, {{"format", "pt"}})
          .ok());
  ASSERT_TRUE(
      WriteSafetensors((hf / "model-00002-of-00002.safetensors").string(), b, {{"format", "pt"}})
          .ok());
  std::ofstream(hf / "model.safetensors.index.json")
      << json({{"metadata", json::object()}, {"weight_map", weight_map}});
  std::ofstream(hf / "config.json") << HfConfigJson(c, "float32");
  HfImportOptions o;
  o.input = hf.string();
  o.output = (root / "back").string();
  auto r = ImportHf(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->tokenizer);
  EXPECT_EQ(ReadBytes(ckpt / "model.safetensors"), ReadBytes(root / "back" / "model.safetensors"));
  fs::remove_all(root);
}

// Writes a HF directory from `tensors` (HF names) and `config_json`, imports it.
Status ImportFrom(const fs::path& root,
                  const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::string& config_json) {
  const fs::path hf = root / "hf";
  fs::remove_all(hf);
  fs::remove_all(root / "out");
  fs::create_directories(hf);
  GLM_RETURN_IF_ERROR(
      WriteSafetensors((hf / "model.safetensors").string(), tensors, {{"format", "pt"}}));
  std::ofstream(hf / "config.json") << config_json;
  HfImportOptions o;
  o.input = hf.string();
  o.output = (root / "out").string();
  return ImportHf(o).status();
}

TEST(HfInteropTest, ImportRefusesBadTensorsAndConfigsNamingThem) {
  const fs::path root = TempDir("refuse");
  const GlmConfig c = TinyConfig();
  std::vector<std::pair<std::string, torch::Tensor>> good;
  for (const auto& [name, shape] : ExpectedTensorShapes(c))
    good.emplace_back("glm." + name, torch::zeros(shape));
  const std::string config = HfConfigJson(c, "float32");
  ASSERT_TRUE(ImportFrom(root, good, config).ok());

  auto missing = good;
  missing.erase(missing.begin() + 5);
  Status s = ImportFrom(root, missing, config);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'" + good[5].first.substr(4) + "' is missing"), std::string::npos)
      << s;
  EXPECT_FALSE(fs::exists(root / "out")) << "nothing is written for a refused input";

  auto misshapen = good;
  misshapen[0].second = torch::zeros({100, 32});
  s = ImportFrom(root, misshapen, config);
  EXPECT_NE(
      s.message().find("'word_embeddings.weight' has shape [100, 32], the config needs [128, 32]"),
      std::string::npos)
      << s;

  auto extra = good;
  extra.emplace_back("glm.lm_head.weight", torch::zeros({128, 32}));
  s = ImportFrom(root, extra, config);
  EXPECT_NE(s.message().find("'lm_head.weight' is not a parameter"), std::string::npos) << s;

  auto twice = good;
  twice.emplace_back("word_embeddings.weight", torch::zeros({128, 32}));
  s = ImportFrom(root, twice, config);
  EXPECT_NE(s.message().find("appears twice"), std::string::npos) << s;

  auto integer = good;
  integer[1].second = torch::zeros({25, 32}, torch::kInt32);
  s = ImportFrom(root, integer, config);
  EXPECT_NE(s.message().find("must be floating point"), std::string::npos) << s;

  json relative = json::parse(config);
  relative["relative_encoding"] = true;
  s = ImportFrom(root, good, relative.dump());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("relative_encoding"), std::string::npos) << s;

  json no_layers = json::parse(config);
  no_layers.erase("num_layers");
  s = ImportFrom(root, good, no_layers.dump());
  EXPECT_NE(s.message().find("'num_layers': missing"), std::string::npos) << s;
  fs::remove_all(root);
}

TEST(HfInteropTest, RefusesMissingInputsAndNonEmptyOutputs) {
  const fs::path root = TempDir("paths");
  HfExportOptions eo;
  eo.checkpoint = (root / "nope").string();
  eo.output = (root / "hf").string();
  auto e = ExportHf(eo);
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("no weights at"), std::string::npos) << e.status();

  const fs::path ckpt = MakeCheckpoint(root, TinyConfig());
  fs::create_directories(root / "busy");
  std::ofstream(root / "busy" / "keep.txt") << "mine";
  eo.checkpoint = ckpt.string();
  eo.output = (root / "busy").string();
  e = ExportHf(eo);
  EXPECT_EQ(e.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(e.status().message().find("is not empty"), std::string::npos) << e.status();
  EXPECT_FALSE(fs::exists(root / "busy" / "model.safetensors"));

  eo.output = (root / "hf").string();
  eo.tokenizer = (root / "no-tokenizer").string();
  e = ExportHf(eo);
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_NE(e.status().message().find("--tokenizer"), std::string::npos) << e.status();

  HfImportOptions io;
  io.input =
      ckpt.string();  // a glm checkpoint has config.json and model.safetensors: it imports too
  io.output = (root / "again").string();
  EXPECT_TRUE(ImportHf(io).ok());
  io.input = (root / "empty").string();
  fs::create_directories(io.input);
  io.output = (root / "x").string();
  auto i = ImportHf(io);
  EXPECT_EQ(i.status().code(), StatusCode::kNotFound);
  EXPECT_NE(i.status().message().find("has no config.json"), std::string::npos) << i.status();
  fs::remove_all(root);
}

// --- The commands ---

testing::CommandResult RunGlm(const std::string& args) {
  return testing::RunCommand(std::string(GLM_BINARY) + " " + args);
}

TEST(HfInteropCommandsTest, ExportAndImportRoundTripFromTheCommandLine) {
  const fs::path root = TempDir("cli");
  // A pretrain workdir layout: the tokenizer is <workdir>/tokenizer.
  const fs::path workdir = root / "run";
  const fs::path ckpt = MakeCheckpoint(workdir / "checkpoints", TinyConfig());
  fs::remove(ckpt / "tokenizer.model");
  fs::remove(ckpt / "tokenizer.json");
  fs::create_directories(workdir / "tokenizer");
  std::ofstream(workdir / "tokenizer" / "tokenizer.model") << "spm";
  std::ofstream(workdir / "tokenizer" / "tokenizer.json") << "{}";

  testing::CommandResult r =
      RunGlm("export --checkpoint " + ckpt.string() + " --output " + (root / "hf").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "\"tensors\":29")) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "with the tokenizer")) << r.output;
  EXPECT_EQ(ReadBytes(root / "hf" / "tokenizer.model"), "spm");

  r = RunGlm("import --input " + (root / "hf").string() + " --output " + (root / "back").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "\"tokenizer\":true")) << r.output;
  EXPECT_EQ(ReadBytes(ckpt / "model.safetensors"), ReadBytes(root / "back" / "model.safetensors"));

  r = RunGlm("import --input " + (root / "hf").string() + " --output " + (root / "back").string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "is not empty")) << r.output;

  r = RunGlm("export --output " + (root / "hf2").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "checkpoint")) << r.output;

  r = RunGlm("export --checkpoint " + ckpt.string() + " --output " + (root / "hf3").string() +
             " --dtype int8");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "float32, float16 or bfloat16")) << r.output;
  fs::remove_all(root);
}

}  // namespace
}  // namespace glm::model
