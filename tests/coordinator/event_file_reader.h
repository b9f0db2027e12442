// Test helper: reads a TensorBoard event file independently of the writer
// (coordinator/tensorboard.h): parses the TFRecord framing, checks both masked
// CRC-32Cs with Boost.CRC directly, and decodes each record with the
// generated protobuf classes.
#ifndef GLM_TESTS_COORDINATOR_EVENT_FILE_READER_H_
#define GLM_TESTS_COORDINATOR_EVENT_FILE_READER_H_

#include <boost/crc.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "schema/tensorboard/event.pb.h"

namespace glm::testing {

struct EventFileContents {
  std::vector<glm::tensorboard::Event> events;
  std::string error;  // "" = the whole file read cleanly
};

inline uint32_t TestMaskedCrc32c(const char* data, size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  const uint32_t c = crc.checksum();
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

inline uint64_t TestLe(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

inline EventFileContents ParseEventBytes(const std::string& bytes) {
  EventFileContents out;
  size_t at = 0;
  while (at < bytes.size()) {
    const std::string where = "record " + std::to_string(out.events.size()) + " at byte " + std::to_string(at);
    if (bytes.size() - at < 12) {
      out.error = where + ": truncated header";
      return out;
    }
    const uint64_t length = TestLe(bytes, at, 8);
    if (static_cast<uint32_t>(TestLe(bytes, at + 8, 4)) != TestMaskedCrc32c(bytes.data() + at, 8)) {
      out.error = where + ": length CRC mismatch";
      return out;
    }
    if (bytes.size() - at - 12 < length + 4) {
      out.error = where + ": truncated data";
      return out;
    }
    const char* data = bytes.data() + at + 12;
    if (static_cast<uint32_t>(TestLe(bytes, at + 12 + length, 4)) != TestMaskedCrc32c(data, length)) {
      out.error = where + ": data CRC mismatch";
      return out;
    }
    glm::tensorboard::Event event;
    if (!event.ParseFromArray(data, static_cast<int>(length))) {
      out.error = where + ": not an Event";
      return out;
    }
    out.events.push_back(std::move(event));
    at += 12 + length + 4;
  }
  return out;
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline EventFileContents ReadEventFile(const std::string& path) { return ParseEventBytes(ReadFileBytes(path)); }

// tag -> value of a summary event.
inline std::map<std::string, float> ScalarsOf(const glm::tensorboard::Event& e) {
  std::map<std::string, float> out;
  for (const auto& v : e.summary().value()) {
    if (v.value_case() == glm::tensorboard::SummaryValue::kSimpleValue) out[v.tag()] = v.simple_value();
  }
  return out;
}

// The records of a file in order, one word each: "V" file_version, "S<step>"
// SessionLog START, "<step>" a summary, "?" anything else. E.g. V S1 1 2 3.
inline std::string Layout(const EventFileContents& c) {
  std::string out;
  for (const auto& e : c.events) {
    if (!out.empty()) out += ' ';
    if (e.what_case() == glm::tensorboard::Event::kFileVersion) {
      out += "V";
    } else if (e.has_session_log() && e.session_log().status() == glm::tensorboard::SessionLog::START) {
      out += "S" + std::to_string(e.step());
    } else if (e.has_summary()) {
      out += std::to_string(e.step());
    } else {
      out += "?";
    }
  }
  return out;
}

// The summary events, in order.
inline std::vector<glm::tensorboard::Event> SummaryEvents(const EventFileContents& c) {
  std::vector<glm::tensorboard::Event> out;
  for (const auto& e : c.events) {
    if (e.has_summary()) out.push_back(e);
  }
  return out;
}

}  // namespace glm::testing

#endif  // GLM_TESTS_COORDINATOR_EVENT_FILE_READER_H_
