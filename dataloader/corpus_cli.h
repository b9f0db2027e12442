// The corpus flags shared by every command that reads a corpus (glm
// tokenizer train, glm corrupt, the pipeline): each is also a GLM_* variable
// and a YAML key, so another corpus is a config change.
//
// Thread-safety: use while building the CLI (main thread).
#ifndef GLM_DATALOADER_CORPUS_CLI_H_
#define GLM_DATALOADER_CORPUS_CLI_H_

#include <CLI/CLI.hpp>

#include "common/cli.h"
#include "dataloader/corpus.h"

namespace glm::dataloader {

inline void AddCorpusOptions(CLI::App* app, CorpusOptions* corpus, bool required = true) {
  CLI::Option* input = AddOption(app, "input", &corpus->paths,
                                 "Corpus files, directories or globs (e.g. 'data/sotu/*.txt')");
  if (required) input->required();
  AddOption(app, "format", &corpus->format, "auto (by extension), text, jsonl or json");
  AddOption(app, "text-field", &corpus->text_field, "JSON key holding a document's text");
  AddOption(app, "text-split", &corpus->text_split,
            "Plain text: blank-line (documents separated by blank lines) or file (one per file)");
  AddOption(app, "max-document-bytes", &corpus->max_document_bytes,
            "Documents longer than this are split");
  AddOption(app, "max-line-bytes", &corpus->max_line_bytes, "JSONL lines longer than this are skipped");
  AddOption(app, "normalize-punctuation", &corpus->normalize_punctuation,
            "Curly quotes and en dashes to ASCII (the reference's normalisation)");
}

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_CORPUS_CLI_H_
