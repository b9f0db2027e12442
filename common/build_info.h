// What was built: glm's version and the git commit of the source tree
// (suffixed "-dirty" when tracked files had uncommitted changes).
#ifndef GLM_COMMON_BUILD_INFO_H_
#define GLM_COMMON_BUILD_INFO_H_

namespace glm {
const char* BuildVersion();
const char* BuildGitCommit();
}  // namespace glm

#endif  // GLM_COMMON_BUILD_INFO_H_
