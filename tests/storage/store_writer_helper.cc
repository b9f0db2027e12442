// A writer process for the store's crash and lock tests:
//   store_writer_helper DIR hold           opens DIR for writing, prints "ready", waits for stdin EOF
//   store_writer_helper DIR write BATCH    writes batches of BATCH samples (blank, epoch 0, index
//                                          b*BATCH + j, 64 tokens) forever, printing "committed b"
//                                          after each batch returns
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/rocksdb_sample_store.h"
#include "storage/synthetic.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DIR hold|write [BATCH]\n", argv[0]);
    return 2;
  }
  glm::storage::StoreOptions options;
  options.path = argv[1];
  options.tokenizer_hash = 0x5eed;
  auto store = glm::storage::RocksDbSampleStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  const std::string mode = argv[2];
  if (mode == "hold") {
    std::printf("ready\n");
    std::fflush(stdout);
    while (std::getchar() != EOF) {
    }
    return 0;
  }
  const int batch = argc > 3 ? std::atoi(argv[3]) : 100;
  for (uint64_t b = 0;; ++b) {
    std::vector<glm::Sample> samples;
    for (int j = 0; j < batch; ++j) {
      samples.push_back(glm::storage::MakeSyntheticSample(glm::Objective::kBlank, 0, b * batch + j, 64));
    }
    glm::Status s = (*store)->PutSamples(samples);
    if (!s.ok()) {
      std::fprintf(stderr, "write: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf("committed %llu\n", static_cast<unsigned long long>(b));
    std::fflush(stdout);
  }
}
