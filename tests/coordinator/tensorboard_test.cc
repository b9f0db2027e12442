// TensorBoardWriter: event files that an independent reader (the TFRecord
// framing parsed here, CRCs checked with Boost.CRC, records decoded with the
// generated protobuf classes) reads back exactly; corrupted bytes are caught.
#include "coordinator/tensorboard.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/crc.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/coordinator/event_file_reader.h"

namespace glm::coordinator {
namespace {
namespace fs = std::filesystem;
using glm::testing::ReadEventFile;
using glm::testing::ReadFileBytes;
using glm::testing::ScalarsOf;

class TensorBoardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_tensorboard_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + std::to_string(getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // A file of the file_version record and `steps` steps, as written.
  std::string WriteSteps(int steps) {
    auto w = TensorBoardWriter::Open((root_ / "tb").string(), 1764400000.5);
    EXPECT_TRUE(w.ok()) << w.status();
    if (!w.ok()) return "";
    for (int s = 1; s <= steps; ++s) {
      Status st = (*w)->WriteScalars(s, 1764400000.5 + s, {{"loss", 10.0 / s}, {"loss/blank", 2.5}, {"zero", 0.0}});
      EXPECT_TRUE(st.ok()) << st;
    }
    return (*w)->path();
  }

  fs::path root_;
};

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  // The CRC-32C check value (RFC 3720 / iSCSI): proves the Boost parameters.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // 32 zero bytes: RFC 3720 B.4 test vector.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
}

TEST(Crc32cTest, MaskRotatesAndAddsTheTfRecordConstant) {
  EXPECT_EQ(MaskCrc32c(0), 0xa282ead8u);
  EXPECT_EQ(MaskCrc32c(0x00008000u), 0xa282ead8u + 1u);  // bit 15 rotates to bit 0
  EXPECT_EQ(MaskCrc32c(1), 0xa282ead8u + (1u << 17));
}

TEST(Crc32cTest, RecordFramingIsLengthCrcDataCrc) {
  const std::string r = EncodeTfRecord("abc");
  ASSERT_EQ(r.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(r.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(r.substr(12, 3), "abc");
  auto le32 = [&](size_t at) { return static_cast<uint32_t>(glm::testing::TestLe(r, at, 4)); };
  EXPECT_EQ(le32(8), MaskCrc32c(Crc32c(r.substr(0, 8))));
  EXPECT_EQ(le32(15), MaskCrc32c(Crc32c("abc")));
}

TEST_F(TensorBoardTest, FileVersionFirstThenEveryStepInOrderWithItsScalars) {
  const std::string path = WriteSteps(5);
  ASSERT_FALSE(path.empty());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  EXPECT_EQ(fs::path(path).filename().string(), std::string("events.out.tfevents.1764400000.") + host);
  auto contents = ReadEventFile(path);
  ASSERT_EQ(contents.error, "");
  ASSERT_EQ(contents.events.size(), 6u);
  EXPECT_EQ(contents.events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(contents.events[0].wall_time(), 1764400000.5);
  EXPECT_FALSE(contents.events[0].has_summary());
  for (int s = 1; s <= 5; ++s) {
    const auto& e = contents.events[s];
    EXPECT_EQ(e.step(), s);
    EXPECT_EQ(e.wall_time(), 1764400000.5 + s);
    ASSERT_EQ(e.summary().value_size(), 3);
    EXPECT_EQ(e.summary().value(0).tag(), "loss");  // order as written
    auto scalars = ScalarsOf(e);
    EXPECT_FLOAT_EQ(scalars.at("loss"), static_cast<float>(10.0 / s));
    EXPECT_FLOAT_EQ(scalars.at("loss/blank"), 2.5f);
    // 0.0 is really there (a oneof member, not a dropped proto3 default).
    ASSERT_EQ(scalars.count("zero"), 1u);
    EXPECT_EQ(scalars.at("zero"), 0.0f);
  }
}

// The reader above decodes with classes generated from the same .proto, so it
// cannot catch a wrong field number; these bytes are written out by hand from
// TensorFlow's event.proto / summary.proto (wall_time 1: fixed64, step 2:
// varint, file_version 3, summary 5 and session_log 6: length-delimited;
// Summary.value 1; Value.tag 1, simple_value 2: fixed32; SessionLog.status 1:
// varint, msg 3).
TEST_F(TensorBoardTest, EventBytesUseTensorFlowsFieldNumbers) {
  auto w = TensorBoardWriter::Open((root_ / "tb").string(), 1.5);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->WriteScalars(2, 1.5, {{"a", 1.0}, {"z", 0.0}}).ok());
  ASSERT_TRUE((*w)->WriteSessionStart(3, 1.5, "m").ok());
  const std::string bytes = ReadFileBytes((*w)->path());
  const std::string wall = std::string("\x09\0\0\0\0\0\0\xf8\x3f", 9);  // field 1, double 1.5
  const std::string version = wall + "\x1a\x0d" "brain.Event:2";
  const std::string value_a = std::string("\x0a\x01" "a" "\x15\0\0\x80\x3f", 8);  // tag, float 1.0
  const std::string value_z = std::string("\x0a\x01" "z" "\x15\0\0\0\0", 8);      // 0.0 still written
  const std::string summary = "\x0a\x08" + value_a + "\x0a\x08" + value_z;
  const std::string step = wall + "\x10\x02" + "\x2a\x14" + summary;
  // session_log 6 {status 1: START = 1, msg 3: "m"}
  const std::string restart = wall + "\x10\x03" + std::string("\x32\x05\x08\x01\x1a\x01" "m", 7);
  EXPECT_EQ(bytes, EncodeTfRecord(version) + EncodeTfRecord(step) + EncodeTfRecord(restart));
}

TEST_F(TensorBoardTest, EachStepIsOnDiskAsSoonAsItIsWritten) {
  auto w = TensorBoardWriter::Open((root_ / "tb").string());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(ReadEventFile((*w)->path()).events.size(), 1u);
  ASSERT_TRUE((*w)->WriteScalars(1, UnixSecondsNow(), {{"loss", 1.0}}).ok());
  auto contents = ReadEventFile((*w)->path());  // the writer is still open
  EXPECT_EQ(contents.error, "");
  ASSERT_EQ(contents.events.size(), 2u);
  EXPECT_EQ(contents.events[1].step(), 1);
  EXPECT_EQ((*w)->num_records(), 2u);
}

TEST_F(TensorBoardTest, ACorruptedDataByteIsACrcMismatch) {
  const std::string path = WriteSteps(3);
  std::string bytes = ReadFileBytes(path);
  ASSERT_EQ(glm::testing::ParseEventBytes(bytes).error, "");
  // Flip one byte inside the data of the last record.
  std::string bad = bytes;
  bad[bad.size() - 8] = static_cast<char>(bad[bad.size() - 8] ^ 0x01);
  auto contents = glm::testing::ParseEventBytes(bad);
  EXPECT_EQ(contents.events.size(), 3u);  // the records before it still read
  EXPECT_NE(contents.error.find("data CRC mismatch"), std::string::npos) << contents.error;
  // Flip one byte of the first record's length.
  bad = bytes;
  bad[0] = static_cast<char>(bad[0] ^ 0x04);
  contents = glm::testing::ParseEventBytes(bad);
  EXPECT_TRUE(contents.events.empty());
  EXPECT_NE(contents.error.find("length CRC mismatch"), std::string::npos) << contents.error;
}

TEST_F(TensorBoardTest, TwoWritersInOneSecondGetTwoFiles) {
  auto a = TensorBoardWriter::Open((root_ / "tb").string(), 1764400000.0);
  auto b = TensorBoardWriter::Open((root_ / "tb").string(), 1764400000.9);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)->path(), (*b)->path());
  EXPECT_EQ((*b)->path(), (*a)->path() + ".2");
  ASSERT_TRUE((*a)->WriteScalars(1, 1764400001.0, {{"x", 1}}).ok());
  EXPECT_EQ(ReadEventFile((*a)->path()).events.size(), 2u);
  EXPECT_EQ(ReadEventFile((*b)->path()).events.size(), 1u);  // a never wrote into b's file
}

TEST_F(TensorBoardTest, AnUnusableDirectoryIsAStatusNamingIt) {
  fs::create_directories(root_);
  std::ofstream(root_ / "file") << "x";
  // A directory below a regular file cannot exist (holds even for root).
  const std::string dir = (root_ / "file" / "tb").string();
  auto w = TensorBoardWriter::Open(dir);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(w.status().message().find(dir), std::string::npos) << w.status();
  // The directory itself a regular file.
  auto v = TensorBoardWriter::Open((root_ / "file").string());
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find((root_ / "file").string()), std::string::npos) << v.status();
}

}  // namespace
}  // namespace glm::coordinator
