#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace glm::model {
namespace {

// Headers larger than this are refused (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* FindDtype(const std::string& name) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeInfo* FindDtype(torch::ScalarType type) {
  for (const DtypeInfo& d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Status ParseEntry(const std::string& name, const nlohmann::json& v, uint64_t data_size, SafetensorsEntry* e) {
  const std::string where = "tensor '" + name + "': ";
  if (!v.is_object()) return DataLossError(where + "header entry is not an object");
  auto dtype = v.find("dtype");
  auto shape = v.find("shape");
  auto offsets = v.find("data_offsets");
  if (dtype == v.end() || !dtype->is_string()) return DataLossError(where + "missing or bad 'dtype'");
  if (shape == v.end() || !shape->is_array()) return DataLossError(where + "missing or bad 'shape'");
  if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2) {
    return DataLossError(where + "missing or bad 'data_offsets'");
  }
  e->name = name;
  e->dtype = dtype->get<std::string>();
  const DtypeInfo* info = FindDtype(e->dtype);
  if (info == nullptr) return DataLossError(where + "unsupported dtype '" + e->dtype + "'");
  uint64_t numel = 1;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
      return DataLossError(where + "shape entries must be non-negative integers");
    }
    const auto dim = d.get<uint64_t>();
    if (dim > (1ull << 40) || (dim != 0 && numel > (1ull << 40) / dim)) {
      return DataLossError(where + "shape is implausibly large");
    }
    numel *= dim;
    e->shape.push_back(static_cast<int64_t>(dim));
  }
  for (const auto& o : *offsets) {
    if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0)) {
      return DataLossError(where + "data_offsets must be non-negative integers");
    }
  }
  e->begin = (*offsets)[0].get<uint64_t>();
  e->end = (*offsets)[1].get<uint64_t>();
  if (e->end < e->begin) return DataLossError(where + "data_offsets end before begin");
  if (e->end - e->begin != numel * info->bytes) {
    return DataLossError(where + "data_offsets cover " + std::to_string(e->end - e->begin) + " bytes but " +
                         e->dtype + " " + ShapeString(e->shape) + " needs " + std::to_string(numel * info->bytes));
  }
  if (e->end > data_size) {
    return DataLossError(where + "data ends at byte " + std::to_string(e->end) + " but the file holds only " +
                         std::to_string(data_size) + " data bytes (truncated file?)");
  }
  return Status::Ok();
}

std::string StripPrefix(const std::string& name) {
  static const std::string kPrefix = "glm.";
  return name.compare(0, kPrefix.size(), kPrefix) == 0 ? name.substr(kPrefix.size()) : name;
}

}  // namespace

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFoundError("cannot open safetensors file " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return NotFoundError("cannot stat " + path);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  if (size < 8) {
    ::close(fd);
    return DataLossError(path + ": " + std::to_string(size) + " bytes, too short for a safetensors header");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return InternalError("cannot mmap " + path + ": " + std::strerror(errno));
  file->mapping_ = map;
  file->mapping_size_ = size;
  const auto* bytes = static_cast<const uint8_t*>(map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return DataLossError(path + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                         std::to_string(size) + " (truncated or not a safetensors file)");
  }
  file->data_ = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  nlohmann::json header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes + 8),
                                                reinterpret_cast<const char*>(bytes + 8 + header_len), nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return DataLossError(path + ": header is not a JSON object (corrupt file?)");
  }
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return DataLossError(path + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return DataLossError(path + ": __metadata__ value '" + m.key() + "' is not a string");
        file->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    SafetensorsEntry e;
    Status s = ParseEntry(it.key(), *it, data_size, &e);
    if (!s.ok()) return s.WithContext(path);
    file->entries_.push_back(std::move(e));
  }
  return file;
}

