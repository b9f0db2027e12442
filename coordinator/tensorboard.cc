#include "coordinator/tensorboard.h"

#include <unistd.h>

#include <boost/crc.hpp>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "schema/tensorboard/event.pb.h"

namespace glm::coordinator {
namespace {

namespace fs = std::filesystem;

// CRC-32C: Castagnoli polynomial, reflected in and out, as in iSCSI/TFRecord.
using Crc32cComputer = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name(buf);
  // A file name, not a path: keep it one component.
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  return name;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  Crc32cComputer crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

uint32_t MaskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string EncodeTfRecord(std::string_view data) {
  std::string out;
  out.reserve(16 + data.size());
  PutLe(data.size(), 8, &out);
  PutLe(MaskCrc32c(Crc32c(std::string_view(out.data(), 8))), 4, &out);
  out.append(data.data(), data.size());
  PutLe(MaskCrc32c(Crc32c(data)), 4, &out);
  return out;
}

double UnixSecondsNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

StatusOr<std::unique_ptr<TensorBoardWriter>> TensorBoardWriter::Open(const std::string& dir, double wall_time) {
  if (dir.empty()) return InvalidArgumentError("tensorboard: empty directory name");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    return FailedPreconditionError("tensorboard: cannot create the directory " + dir + ": " +
                                   (ec ? ec.message() : std::string("not a directory")));
  }
  const std::string base = (fs::path(dir) / ("events.out.tfevents." +
                                             std::to_string(static_cast<int64_t>(std::floor(wall_time))) +
                                             "." + HostName()))
                               .string();
  // "x": exclusive create; a name taken (a restart within the same second)
  // gets the next suffix.
  std::FILE* file = nullptr;
  std::string path;
  for (int n = 1; n <= 1000 && file == nullptr; ++n) {
    path = n == 1 ? base : base + "." + std::to_string(n);
    file = std::fopen(path.c_str(), "wbx");
    if (file == nullptr && errno != EEXIST) {
      return InternalError("tensorboard: cannot create " + path + ": " + std::strerror(errno));
    }
  }
  if (file == nullptr) return InternalError("tensorboard: cannot create " + base + "(.N): every name is taken");
  std::unique_ptr<TensorBoardWriter> writer(new TensorBoardWriter(file, path));
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_file_version("brain.Event:2");
  GLM_RETURN_IF_ERROR(writer->WriteRecord(event.SerializeAsString()));
  return writer;
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

Status TensorBoardWriter::WriteScalars(int64_t step, double wall_time, const std::vector<TensorBoardScalar>& scalars) {
  if (!broken_.ok()) return broken_;
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  tensorboard::Summary* summary = event.mutable_summary();
  for (const TensorBoardScalar& s : scalars) {
    tensorboard::SummaryValue* v = summary->add_value();
    v->set_tag(s.tag);
    v->set_simple_value(static_cast<float>(s.value));
  }
  return WriteRecord(event.SerializeAsString());
}

Status TensorBoardWriter::WriteSessionStart(int64_t step, double wall_time, const std::string& msg) {
  if (!broken_.ok()) return broken_;
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  event.mutable_session_log()->set_status(tensorboard::SessionLog::START);
  event.mutable_session_log()->set_msg(msg);
  return WriteRecord(event.SerializeAsString());
}

Status TensorBoardWriter::WriteRecord(const std::string& event_bytes) {
  if (!broken_.ok()) return broken_;
  const std::string record = EncodeTfRecord(event_bytes);
  errno = 0;
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0) {
    broken_ = InternalError("tensorboard: cannot write " + path_ + ": " +
                            (errno != 0 ? std::strerror(errno) : "short write"));
    return broken_;
  }
  ++num_records_;
  return Status::Ok();
}

}  // namespace glm::coordinator
