#include "worker/executor.h"

namespace glm::worker {

void ExecutorRegistry::Register(const std::string& family, const std::string& kind, ExecutorFactory factory) {
  std::lock_guard<std::mutex> lock(mutex_);
  factories_[{family, kind}] = std::move(factory);
}

StatusOr<std::unique_ptr<TaskExecutor>> ExecutorRegistry::Create(const std::string& family,
                                                                 const std::string& kind,
                                                                 const ExecutorContext& context) const {
  ExecutorFactory factory;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = factories_.find({family, kind});
    if (it == factories_.end()) {
      return NotFoundError("no executor for task kind '" + kind + "' in executor family '" + family + "'");
    }
    factory = it->second;
  }
  return factory(context);
}

}  // namespace glm::worker
