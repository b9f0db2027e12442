#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "dataloader/corpus.h"
#include "dataloader/text_clean.h"

namespace glm::dataloader {
namespace {

namespace fs = std::filesystem;

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("glm_corpus_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return path;
  }

  // Reads and returns the texts.
  std::vector<std::string> Read(const CorpusOptions& o, CorpusStats* stats, Status* status = nullptr) {
    std::vector<std::string> texts;
    Status s = ReadCorpus(o, [&](RawDocument&& d) {
      texts.push_back(d.text);
      return Status::Ok();
    }, stats);
    if (status) *status = s;
    else EXPECT_TRUE(s.ok()) << s;
    return texts;
  }

  fs::path dir_;
};

TEST_F(CorpusTest, PlainTextSplitsDocumentsAtBlankLines) {
  Write("a.txt", "First doc line one.\nline two.\n\n  \t\nSecond doc.\n\n\n\nThird.");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  auto texts = Read(o, &stats);
  EXPECT_EQ(texts, (std::vector<std::string>{"First doc line one.\nline two.", "Second doc.", "Third."}));
  EXPECT_EQ(stats.documents, 3u);
  EXPECT_EQ(stats.empty_skipped, 0u);
  EXPECT_EQ(stats.files, 1u);
}

TEST_F(CorpusTest, OneDocumentPerFileKeepsBlankLines) {
  Write("a.txt", "Para one.\n\nPara two.\n");
  Write("b.txt", "   \n");
  CorpusOptions o;
  o.paths = {dir_.string()};
  o.text_split = "file";
  CorpusStats stats;
  auto texts = Read(o, &stats);
  EXPECT_EQ(texts, (std::vector<std::string>{"Para one.\n\nPara two."}));
  EXPECT_EQ(stats.empty_skipped, 1u);
}

TEST_F(CorpusTest, JsonlAndJsonReadTheConfiguredField) {
  Write("a.jsonl", "{\"text\": \"one\"}\n\n{\"body\": \"x\"}\nnot json\n{\"text\": \"two\", \"n\": 1}\n\"bare string\"\n");
  Write("b.json", "{\"year\": 1790, \"text\": \"three\"}");
  Write("c.json", "[{\"text\": \"four\"}, {\"text\": 5}, {\"text\": \"five\", \"x\": {\"text\": \"nested\"}}]");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  auto texts = Read(o, &stats);
  EXPECT_EQ(texts, (std::vector<std::string>{"one", "two", "bare string", "three", "four", "five"}));
  EXPECT_EQ(stats.malformed_skipped, 3u);  // no text field, not JSON, a number
  o.text_field = "body";
  o.paths = {(dir_ / "a.jsonl").string()};
  CorpusStats body_stats;
  EXPECT_EQ(Read(o, &body_stats), (std::vector<std::string>{"x", "bare string"}));
}

TEST_F(CorpusTest, TruncatedJsonKeepsTheRecordsBeforeTheDamage) {
  Write("c.json", "[{\"text\": \"four\"}, {\"text\": \"fi");
  CorpusOptions o;
  o.paths = {(dir_ / "c.json").string()};
  CorpusStats stats;
  EXPECT_EQ(Read(o, &stats), (std::vector<std::string>{"four"}));
  EXPECT_EQ(stats.malformed_skipped, 1u);
}

TEST_F(CorpusTest, GzipFilesAreReadTransparently) {
  WriteGz("a.txt.gz", "Zipped one.\n\nZipped two.\n");
  WriteGz("b.jsonl.gz", "{\"text\": \"zipped json\"}\n");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  EXPECT_EQ(Read(o, &stats), (std::vector<std::string>{"Zipped one.", "Zipped two.", "zipped json"}));
}

TEST_F(CorpusTest, CorruptGzipIsADataLossError) {
  std::string gz;
  {
    const std::string path = WriteGz("x.txt.gz", std::string(100000, 'a'));
    std::ifstream in(path, std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  Write("x.txt.gz", gz.substr(0, gz.size() / 2));
  CorpusOptions o;
  o.paths = {(dir_ / "x.txt.gz").string()};
  CorpusStats stats;
  Status s;
  Read(o, &stats, &s);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("x.txt.gz"), std::string::npos);
}

TEST_F(CorpusTest, GlobsAndDirectoriesExpandSortedAndFiltered) {
  Write("b.txt", "B.");
  Write("a.txt", "A.");
  Write("sub/c.jsonl", "{\"text\": \"C.\"}\n");
  Write("LICENSE", "not a corpus file");
  CorpusOptions o;
  o.paths = {dir_.string()};
  auto files = ExpandCorpusPaths(o);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 3u);
  EXPECT_NE((*files)[0].find("a.txt"), std::string::npos);
  o.paths = {(dir_ / "*.txt").string()};
  CorpusStats stats;
  EXPECT_EQ(Read(o, &stats), (std::vector<std::string>{"A.", "B."}));
  o.paths = {(dir_ / "*.none").string()};
  Status s = ExpandCorpusPaths(o).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("matches no files"), std::string::npos);
  o.paths = {(dir_ / "missing.txt").string()};
  EXPECT_EQ(ExpandCorpusPaths(o).status().code(), StatusCode::kNotFound);
  o.paths = {};
  EXPECT_EQ(ExpandCorpusPaths(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CorpusTest, InvalidUtf8IsReplacedAndCountedPunctuationNormalised) {
  Write("a.txt", "bad \xff\xfe byte, \xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x98it\xe2\x80\x99s\xe2\x80\x99 a\xe2\x80\x93" "b \xc3\xa9\n");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  auto texts = Read(o, &stats);
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0], "bad \xef\xbf\xbd\xef\xbf\xbd byte, \"quoted\" 'it's' a-b \xc3\xa9");
  EXPECT_EQ(stats.invalid_utf8, 2u);
  EXPECT_EQ(stats.documents_repaired, 1u);
  EXPECT_EQ(stats.punctuation_normalized, 6u);
  o.normalize_punctuation = false;
  CorpusStats raw_stats;
  EXPECT_NE(Read(o, &raw_stats)[0].find("\xe2\x80\x9c"), std::string::npos);
}

