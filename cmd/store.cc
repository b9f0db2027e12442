// glm store: inspect, verify, digest and export a shard store
// (docs/store-format.md). Every subcommand opens the store read-only, so it
// may run next to the writer.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "storage/keys.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_tools.h"

namespace glm::cmd {
namespace {

using storage::RocksDbSampleStore;

struct StoreToolOptions {
  std::string store;          // Default: none; required
  bool json = false;          // Default: false (stats: text; export: JSON lines always)
  std::string objective;      // Default: empty = all objectives (export)

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireNonEmpty("store", store));
    if (!objective.empty()) GLM_RETURN_IF_ERROR(storage::ParseObjective(objective).status());
    return Status::Ok();
  }
};

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Opens the store read-only; prints the error and returns null on failure.
std::unique_ptr<RocksDbSampleStore> OpenForTool(const std::string& command, const StoreToolOptions& o,
                                                int* exit_code) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm store %s: %s\n", command.c_str(), s.message().c_str());
    *exit_code = kExitUsage;
    return nullptr;
  }
  storage::StoreOptions so;
  so.path = o.store;
  so.mode = storage::OpenMode::kReadOnly;
  auto store = RocksDbSampleStore::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "glm store %s: %s\n", command.c_str(), store.status().ToString().c_str());
    *exit_code = kExitFailure;
    return nullptr;
  }
  return std::move(store).value();
}

int RunStats(const StoreToolOptions& o) {
  int rc = kExitOk;
  auto store = OpenForTool("stats", o, &rc);
  if (!store) return rc;
  auto stats = store->ComputeStats();
  if (!stats.ok()) {
    std::fprintf(stderr, "glm store stats: %s\n", stats.status().ToString().c_str());
    return kExitFailure;
  }
  if (o.json) {
    nlohmann::json by_epoch = nlohmann::json::array();
    for (const auto& [objective, epoch, n] : stats->samples_by_epoch) {
      by_epoch.push_back({{"objective", ObjectiveName(objective)}, {"epoch", epoch}, {"samples", n}});
    }
    nlohmann::json j = {
        {"store", o.store},
        {"format_version", store->info().format_version},
        {"tokenizer_hash", Hex64(store->tokenizer_hash())},
        {"families",
         {{"meta", {{"records", stats->num_meta}, {"sst_bytes", stats->sst_bytes[0]}}},
          {"docs", {{"records", stats->num_docs}, {"tokens", stats->num_doc_tokens}, {"sst_bytes", stats->sst_bytes[1]}}},
          {"samples", {{"records", stats->num_samples}, {"sst_bytes", stats->sst_bytes[2]}}}}},
        {"samples_by_epoch", by_epoch},
        {"bytes_on_disk", stats->bytes_on_disk}};
    std::cout << j.dump() << std::endl;
    return kExitOk;
  }
  std::printf("store           %s\n", o.store.c_str());
  std::printf("format version  %u\n", store->info().format_version);
  std::printf("tokenizer hash  %s\n", Hex64(store->tokenizer_hash()).c_str());
  std::printf("meta            %llu records\n", static_cast<unsigned long long>(stats->num_meta));
  std::printf("docs            %llu documents, %llu tokens\n", static_cast<unsigned long long>(stats->num_docs),
              static_cast<unsigned long long>(stats->num_doc_tokens));
  std::printf("samples         %llu samples\n", static_cast<unsigned long long>(stats->num_samples));
  for (const auto& [objective, epoch, n] : stats->samples_by_epoch) {
    std::printf("  %-9s epoch %-6u %llu\n", std::string(ObjectiveName(objective)).c_str(), epoch,
                static_cast<unsigned long long>(n));
  }
  std::printf("bytes on disk   %llu\n", static_cast<unsigned long long>(stats->bytes_on_disk));
  return kExitOk;
}

