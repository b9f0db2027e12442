#include "worker/trainer/checkpoint.h"

#include "model/safetensors.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace glm::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kCheckpointFormatVersion = 1;

Status FsyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return InternalError("cannot open " + path + " to fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return InternalError("fsync " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

Status WriteString(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) return ResourceExhaustedError("cannot write " + path);
  return Status::Ok();
}

StatusOr<std::string> ReadString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// (bytes, CRC-32 as zlib computes it) of a file.
StatusOr<std::pair<uint64_t, uint32_t>> FileChecksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("missing file " + path);
  std::vector<char> buffer(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t bytes = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer.data()), static_cast<uInt>(n));
    bytes += static_cast<uint64_t>(n);
  }
  return std::make_pair(bytes, static_cast<uint32_t>(crc));
}

std::string StepDirName(int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "step-%010lld", static_cast<long long>(step));
  return name;
}

}  // namespace

Status WriteSafetensors(const std::string& path, const NamedTensors& tensors) {
  return model::WriteSafetensors(path, tensors);
}

StatusOr<NamedTensors> ReadSafetensors(const std::string& path) {
  GLM_ASSIGN_OR_RETURN(std::unique_ptr<model::SafetensorsFile> file,
                       model::SafetensorsFile::Open(path));
  NamedTensors out;
  out.reserve(file->entries().size());
  for (const model::SafetensorsEntry& entry : file->entries()) {
    GLM_ASSIGN_OR_RETURN(torch::Tensor t, file->Read(entry.name));
    out.emplace_back(entry.name, std::move(t));
  }
  return out;
}

std::string TrainerStateToJson(const TrainerState& s) {
  json j = {{"format_version", s.format_version},
            {"step", s.step},
            {"consumed",
             {{"blank", s.consumed[0]}, {"sentence", s.consumed[1]}, {"document", s.consumed[2]}}},
            {"data_cursor", s.data_cursor},
            {"global_batch_size", s.global_batch_size},
            {"world_size", s.world_size},
            {"generation", s.generation},
            {"seed", s.seed},
            {"optimizer_steps", s.optimizer_steps},
            {"rng", s.rng}};
  return j.dump(2) + "\n";
}

StatusOr<TrainerState> TrainerStateFromJson(const std::string& text) {
  try {
    json j = json::parse(text);
    TrainerState s;
    s.format_version = j.at("format_version").get<int64_t>();
    if (s.format_version != kCheckpointFormatVersion) {
      return FailedPreconditionError("trainer_state.json has format_version " +
                                     std::to_string(s.format_version) + "; this build reads " +
                                     std::to_string(kCheckpointFormatVersion));
    }
    s.step = j.at("step").get<int64_t>();
    s.consumed[0] = j.at("consumed").at("blank").get<uint64_t>();
    s.consumed[1] = j.at("consumed").at("sentence").get<uint64_t>();
    s.consumed[2] = j.at("consumed").at("document").get<uint64_t>();
    s.data_cursor = j.at("data_cursor").get<int64_t>();
    s.global_batch_size = j.at("global_batch_size").get<int64_t>();
    s.world_size = j.at("world_size").get<int64_t>();
    s.generation = j.at("generation").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.optimizer_steps = j.at("optimizer_steps").get<int64_t>();
    s.rng = j.at("rng").get<std::string>();
    return s;
  } catch (const std::exception& e) {
    return DataLossError(std::string("malformed trainer_state.json: ") + e.what());
  }
}

NamedTensors SnapshotTensors(const NamedTensors& live) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  out.reserve(live.size());
  for (const auto& [name, t] : live) {
    out.emplace_back(name, t.detach().to(torch::kCPU).clone(torch::MemoryFormat::Contiguous));
  }
  return out;
}

Status CheckpointOptions::Validate() const {
  if (directory.empty()) {
    return InvalidArgumentError("checkpoint directory is empty: set --checkpoint-dir");
  }
  if (keep_last < 1) return InvalidArgumentError("checkpoint keep-last must be >= 1");
  if (!model_writer || !model_reader) return InvalidArgumentError("checkpoint model I/O unset");
  return Status::Ok();
}

CheckpointManager::CheckpointManager(CheckpointOptions options) : options_(std::move(options)) {}

CheckpointManager::~CheckpointManager() { Wait().IgnoreError(); }

