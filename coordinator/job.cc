#include "coordinator/job.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "common/options.h"

namespace glm::coordinator {
namespace fs = std::filesystem;

std::vector<int> JobOptions::ObjectiveIds() const {
  std::vector<int> ids;
  std::stringstream ss(objectives);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name == "blank") ids.push_back(0);
    else if (name == "sentence") ids.push_back(1);
    else if (name == "document") ids.push_back(2);
    else if (!name.empty()) ids.push_back(-1);
  }
  return ids;
}

std::map<std::string, std::string> JobOptions::ParamMap() const {
  std::map<std::string, std::string> out;
  std::stringstream ss(params);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

Status JobOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("job-id", job_id));
  GLM_RETURN_IF_ERROR(RequireAtLeast("epochs", epochs, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("samples-per-epoch", samples_per_epoch, 0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("samples-per-task", samples_per_task, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-batches-ahead", max_batches_ahead, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("noop-tasks", noop_tasks, 0));
  GLM_RETURN_IF_ERROR(RequireOneOf("executor", executor, {"test", "glm"}));
  std::vector<int> ids = ObjectiveIds();
  if (ids.empty() || std::count(ids.begin(), ids.end(), -1) > 0) {
    return InvalidArgumentError(DescribeOption("objectives") + " must list blank, sentence and/or document, got '" +
                                objectives + "'");
  }
  GLM_RETURN_IF_ERROR(RequireAtLeast("global-batch-size", global_batch_size, static_cast<int64_t>(ids.size())));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-samples", max_samples, 0));
  if (finalize && executor != "glm") {
    return InvalidArgumentError(DescribeOption("finalize") + " needs --executor glm (the test executors have no finalize task)");
  }
  if (params.find_first_of(" \t\n") != std::string::npos) {
    return InvalidArgumentError(DescribeOption("params") + " is key=value,key=value without spaces");
  }
  return Status::Ok();
}

nlohmann::json JobOptions::ToJson() const {
  return {{"job_id", job_id},
          {"corpus", corpus},
          {"output_dir", output_dir},
          {"seed", seed},
          {"executor", executor},
          {"objectives", objectives},
          {"epochs", epochs},
          {"samples_per_epoch", samples_per_epoch},
          {"samples_per_task", samples_per_task},
          {"max_samples", max_samples},
          {"finalize", finalize},
          {"global_batch_size", global_batch_size},
          {"max_batches_ahead", max_batches_ahead},
          {"auto_consume", auto_consume},
          {"noop_tasks", noop_tasks},
          {"params", params}};
}

StatusOr<JobOptions> JobOptions::FromJson(const nlohmann::json& j) {
  JobOptions o;
  try {
    o.job_id = j.at("job_id");
    o.corpus = j.at("corpus");
    o.output_dir = j.at("output_dir");
    o.seed = j.at("seed");
    o.executor = j.at("executor");
    o.objectives = j.at("objectives");
    o.epochs = j.at("epochs");
    o.samples_per_epoch = j.at("samples_per_epoch");
    o.samples_per_task = j.at("samples_per_task");
    o.max_samples = j.value("max_samples", int64_t{0});
    o.finalize = j.value("finalize", false);
    o.global_batch_size = j.at("global_batch_size");
    o.max_batches_ahead = j.at("max_batches_ahead");
    o.auto_consume = j.at("auto_consume");
    o.noop_tasks = j.at("noop_tasks");
    o.params = j.at("params");
  } catch (const nlohmann::json::exception& e) {
    return DataLossError(std::string("stored job is unreadable: ") + e.what());
  }
  return o;
}

StatusOr<std::vector<std::string>> ListCorpusFiles(const std::string& corpus) {
  if (corpus.find(',') != std::string::npos) {  // a list: the sorted union of its parts
    std::vector<std::string> all;
    std::stringstream parts(corpus);
    std::string part;
    while (std::getline(parts, part, ',')) {
      if (part.empty()) continue;
      GLM_ASSIGN_OR_RETURN(std::vector<std::string> files, ListCorpusFiles(part));
      all.insert(all.end(), files.begin(), files.end());
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    if (all.empty()) return NotFoundError("corpus list '" + corpus + "' names no file");
    return all;
  }
  std::error_code ec;
  if (corpus.find_first_of("*?[") != std::string::npos) {  // a glob pattern: the files it matches
    glob_t g{};
    std::vector<std::string> files;
    if (glob(corpus.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        if (fs::is_regular_file(g.gl_pathv[i], ec)) files.push_back(g.gl_pathv[i]);
      }
    }
    globfree(&g);
    std::sort(files.begin(), files.end());
    if (files.empty()) return NotFoundError("corpus pattern " + corpus + " matches no file; HINT: run scripts/setup for data/sotu, or set --corpus");
    return files;
  }
  if (!fs::exists(corpus, ec)) {
    return NotFoundError("corpus " + corpus + " does not exist; HINT: run scripts/setup for data/sotu, or set --corpus");
  }
  std::vector<std::string> files;
  if (fs::is_regular_file(corpus, ec)) {
    files.push_back(corpus);
  } else {
    for (auto it = fs::recursive_directory_iterator(corpus, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      std::string ext = it->path().extension().string();
      if (ext == ".txt" || ext == ".json" || ext == ".jsonl") files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return NotFoundError("corpus " + corpus + " holds no .txt, .json or .jsonl file");
  return files;
}

}  // namespace glm::coordinator
