// GLM_CHECK: invariants whose violation is a bug.
//
//   GLM_CHECK(offset <= size) << "shard " << id << " offset " << offset;
//
// A failed check logs the condition, file, line and streamed context to stderr
// and aborts the process. The coordinator treats the death like any other
// worker failure, which the system survives by design. Never use it for
// conditions a user or a peer can cause: those return a Status.
//
// Thread-safety: safe from any thread.
#ifndef GLM_COMMON_CHECK_H_
#define GLM_COMMON_CHECK_H_

#include <sstream>

namespace glm::internal {

// Collects the streamed message; its destructor reports and aborts.
class CheckFailure {
 public:
  CheckFailure(const char* condition, const char* file, int line);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `cond ? (void)0 : Voidify() & stream` type-check.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace glm::internal

#define GLM_CHECK(condition)                    \
  (condition) ? (void)0                         \
              : ::glm::internal::Voidify() &    \
                    ::glm::internal::CheckFailure(#condition, __FILE__, __LINE__).stream()

#define GLM_CHECK_EQ(a, b) GLM_CHECK((a) == (b)) << #a " = " << (a) << ", " #b " = " << (b) << ". "
#define GLM_CHECK_LT(a, b) GLM_CHECK((a) < (b)) << #a " = " << (a) << ", " #b " = " << (b) << ". "
#define GLM_CHECK_LE(a, b) GLM_CHECK((a) <= (b)) << #a " = " << (a) << ", " #b " = " << (b) << ". "

#endif  // GLM_COMMON_CHECK_H_
