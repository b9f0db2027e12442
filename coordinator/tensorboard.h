// TensorBoard event files: scalar curves that TensorBoard reads as they grow.
//
// An event file is a sequence of TFRecords (TensorFlow's record framing):
//
//   uint64 length         little-endian, bytes of data
//   uint32 masked_crc     MaskCrc32c(Crc32c(the 8 length bytes)), little-endian
//   byte   data[length]   one serialized glm.tensorboard.Event
//                         (schema/tensorboard/event.proto: TensorFlow's field numbers)
//   uint32 masked_crc     MaskCrc32c(Crc32c(data)), little-endian
//
// The first record is an Event with file_version "brain.Event:2"; each later
// one an Event with wall_time, step and a Summary of simple_value scalars, or
// with a SessionLog START (a run starting or restarting at that step; the
// caller decides when: coordinator/run_metrics.h).
// The file is named events.out.tfevents.<unix seconds>.<hostname> (".2",
// ".3", ... appended when that name is taken). docs/observability.md
// documents the format and the coordinator's tags.
//
// CRC-32C is Boost.CRC (boost::crc_optimal, Castagnoli polynomial 0x1EDC6F41,
// reflected, init and final XOR 0xFFFFFFFF).
//
// Thread-safety: a TensorBoardWriter is not thread-safe (one owner calls it).
// The free functions are pure.
#ifndef GLM_COORDINATOR_TENSORBOARD_H_
#define GLM_COORDINATOR_TENSORBOARD_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace glm::coordinator {

// CRC-32C (Castagnoli) of `data`: Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(std::string_view data);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32).
uint32_t MaskCrc32c(uint32_t crc);
// One TFRecord around `data` (the framing above): 16 + data.size() bytes.
std::string EncodeTfRecord(std::string_view data);

// Seconds since the Unix epoch, now (system clock), with sub-second digits.
double UnixSecondsNow();

struct TensorBoardScalar {
  std::string tag;    // e.g. "loss/blank"
  double value = 0;   // stored as float (TensorBoard's simple_value)
};

class TensorBoardWriter {
 public:
  // Creates `dir` (and its parents) when missing, then a new event file in it
  // (never overwrites one) holding the file_version record, flushed.
  // wall_time: the record's time (Unix seconds); its whole seconds name the
  // file. Errors name the directory or file: FailedPrecondition when `dir`
  // cannot be created or is not a directory, Internal when the file cannot be
  // created or written.
  static StatusOr<std::unique_ptr<TensorBoardWriter>> Open(const std::string& dir,
                                                           double wall_time = UnixSecondsNow());
  ~TensorBoardWriter();  // closes the file
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Appends one Event(wall_time, step, Summary(scalars in order)) and
  // flushes it, so a reader sees the step at once. Internal naming the file
  // when the write or flush fails; the writer is then broken (the record
  // may be partly written) and every later call fails with that error
  // without touching the file.
  Status WriteScalars(int64_t step, double wall_time, const std::vector<TensorBoardScalar>& scalars);
  // Appends Event(wall_time, step, SessionLog{START, msg}): the run restarts
  // at `step`, and TensorBoard drops what this directory holds for steps >=
  // `step` from before this record. Errors as WriteScalars.
  Status WriteSessionStart(int64_t step, double wall_time, const std::string& msg);

  const std::string& path() const { return path_; }
  // Records written, the file_version one included.
  uint64_t num_records() const { return num_records_; }

 private:
  TensorBoardWriter(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  // Frames, writes and flushes one serialized Event.
  Status WriteRecord(const std::string& event_bytes);

  std::FILE* file_;  // owned; closed by the destructor
  const std::string path_;
  uint64_t num_records_ = 0;
  Status broken_ = Status::Ok();  // the first write error, sticky
};

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_TENSORBOARD_H_
