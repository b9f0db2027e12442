// The dashboard's files, embedded in the binary at build time (the sources
// are coordinator/http/web/ and uPlot from the npm registry, pinned by
// version and SHA-256; see CMakeLists.txt and docs/observability.md), so the
// page works on machines without network access.
//
// Thread-safety: immutable data.
#ifndef GLM_COORDINATOR_HTTP_WEB_ASSETS_H_
#define GLM_COORDINATOR_HTTP_WEB_ASSETS_H_

#include <string_view>

namespace glm::http {

struct WebAsset {
  std::string_view path;          // "/index.html", "/static/uPlot.min.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view data;          // the file's bytes
};

// The asset served at `path`, or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_WEB_ASSETS_H_