TEST_F(CorpusTest, InvalidUtf8InsideJsonStringsIsReplacedNotASkippedRecord) {
  // The JSON parser refuses invalid UTF-8; the readers repair it first.
  Write("a.jsonl", "{\"text\": \"bad \xff byte\"}\n{\"text\": \"fine \xc3\xa9\"}\n");
  Write("b.json", "[{\"text\": \"also \xc3\x28 bad\"}, {\"text\": \"ok\"}]");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  auto texts = Read(o, &stats);
  EXPECT_EQ(texts, (std::vector<std::string>{"bad \xef\xbf\xbd byte", "fine \xc3\xa9",
                                             "also \xef\xbf\xbd( bad", "ok"}));
  EXPECT_EQ(stats.malformed_skipped, 0u);
  EXPECT_EQ(stats.invalid_utf8, 2u);
  EXPECT_EQ(stats.documents_repaired, 1u);  // JSON files count sequences, not documents
}

TEST_F(CorpusTest, JsonCharactersSplitAcrossReadChunksStayIntact) {
  // 64 KiB read chunks: put euro signs (3 bytes) across every boundary.
  std::string text;
  while (text.size() < 3 * 65536) text += "ab \xe2\x82\xac ";
  Write("big.json", "{\"text\": \"" + text + "\"}");
  CorpusOptions o;
  o.paths = {(dir_ / "big.json").string()};
  o.max_document_bytes = 1 << 20;
  CorpusStats stats;
  auto texts = Read(o, &stats);
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0], std::string(TrimWhitespace(text)));
  EXPECT_EQ(stats.invalid_utf8, 0u);
}