const SafetensorsEntry* SafetensorsFile::Find(const std::string& name) const {
  for (const SafetensorsEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

StatusOr<torch::Tensor> SafetensorsFile::Read(const std::string& name) const {
  const SafetensorsEntry* e = Find(name);
  if (e == nullptr) return NotFoundError(path_ + ": no tensor '" + name + "'");
  const DtypeInfo* info = FindDtype(e->dtype);
  torch::Tensor t = torch::empty(e->shape, torch::TensorOptions().dtype(info->type));
  if (e->end > e->begin) std::memcpy(t.data_ptr(), data_ + e->begin, e->end - e->begin);
  return t;
}

Status WriteSafetensors(const std::string& path,
                        const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || !seen.insert(name).second) {
      return InvalidArgumentError("WriteSafetensors: bad or duplicate tensor name '" + name + "'");
    }
    const DtypeInfo* info = FindDtype(tensor.scalar_type());
    if (info == nullptr) {
      return InvalidArgumentError("WriteSafetensors: tensor '" + name + "' has an unsupported dtype");
    }
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * info->bytes;
    header[name] = {{"dtype", info->name},
                    {"shape", std::vector<int64_t>(t.sizes().begin(), t.sizes().end())},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(t);
  }
  std::string text = header.dump();
  // Pad the header with spaces so the data section is 8-byte aligned.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return InternalError("cannot write " + tmp);
    uint8_t len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const torch::Tensor& t : contiguous) {
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * static_cast<int64_t>(t.element_size())));
    }
    out.close();
    if (!out) return InternalError("error writing " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return InternalError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status SaveModel(GlmModel& model, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError("cannot create " + dir + ": " + ec.message());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) tensors.emplace_back(p.key(), p.value());
  std::map<std::string, std::string> metadata = model->config().ToMetadata();
  metadata["format"] = "pt";
  GLM_RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", tensors, metadata));
  return model->config().WriteJsonFile(dir + "/config.json");
}

StatusOr<GlmConfig> ResolveConfig(const SafetensorsFile& file, const std::string& config_path) {
  if (!config_path.empty()) return GlmConfig::FromJsonFile(config_path);
  const std::filesystem::path beside = std::filesystem::path(file.path()).parent_path() / "config.json";
  if (std::filesystem::exists(beside)) return GlmConfig::FromJsonFile(beside.string());
  if (file.metadata().count("num_layers") == 0) {
    return InvalidArgumentError(file.path() +
                                ": no model config: pass --config, put config.json beside the weights, or "
                                "store num_layers, hidden_size, num_attention_heads, vocab_size and "
                                "max_sequence_length in the safetensors __metadata__");
  }
  StatusOr<GlmConfig> c = GlmConfig::FromMetadata(file.metadata());
  if (!c.ok()) return c.status().WithContext(file.path() + " __metadata__");
  return c;
}

Status LoadParameters(const SafetensorsFile& file, GlmModel& model) {
  std::map<std::string, const SafetensorsEntry*> by_name;
  for (const SafetensorsEntry& e : file.entries()) {
    const std::string name = StripPrefix(e.name);
    if (!by_name.emplace(name, &e).second) {
      return InvalidArgumentError(file.path() + ": tensor '" + name + "' appears twice (with and without 'glm.')");
    }
  }
  auto params = model->named_parameters();
  for (const auto& p : params) {
    if (by_name.count(p.key()) == 0) {
      return InvalidArgumentError(file.path() + ": missing tensor '" + p.key() + "' (shape " +
                                  ShapeString(p.value().sizes().vec()) + ")");
    }
  }
  for (const auto& [name, e] : by_name) {
    if (params.find(name) == nullptr) {
      return InvalidArgumentError(file.path() + ": unexpected tensor '" + e->name +
                                  "' (not a parameter of this GLM config)");
    }
  }
  // Check everything before copying anything: a refused file leaves the model unchanged.
  for (auto& p : params) {
    const SafetensorsEntry* e = by_name[p.key()];
    if (e->shape != p.value().sizes().vec()) {
      return InvalidArgumentError(file.path() + ": tensor '" + e->name + "' has shape " + ShapeString(e->shape) +
                                  ", the model expects " + ShapeString(p.value().sizes().vec()));
    }
    if (e->dtype != "F64" && e->dtype != "F32" && e->dtype != "F16" && e->dtype != "BF16") {
      return InvalidArgumentError(file.path() + ": tensor '" + e->name + "' has dtype " + e->dtype +
                                  ", expected a floating type");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    GLM_ASSIGN_OR_RETURN(torch::Tensor t, file.Read(by_name[p.key()]->name));
    p.value().copy_(t);
  }
  return Status::Ok();
}

StatusOr<GlmModel> LoadModel(const std::string& weights_path, const std::string& config_path,
                             torch::ScalarType dtype) {
  GLM_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(weights_path));
  GLM_ASSIGN_OR_RETURN(GlmConfig config, ResolveConfig(*file, config_path));
  GlmModel model(config);
  model->to(dtype);
  GLM_RETURN_IF_ERROR(LoadParameters(*file, model));
  return model;
}

}  // namespace glm::model
