// glm bench store: write and read speed of the shard store for GLM samples,
// locally and through the storage server over loopback, in one run so that
// the numbers compare as ratios (docs/benchmarks.md).
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/options.h"
#include "schema/record_codec.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_client.h"
#include "storage/store_server.h"
#include "storage/synthetic.h"
#include "transport/readable_waiter.h"

namespace glm::cmd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct BenchStoreOptions {
  int64_t samples = 10000;  // Default: 10000 samples written and read
  int seq_len = 512;        // Default: 512 tokens per sample
  int batch = 256;          // Default: 256 samples per write batch and per read
  int repeats = 3;          // Default: 3 timed passes per read mode; the best counts
  std::string dir;          // Default: empty = a fresh directory under $TMPDIR, removed afterwards;
                            // otherwise a new or empty directory, kept afterwards
  bool keep = false;        // Default: false = remove the temporary store afterwards
  // Record format version the local store writes (StoreOptions::write_format_version):
  // 2 = packed samples; 1 = unpacked, as before version 2 (for before/after
  // comparisons). Default: schema::kStoreFormatVersion.
  int format_version = static_cast<int>(schema::kStoreFormatVersion);
  // The remote client's longest busy-poll for an answer, microseconds
  // (0 = never). Default: the transport's (transport/readable_waiter.h).
  int busy_poll_us = transport::BusyPollOptions().spin_us;

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("samples", samples, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq-len", seq_len, 16));
    GLM_RETURN_IF_ERROR(RequireAtLeast("batch", batch, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("repeats", repeats, 1));
    GLM_RETURN_IF_ERROR(RequireInRange("format-version", format_version, 1,
                                       static_cast<int>(schema::kStoreFormatVersion)));
    GLM_RETURN_IF_ERROR(RequireInRange("busy-poll-us", busy_poll_us, 0, 1000000));
    return Status::Ok();
  }
};

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

struct Rates {
  double per_s = 0;      // items per wall-clock second
  double per_cpu_s = 0;  // items per CPU-second of the whole process (all threads)
};

// Runs fn() `repeats` times and returns the best rates of `items`.
template <typename Fn>
StatusOr<Rates> BestRate(int repeats, double items, Fn&& fn) {
  Rates best;
  for (int r = 0; r < repeats; ++r) {
    const double cpu = ProcessCpuSeconds();
    auto start = Clock::now();
    GLM_RETURN_IF_ERROR(fn());
    best.per_s = std::max(best.per_s, items / Seconds(start));
    best.per_cpu_s = std::max(best.per_cpu_s, items / std::max(1e-9, ProcessCpuSeconds() - cpu));
  }
  return best;
}

// Reads every sample in batches: by range, or by multi-get of shuffled keys.
Status ReadAll(storage::SampleStore* store, int64_t n, int batch, bool random_keys, uint64_t seed) {
  if (!random_keys) {
    for (int64_t b = 0; b < n; b += batch) {
      GLM_ASSIGN_OR_RETURN(auto got, store->GetSampleRange(Objective::kBlank, 0, b, std::min<int64_t>(n, b + batch)));
      if (got.empty()) return InternalError("empty read");
    }
    return Status::Ok();
  }
  std::vector<uint64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  for (int64_t b = 0; b < n; b += batch) {
    std::vector<storage::SampleKey> keys;
    for (int64_t i = b; i < std::min<int64_t>(n, b + batch); ++i) keys.push_back({Objective::kBlank, 0, order[i]});
    GLM_ASSIGN_OR_RETURN(auto got, store->MultiGetSamples(keys));
    if (got.size() != keys.size()) return InternalError("short read");
  }
  return Status::Ok();
}

int RunBenchStore(const BenchStoreOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench store: %s\n", s.message().c_str());
    return kExitUsage;
  }
  const bool temporary = o.dir.empty();
  const fs::path dir = temporary ? fs::temp_directory_path() / ("glm_bench_store_" + std::to_string(getpid())) : fs::path(o.dir);
  std::error_code ec;
  if (!temporary && fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    std::fprintf(stderr,
                 "glm bench store: --dir %s is not empty; the benchmark writes a fresh store.\n"
                 "HINT: give a new or empty directory, or none for a temporary one.\n",
                 dir.c_str());
    return kExitUsage;
  }
  if (temporary) fs::remove_all(dir);
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "glm bench store: %s\n", s.ToString().c_str());
    if (temporary && !o.keep) fs::remove_all(dir);
    return kExitFailure;
  };
  const int64_t n = o.samples;
  nlohmann::json j = {{"bench", "store"},
                      {"samples", n},
                      {"seq_len", o.seq_len},
                      {"batch", o.batch},
                      {"cpus", std::thread::hardware_concurrency()},
                      {"format_version", o.format_version}, {"busy_poll_us", o.busy_poll_us}};

  // The samples, built once (not timed).
  std::vector<Sample> all;
  all.reserve(n);
  for (int64_t i = 0; i < n; ++i) all.push_back(storage::MakeSyntheticSample(Objective::kBlank, 0, i, o.seq_len));

  // Codec alone, one thread.
  {
    std::vector<std::string> encoded(n);
    const uint32_t version = static_cast<uint32_t>(o.format_version);
    for (int64_t i = 0; i < n; ++i)
      encoded[i] = schema::EncodeSample(all[i], 1, version);  // touch the memory
    double cpu = ProcessCpuSeconds();
    auto start = Clock::now();
    for (int64_t i = 0; i < n; ++i) schema::EncodeSampleTo(all[i], 1, &encoded[i], version);
    j["encode_samples_per_s"] = n / Seconds(start);
    j["encode_samples_per_cpu_s"] = n / std::max(1e-9, ProcessCpuSeconds() - cpu);
    Sample scratch;
    cpu = ProcessCpuSeconds();
    start = Clock::now();
    for (int64_t i = 0; i < n; ++i) {
      if (Status s = schema::DecodeSampleInto(encoded[i], {}, &scratch); !s.ok()) return fail(s);
    }
    j["decode_samples_per_s"] = n / Seconds(start);
    j["decode_samples_per_cpu_s"] = n / std::max(1e-9, ProcessCpuSeconds() - cpu);
    j["record_bytes"] = encoded[0].size();
  }

  storage::StoreOptions so;
  so.path = dir.string();
  so.tokenizer_hash = 0x5eed;
  so.write_format_version = static_cast<uint32_t>(o.format_version);
  auto opened = storage::RocksDbSampleStore::Open(so);
  if (!opened.ok()) return fail(opened.status());
  std::unique_ptr<storage::RocksDbSampleStore> store = std::move(opened).value();

  // Writes: encode + WriteBatch per batch, then a flush to SST files.
  {
    std::vector<std::vector<Sample>> batches;  // copied before timing
    for (int64_t b = 0; b < n; b += o.batch) {
      batches.emplace_back(all.begin() + b, all.begin() + std::min<int64_t>(n, b + o.batch));
    }
    const double cpu = ProcessCpuSeconds();
    auto start = Clock::now();
    for (const std::vector<Sample>& batch : batches) {
      if (Status s = store->PutSamples(batch); !s.ok()) return fail(s);
    }
    j["write_samples_per_s"] = n / Seconds(start);
    j["write_samples_per_cpu_s"] = n / std::max(1e-9, ProcessCpuSeconds() - cpu);
    start = Clock::now();
    if (Status s = store->Flush(); !s.ok()) return fail(s);
    j["flush_s"] = Seconds(start);
  }
  all.clear();
  all.shrink_to_fit();

  auto rate = [&](storage::SampleStore* s, bool random_keys, const char* name) -> bool {
    StatusOr<Rates> r = BestRate(o.repeats, static_cast<double>(n), [&] { return ReadAll(s, n, o.batch, random_keys, 7); });
    if (!r.ok()) {
      fail(r.status());
      return false;
    }
    j[std::string(name) + "_per_s"] = r->per_s;
    j[std::string(name) + "_per_cpu_s"] = r->per_cpu_s;
    return true;
  };
  if (!rate(store.get(), false, "local_range_read_samples")) return kExitFailure;
  if (!rate(store.get(), true, "local_multiget_samples")) return kExitFailure;

  // Through the storage server on loopback: the server thread reads raw
  // records, the client decodes them.
  {
    // One ZeroMQ context (one I/O thread) for both ends: on a machine with
    // few cores, fewer threads than a server and a client process would have.
    zmq::context_t context;
    auto server = storage::StoreServer::Start(store.get(), &context, {});
    if (!server.ok()) return fail(server.status());
    storage::StoreClientOptions co;
    co.endpoint = (*server)->endpoint();
    co.busy_poll.spin_us = o.busy_poll_us;
    auto client = storage::StoreClient::Connect(&context, co);
    if (!client.ok()) return fail(client.status());
    if (!rate(client->get(), false, "remote_range_read_samples")) return kExitFailure;
    if (!rate(client->get(), true, "remote_multiget_samples")) return kExitFailure;
    std::vector<std::vector<Sample>> batches;  // built before timing
    for (int64_t b = 0; b < n; b += o.batch) {
      batches.emplace_back();
      for (int64_t i = b; i < std::min<int64_t>(n, b + o.batch); ++i) {
        batches.back().push_back(storage::MakeSyntheticSample(Objective::kSentence, 0, i, o.seq_len));
      }
    }
    const double cpu = ProcessCpuSeconds();
    auto start = Clock::now();
    for (const std::vector<Sample>& batch : batches) {
      if (Status s = (*client)->PutSamples(batch); !s.ok()) return fail(s);
    }
    j["remote_write_samples_per_s"] = n / Seconds(start);
    j["remote_write_samples_per_cpu_s"] = n / std::max(1e-9, ProcessCpuSeconds() - cpu);
    client->reset();
    (*server)->Stop();
  }
  for (const char* mode : {"range_read", "multiget"}) {
    for (const char* unit : {"per_s", "per_cpu_s"}) {
      const std::string suffix = std::string(mode) + "_samples_" + unit;
      j[std::string("remote_over_local_") + mode + "_" + unit] =
          j["remote_" + suffix].get<double>() / j["local_" + suffix].get<double>();
    }
  }
  auto stats = store->ComputeStats();
  if (stats.ok()) j["bytes_on_disk"] = stats->bytes_on_disk;
  store.reset();
  if (temporary && !o.keep) fs::remove_all(dir);
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterBenchStore(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->get_subcommand("bench");
  auto options = std::make_shared<BenchStoreOptions>();
  CLI::App* sub = bench->add_subcommand(
      "store", "Shard store speed: write and read samples/s, local and through the storage server on loopback");
  AddConfigOption(sub, "");
  AddOption(sub, "samples", &options->samples, "Samples written and read");
  AddOption(sub, "seq-len", &options->seq_len, "Tokens per sample");
  AddOption(sub, "batch", &options->batch, "Samples per write batch and per read");
  AddOption(sub, "repeats", &options->repeats, "Timed passes per read mode (the best counts)");
  AddOption(sub, "dir", &options->dir, "Store directory (empty = a temporary one)");
  AddFlag(sub, "keep", &options->keep, "Keep the store afterwards");
  AddOption(sub, "format-version", &options->format_version,
            "Record format version the local store writes: 2 packed samples, 1 unpacked (as before "
            "version 2); "
            "remote writes always use the server's");
  AddOption(sub, "busy-poll-us", &options->busy_poll_us,
            "Longest busy-poll of the remote client for an answer (0: never; transport/readable_waiter.h)");
  registry->Add(sub, [options] { return RunBenchStore(*options); });
}

}  // namespace glm::cmd
