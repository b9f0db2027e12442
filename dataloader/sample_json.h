// The JSON form of a sample, one line per sample (`glm corrupt --json`):
// objective, epoch, index, tokenizer_hash, source, spans ([start, end) in
// source coordinates, Part-B order), layout ("blank" or "suffix"), tokens,
// targets, loss_mask, position_ids, block_position_ids, sep.
// docs/data-pipeline.md documents the fields.
//
// Thread-safety: pure functions.
#ifndef GLM_DATALOADER_SAMPLE_JSON_H_
#define GLM_DATALOADER_SAMPLE_JSON_H_

#include <string>

#include "schema/records.h"

namespace glm::dataloader {

std::string SampleToJsonLine(const Sample& sample);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_SAMPLE_JSON_H_
