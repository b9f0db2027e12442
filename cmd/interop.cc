// glm export / glm import: a glm checkpoint <-> a HuggingFace THUDM/glm
// directory (model/hf_interop.h, docs/interop.md).
//
//   glm export --checkpoint <workdir>/checkpoints/step-N --output hf/
//   glm import --input hf/ --output ckpt/
//
// Each prints one JSON line on stdout (what was written) and a summary on
// stderr. Exit codes: 0 written, 1 the input was refused (the message names
// the file, key or tensor), 2 bad flags.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cmd/commands.h"
#include "common/cli.h"
#include "model/hf_interop.h"

namespace glm::cmd {
namespace {

int Fail(const char* command, const Status& s, int code) {
  std::fprintf(stderr, "glm %s: %s\n", command, s.message().c_str());
  return code;
}

int RunExport(const model::HfExportOptions& o) {
  if (Status s = o.Validate(); !s.ok()) return Fail("export", s, kExitUsage);
  StatusOr<model::HfExportResult> r = InternalError("not run");
  try {
    r = model::ExportHf(o);
  } catch (const std::exception& e) {
    return Fail("export", InternalError(e.what()), kExitFailure);
  }
  if (!r.ok()) return Fail("export", r.status(), kExitFailure);
  for (const std::string& w : r->warnings)
    std::fprintf(stderr, "glm export: warning: %s\n", w.c_str());
  nlohmann::ordered_json j;
  j["output"] = o.output;
  j["tensors"] = r->tensors;
  j["bytes"] = r->bytes;
  j["torch_dtype"] = r->dtype;
  j["tokenizer_from"] = r->tokenizer_from;
  j["files"] = r->files;
  std::cout << j.dump() << std::endl;
  std::fprintf(stderr,
               "glm export: wrote %s (%lld tensors, %.1f MB %s, %s); load it in Python with "
               "transformers.AutoModelForSeq2SeqLM.from_pretrained('%s', trust_remote_code=True)\n",
               o.output.c_str(), static_cast<long long>(r->tensors),
               static_cast<double>(r->bytes) / 1e6, r->dtype.c_str(),
               r->tokenizer_from.empty() ? "no tokenizer" : "with the tokenizer", o.output.c_str());
  return kExitOk;
}

int RunImport(const model::HfImportOptions& o) {
  if (Status s = o.Validate(); !s.ok()) return Fail("import", s, kExitUsage);
  StatusOr<model::HfImportResult> r = InternalError("not run");
  try {
    r = model::ImportHf(o);
  } catch (const std::exception& e) {
    return Fail("import", InternalError(e.what()), kExitFailure);
  }
  if (!r.ok()) return Fail("import", r.status(), kExitFailure);
  nlohmann::ordered_json j;
  j["output"] = o.output;
  j["tensors"] = r->tensors;
  j["bytes"] = r->bytes;
  j["tokenizer"] = r->tokenizer;
  j["files"] = r->files;
  std::cout << j.dump() << std::endl;
  std::fprintf(
      stderr, "glm import: wrote %s (%lld tensors, %lld layers, hidden %lld)%s\n", o.output.c_str(),
      static_cast<long long>(r->tensors), static_cast<long long>(r->config.num_layers),
      static_cast<long long>(r->config.hidden_size), r->tokenizer ? " with the tokenizer" : "");
  return kExitOk;
}

}  // namespace

void RegisterExportCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<model::HfExportOptions>();
  CLI::App* sub = app->add_subcommand(
      "export",
      "Write a checkpoint as a HuggingFace THUDM/glm directory (config.json, model.safetensors)");
  AddConfigOption(sub, "");
  AddOption(sub, "checkpoint", &o->checkpoint,
            "glm checkpoint directory (or its model.safetensors)");
  AddOption(sub, "output", &o->output, "Directory to create (must not exist or be empty)");
  AddOption(sub, "tokenizer", &o->tokenizer,
            "glm tokenizer directory to copy; empty = beside the checkpoint or "
            "<workdir>/tokenizer; none = no "
            "tokenizer");
  AddOption(sub, "dtype", &o->dtype,
            "Convert the weights: float32, float16 or bfloat16 (empty = keep)");
  AddFlag(sub, "pytorch-bin", &o->pytorch_bin,
          "Also write pytorch_model.bin (torch.load's zip format)");
  registry->Add(sub, [o] { return RunExport(*o); });
}

void RegisterImportCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<model::HfImportOptions>();
  CLI::App* sub = app->add_subcommand(
      "import", "Read a HuggingFace THUDM/glm directory into a glm checkpoint directory");
  AddConfigOption(sub, "");
  AddOption(sub, "input", &o->input,
            "HuggingFace directory (config.json, model.safetensors or its index)");
  AddOption(sub, "output", &o->output,
            "glm checkpoint directory to create (must not exist or be empty)");
  registry->Add(sub, [o] { return RunImport(*o); });
}

}  // namespace glm::cmd