StatusOr<std::string> CheckpointManager::Save(const CheckpointSnapshot& snapshot) {
  GLM_RETURN_IF_ERROR(options_.Validate());
  std::error_code ec;
  fs::create_directories(options_.directory, ec);
  if (ec)
    return ResourceExhaustedError("cannot create " + options_.directory + ": " + ec.message());
  const std::string name = StepDirName(snapshot.state.step);
  const fs::path final_dir = fs::path(options_.directory) / name;
  const fs::path tmp_dir = fs::path(options_.directory) / ("." + name + ".tmp");
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir, ec);
  if (ec) return ResourceExhaustedError("cannot create " + tmp_dir.string() + ": " + ec.message());

  std::vector<std::string> files;
  auto add = [&](const std::string& file, const Status& status) -> Status {
    if (!status.ok()) return status.WithContext("checkpoint " + name + " " + file);
    files.push_back(file);
    return Status::Ok();
  };
  GLM_RETURN_IF_ERROR(
      add("model.safetensors",
          options_.model_writer((tmp_dir / "model.safetensors").string(), snapshot.model)));
  GLM_RETURN_IF_ERROR(
      add("optimizer.safetensors",
          WriteSafetensors((tmp_dir / "optimizer.safetensors").string(), snapshot.optimizer)));
  GLM_RETURN_IF_ERROR(add(
      "trainer_state.json",
      WriteString((tmp_dir / "trainer_state.json").string(), TrainerStateToJson(snapshot.state))));
  GLM_RETURN_IF_ERROR(
      add("config.json", WriteString((tmp_dir / "config.json").string(), snapshot.config_json)));
  for (const auto& [file, source] : snapshot.extra_files) {
    fs::copy_file(source, tmp_dir / file, fs::copy_options::overwrite_existing, ec);
    GLM_RETURN_IF_ERROR(add(
        file, ec ? NotFoundError("cannot copy " + source + ": " + ec.message()) : Status::Ok()));
  }
  json sums = {{"format_version", kCheckpointFormatVersion}, {"files", json::object()}};
  for (const std::string& file : files) {
    const std::string path = (tmp_dir / file).string();
    GLM_RETURN_IF_ERROR(FsyncPath(path));
    GLM_ASSIGN_OR_RETURN(auto sum, FileChecksum(path));
    sums["files"][file] = {{"bytes", sum.first}, {"crc32", sum.second}};
  }
  const std::string sums_path = (tmp_dir / "checksums.json").string();
  GLM_RETURN_IF_ERROR(WriteString(sums_path, sums.dump(2) + "\n"));
  GLM_RETURN_IF_ERROR(FsyncPath(sums_path));
  GLM_RETURN_IF_ERROR(FsyncPath(tmp_dir.string()));
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) return InternalError("cannot rename " + tmp_dir.string() + ": " + ec.message());
  GLM_RETURN_IF_ERROR(FsyncPath(options_.directory));

  std::vector<std::string> all = List();
  for (size_t i = 0; i + static_cast<size_t>(options_.keep_last) < all.size(); ++i) {
    fs::remove_all(all[i], ec);
  }
  return final_dir.string();
}

Status CheckpointManager::SaveCatching(const CheckpointSnapshot& snapshot) {
  Status status;
  try {
    status = Save(snapshot).status();
  } catch (const std::exception& e) {
    status = InternalError(std::string("checkpoint write threw: ") + e.what());
  }
  if (!status.ok()) spdlog::error("asynchronous checkpoint failed: {}", status.ToString());
  return status;
}

Status CheckpointManager::SaveAsync(CheckpointSnapshot snapshot) {
  GLM_RETURN_IF_ERROR(Wait());
  pending_ = std::async(std::launch::async,
                        [this, s = std::move(snapshot)]() -> Status { return SaveCatching(s); });
  return Status::Ok();
}

StatusOr<std::shared_future<void>> CheckpointManager::SaveLiveAsync(CheckpointSnapshot live) {
  GLM_RETURN_IF_ERROR(Wait());
  auto copied = std::make_shared<std::promise<void>>();
  std::shared_future<void> copied_future = copied->get_future().share();
  pending_ = std::async(std::launch::async, [this, copied, s = std::move(live)]() mutable {
    try {
      s.model = SnapshotTensors(s.model);
      s.optimizer = SnapshotTensors(s.optimizer);
    } catch (const std::exception& e) {
      copied->set_value();
      spdlog::error("checkpoint snapshot failed: {}", e.what());
      return InternalError(std::string("checkpoint snapshot failed: ") + e.what());
    }
    copied->set_value();
    return SaveCatching(s);
  });
  return copied_future;
}

Status CheckpointManager::Wait() {
  if (!pending_.valid()) return Status::Ok();
  return pending_.get();
}

std::vector<std::string> CheckpointManager::List() const {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(options_.directory, ec)) return out;
  for (const auto& entry : fs::directory_iterator(options_.directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

StatusOr<LoadedCheckpoint> CheckpointManager::Load(const std::string& path) const {
  GLM_ASSIGN_OR_RETURN(std::string sums_text, ReadString(path + "/checksums.json"));
  json sums;
  try {
    sums = json::parse(sums_text);
    for (auto it = sums.at("files").begin(); it != sums.at("files").end(); ++it) {
      auto actual = FileChecksum(path + "/" + it.key());
      if (!actual.ok()) return DataLossError(path + ": " + actual.status().message());
      if (actual->first != it.value().at("bytes").get<uint64_t>() ||
          actual->second != it.value().at("crc32").get<uint32_t>()) {
        return DataLossError(path + "/" + it.key() + " does not match its checksum (" +
                             std::to_string(actual->first) + " bytes; expected " +
                             std::to_string(it.value().at("bytes").get<uint64_t>()) + ")");
      }
    }
  } catch (const json::exception& e) {
    return DataLossError(path + ": malformed checksums.json: " + e.what());
  }
  LoadedCheckpoint loaded;
  loaded.path = path;
  GLM_ASSIGN_OR_RETURN(loaded.snapshot.model, options_.model_reader(path + "/model.safetensors"));
  GLM_ASSIGN_OR_RETURN(loaded.snapshot.optimizer, ReadSafetensors(path + "/optimizer.safetensors"));
  GLM_ASSIGN_OR_RETURN(std::string state_text, ReadString(path + "/trainer_state.json"));
  GLM_ASSIGN_OR_RETURN(loaded.snapshot.state, TrainerStateFromJson(state_text));
  GLM_ASSIGN_OR_RETURN(loaded.snapshot.config_json, ReadString(path + "/config.json"));
  return loaded;
}

StatusOr<LoadedCheckpoint> CheckpointManager::LoadLatest() const {
  std::vector<std::string> all = List();
  if (all.empty()) return NotFoundError("no checkpoint in " + options_.directory);
  Status last_error;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    auto loaded = Load(*it);
    if (loaded.ok()) return loaded;
    last_error = loaded.status();
    spdlog::warn("checkpoint {} is unusable ({}); trying the previous one", *it,
                 loaded.status().ToString());
  }
  return DataLossError("every checkpoint in " + options_.directory +
                       " is corrupt; last error: " + last_error.message());
}

}  // namespace glm::trainer