TEST(CleanTextTest, ReplacesMaximalSubpartsOfInvalidSequences) {
  std::string out;
  CleanTextCounts c;
  // Truncated 3-byte sequence, overlong encoding, surrogate, lone continuation.
  CleanText("a\xe2\x82" "b\xc0\xaf" "c\xed\xa0\x80" "d\x80", true, &out, &c);
  EXPECT_EQ(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd");
  EXPECT_EQ(c.invalid_utf8, 7u);
  out.clear();
  CleanText("\xf0\x9f\x98\x80 ok", true, &out, &c);  // a valid 4-byte emoji
  EXPECT_EQ(out, "\xf0\x9f\x98\x80 ok");
}

TEST_F(CorpusTest, BinaryFilesAreSkippedAndCounted) {
  Write("a.txt", std::string("\x7f" "ELF\0\0\0binary", 13));
  Write("b.txt", "Real text.");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  EXPECT_EQ(Read(o, &stats), (std::vector<std::string>{"Real text."}));
  EXPECT_EQ(stats.files_skipped, 1u);
}

TEST_F(CorpusTest, OneHugeLineIsSplitIntoBoundedDocuments) {
  std::string line;
  for (int i = 0; i < 30000; ++i) line += "word" + std::to_string(i % 10) + " ";
  Write("huge.txt", line);
  CorpusOptions o;
  o.paths = {dir_.string()};
  o.max_document_bytes = 4096;
  CorpusStats stats;
  auto texts = Read(o, &stats);
  ASSERT_GT(texts.size(), 40u);
  size_t total = 0;
  for (const auto& t : texts) {
    EXPECT_LE(t.size(), 4096u);
    EXPECT_NE(t.back(), ' ');
    total += t.size() + 1;
  }
  EXPECT_EQ(total, line.size());  // nothing lost but the whitespace at the cuts
  EXPECT_EQ(stats.documents_split, 1u);
  EXPECT_EQ(stats.split_pieces, texts.size() - 1);
}

TEST_F(CorpusTest, OverlongJsonlLinesAreSkippedAndCounted) {
  Write("a.jsonl", "{\"text\": \"" + std::string(5000, 'x') + "\"}\n{\"text\": \"short\"}\n");
  CorpusOptions o;
  o.paths = {dir_.string()};
  o.max_line_bytes = 1000;
  CorpusStats stats;
  EXPECT_EQ(Read(o, &stats), (std::vector<std::string>{"short"}));
  EXPECT_EQ(stats.lines_too_long, 1u);
}

TEST_F(CorpusTest, EmptyFilesAndInputsYieldNothing) {
  Write("empty.txt", "");
  Write("empty.jsonl", "");
  Write("empty.json", "");
  CorpusOptions o;
  o.paths = {dir_.string()};
  CorpusStats stats;
  EXPECT_TRUE(Read(o, &stats).empty());
  EXPECT_EQ(stats.malformed_skipped, 1u);  // an empty .json file is not JSON
  EXPECT_NE(stats.ToString().find("read 0 documents"), std::string::npos);
}

// Byte-range shards of text and JSONL files: every document exactly once,
// whatever the shard size.
TEST_F(CorpusTest, ShardsPartitionTheDocumentsExactly) {
  std::string text, jsonl;
  std::vector<std::string> want;
  for (int i = 0; i < 200; ++i) {
    std::string doc = "Document " + std::to_string(i) + (i % 3 ? " with more words.\nSecond line." : ".");
    text += doc + (i % 5 ? "\n\n" : "\n  \n\n");
    want.push_back(doc);
  }
  for (int i = 0; i < 200; ++i) jsonl += "{\"text\": \"J" + std::to_string(i) + "\"}\n";
  Write("a.txt", text);
  Write("b.jsonl", jsonl);
  for (int i = 0; i < 200; ++i) want.push_back("J" + std::to_string(i));
  for (int64_t shard_bytes : {1, 7, 64, 333, 1000, 100000}) {
    CorpusOptions o;
    o.paths = {dir_.string()};
    o.shard_bytes = shard_bytes;
    auto shards = PlanShards(o);
    ASSERT_TRUE(shards.ok());
    std::vector<std::string> got;
    CorpusStats stats;
    for (const auto& shard : *shards) {
      ASSERT_TRUE(ReadShard(o, shard, [&](RawDocument&& d) {
        got.push_back(d.text);
        return Status::Ok();
      }, &stats).ok());
    }
    EXPECT_EQ(got, want) << "shard_bytes " << shard_bytes << ", " << shards->size() << " shards";
    auto again = PlanShards(o);
    EXPECT_EQ(ShardPlanHash(*shards), ShardPlanHash(*again));
  }
}

TEST_F(CorpusTest, SmallFilesAreGroupedIntoShards) {
  for (int i = 0; i < 10; ++i) Write("f" + std::to_string(i) + ".txt", std::string(100, 'a'));
  CorpusOptions o;
  o.paths = {dir_.string()};
  o.shard_bytes = 350;
  auto shards = PlanShards(o);
  ASSERT_TRUE(shards.ok());
  ASSERT_EQ(shards->size(), 3u);  // 4 + 4 + 2 files
  EXPECT_EQ((*shards)[0].parts.size(), 4u);
  EXPECT_EQ((*shards)[2].parts.size(), 2u);
  EXPECT_EQ((*shards)[1].index, 1u);
}

TEST(CorpusOptionsTest, RejectsBadValues) {
  CorpusOptions o;
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);  // no paths
  o.paths = {"x"};
  EXPECT_TRUE(o.Validate().ok());
  o.format = "xml";
  EXPECT_NE(o.Validate().message().find("format"), std::string::npos);
  o.format = "auto";
  o.text_split = "lines";
  EXPECT_FALSE(o.Validate().ok());
}

TEST(ReadDocumentsFromBufferTest, ParsesEachFormat) {
  CorpusOptions o;
  CorpusStats stats;
  std::vector<std::string> got;
  auto collect = [&](RawDocument&& d) {
    got.push_back(d.text);
    return Status::Ok();
  };
  ASSERT_TRUE(ReadDocumentsFromBuffer("a\n\nb", CorpusFormat::kText, o, collect, &stats).ok());
  ASSERT_TRUE(ReadDocumentsFromBuffer("{\"text\":\"c\"}", CorpusFormat::kJsonl, o, collect, &stats).ok());
  ASSERT_TRUE(ReadDocumentsFromBuffer("[\"d\"]", CorpusFormat::kJson, o, collect, &stats).ok());
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(ReadDocumentsFromBufferTest, CallbackErrorsStopTheRead) {
  CorpusOptions o;
  CorpusStats stats;
  int calls = 0;
  Status s = ReadDocumentsFromBuffer("a\n\nb\n\nc", CorpusFormat::kText, o, [&](RawDocument&&) {
    ++calls;
    return AbortedError("stop");
  }, &stats);
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace glm::dataloader
