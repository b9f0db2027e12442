// CURVE keys of a cluster, as files in one directory (`glm keys generate
// --output DIR`). Format (docs/wire-protocol.md, "Security"): each file is
// one Z85 key (40 characters) and a newline.
//
//   server.pub       the coordinator's public key; every node needs it
//   server.secret    the coordinator's secret key (mode 0600)
//   client.pub       the nodes' public key
//   client.secret    the nodes' secret key (mode 0600)
//   allowed_clients  public keys the coordinator admits, one per line;
//                    other lines starting with '#' are comments (a Z85 key
//                    may itself contain '#'); generate writes client.pub here
//
// A coordinator needs server.* and allowed_clients; a worker (or glm status)
// needs server.pub and client.*.
//
// Thread-safety: functions are reentrant.
#ifndef GLM_TRANSPORT_KEYS_H_
#define GLM_TRANSPORT_KEYS_H_

#include <set>
#include <string>

#include "common/status.h"

namespace glm::transport {

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters
};

// A fresh key pair. Internal error if libzmq was built without CURVE.
StatusOr<CurveKeyPair> GenerateCurveKeyPair();

// Writes a new server and client key pair and allowed_clients into `dir`
// (created if missing). AlreadyExists if `dir` already holds keys and
// !overwrite.
Status GenerateClusterKeys(const std::string& dir, bool overwrite);

struct ServerKeys {
  CurveKeyPair server;
  std::set<std::string> allowed_clients;  // Z85 public keys
};
struct ClientKeys {
  std::string server_public_z85;
  CurveKeyPair client;
};

// NotFound (with a hint to run `glm keys generate`) or InvalidArgument for a
// malformed key.
StatusOr<ServerKeys> LoadServerKeys(const std::string& dir);
StatusOr<ClientKeys> LoadClientKeys(const std::string& dir);

}  // namespace glm::transport

#endif  // GLM_TRANSPORT_KEYS_H_