int RunVerify(const StoreToolOptions& o) {
  int rc = kExitOk;
  auto store = OpenForTool("verify", o, &rc);
  if (!store) return rc;
  auto report = storage::VerifyStore(store.get());
  if (!report.ok()) {
    std::fprintf(stderr, "glm store verify: %s\n", report.status().ToString().c_str());
    return kExitFailure;
  }
  for (const std::string& p : report->problems) std::printf("BAD %s\n", p.c_str());
  if (!report->ok()) {
    std::fprintf(stderr,
                 "glm store verify: %zu bad records or files in %s (%llu records read).\n"
                 "HINT: re-run the tasks that wrote the named keys; they rewrite them.\n",
                 report->problems.size(), o.store.c_str(), static_cast<unsigned long long>(report->num_records));
    return kExitFailure;
  }
  std::printf("OK %llu records, checksums and decodes verified in %s\n",
              static_cast<unsigned long long>(report->num_records), o.store.c_str());
  return kExitOk;
}

int RunDigest(const StoreToolOptions& o) {
  int rc = kExitOk;
  auto store = OpenForTool("digest", o, &rc);
  if (!store) return rc;
  auto digest = storage::DigestStore(store.get());
  if (!digest.ok()) {
    std::fprintf(stderr, "glm store digest: %s\n", digest.status().ToString().c_str());
    return kExitFailure;
  }
  if (o.json) {
    std::cout << nlohmann::json{{"digest", digest->hex},
                                {"documents", digest->num_documents},
                                {"samples", digest->num_samples}}
                     .dump()
              << std::endl;
  } else {
    std::printf("%s\n", digest->hex.c_str());
  }
  return kExitOk;
}

int RunExport(const StoreToolOptions& o) {
  int rc = kExitOk;
  auto store = OpenForTool("export", o, &rc);
  if (!store) return rc;
  std::optional<Objective> objective;
  if (!o.objective.empty()) objective = *storage::ParseObjective(o.objective);
  Status s = storage::ForEachSample(store.get(), objective, [](const Sample& sample) {
    nlohmann::json spans = nlohmann::json::array();
    for (const auto& [b, e] : sample.spans) spans.push_back({b, e});
    nlohmann::json j = {{"objective", ObjectiveName(sample.objective)},
                        {"epoch", sample.epoch},
                        {"index", sample.index},
                        {"source", sample.source},
                        {"spans", spans},
                        {"layout", sample.suffix_layout ? "suffix" : "blank"},
                        {"tokens", sample.tokens},
                        {"targets", sample.targets},
                        {"loss_mask", sample.loss_mask},
                        {"position_ids", sample.position_ids},
                        {"block_position_ids", sample.block_position_ids},
                        {"sep", sample.sep}};
    std::cout << j.dump() << '\n';
    return static_cast<bool>(std::cout);
  });
  std::cout.flush();
  if (!s.ok()) {
    std::fprintf(stderr, "glm store export: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void RegisterStoreCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* store = app->add_subcommand("store", "Inspect, verify, digest and export a shard store");
  store->require_subcommand(1);

  auto add = [&](const std::string& name, const std::string& help, bool with_json, bool with_objective,
                 int (*run)(const StoreToolOptions&)) {
    auto options = std::make_shared<StoreToolOptions>();
    CLI::App* sub = store->add_subcommand(name, help);
    AddConfigOption(sub, "");
    AddOption(sub, "store", &options->store, "Directory of the store (opened read-only)");
    if (with_json) {
      AddFlag(sub, "json", &options->json,
              name == "export" ? "JSON lines (export's only format; accepted as in `glm corrupt --json`)"
                               : "Print JSON instead of text");
    }
    if (with_objective) {
      AddOption(sub, "objective", &options->objective, "Only this objective: blank, sentence or document");
    }
    registry->Add(sub, [options, run] { return run(*options); });
  };
  add("stats", "Records per family, objective and epoch; bytes on disk", true, false, RunStats);
  add("verify", "Check RocksDB checksums and decode every record; exit 1 naming each bad key", false,
      false, RunVerify);
  add("digest", "Order-independent SHA-256 digest of every document and sample, as hex", true, false,
      RunDigest);
  add("export", "Samples as JSON lines (the `glm corrupt --json` fields)", true, true, RunExport);
}

}  // namespace glm::cmd
