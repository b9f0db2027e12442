#include "transport/keys.h"

#include <sys/stat.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace glm::transport {
namespace fs = std::filesystem;
namespace {

bool IsZ85Key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, key.c_str()) != nullptr;
}

Status WriteKeyFile(const fs::path& path, const std::string& content, bool secret) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return FailedPreconditionError("cannot write " + path.string());
  out << content << "\n";
  out.close();
  if (!out) return FailedPreconditionError("cannot write " + path.string());
  if (secret) chmod(path.c_str(), 0600);
  return Status::Ok();
}

StatusOr<std::string> ReadKeyFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    return NotFoundError("missing key file " + path.string() +
                         "; HINT: create the cluster's keys with `glm keys generate --output DIR`");
  }
  std::string key;
  std::getline(in, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (!IsZ85Key(key)) {
    return InvalidArgumentError(path.string() + " does not hold a 40-character Z85 CURVE key");
  }
  return key;
}

}  // namespace

StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[41];
  char secret_key[41];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return InternalError(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()) +
                         " (libzmq built without CURVE?)");
  }
  return CurveKeyPair{public_key, secret_key};
}

Status GenerateClusterKeys(const std::string& dir, bool overwrite) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return FailedPreconditionError("cannot create " + dir + ": " + ec.message());
  if (!overwrite && fs::exists(fs::path(dir) / "server.secret")) {
    return AlreadyExistsError(dir + " already holds cluster keys; pass --overwrite to replace them");
  }
  GLM_ASSIGN_OR_RETURN(CurveKeyPair server, GenerateCurveKeyPair());
  GLM_ASSIGN_OR_RETURN(CurveKeyPair client, GenerateCurveKeyPair());
  fs::path d(dir);
  GLM_RETURN_IF_ERROR(WriteKeyFile(d / "server.pub", server.public_z85, false));
  GLM_RETURN_IF_ERROR(WriteKeyFile(d / "server.secret", server.secret_z85, true));
  GLM_RETURN_IF_ERROR(WriteKeyFile(d / "client.pub", client.public_z85, false));
  GLM_RETURN_IF_ERROR(WriteKeyFile(d / "client.secret", client.secret_z85, true));
  GLM_RETURN_IF_ERROR(WriteKeyFile(
      d / "allowed_clients", "# public keys the coordinator admits, one per line\n" + client.public_z85,
      false));
  return Status::Ok();
}

StatusOr<ServerKeys> LoadServerKeys(const std::string& dir) {
  fs::path d(dir);
  ServerKeys keys;
  GLM_ASSIGN_OR_RETURN(keys.server.public_z85, ReadKeyFile(d / "server.pub"));
  GLM_ASSIGN_OR_RETURN(keys.server.secret_z85, ReadKeyFile(d / "server.secret"));
  std::ifstream in(d / "allowed_clients");
  if (!in) {
    return NotFoundError("missing " + (d / "allowed_clients").string() +
                         "; HINT: create the cluster's keys with `glm keys generate --output DIR`");
  }
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    // '#' is a Z85 character, so a comment is any line that is not a key
    // and starts with '#'.
    if (!IsZ85Key(line) && line[0] == '#') continue;
    if (!IsZ85Key(line)) {
      return InvalidArgumentError((d / "allowed_clients").string() + " line " +
                                  std::to_string(line_number) + " is not a Z85 CURVE public key");
    }
    keys.allowed_clients.insert(line);
  }
  if (keys.allowed_clients.empty()) {
    return InvalidArgumentError((d / "allowed_clients").string() + " admits no key");
  }
  return keys;
}

StatusOr<ClientKeys> LoadClientKeys(const std::string& dir) {
  fs::path d(dir);
  ClientKeys keys;
  GLM_ASSIGN_OR_RETURN(keys.server_public_z85, ReadKeyFile(d / "server.pub"));
  GLM_ASSIGN_OR_RETURN(keys.client.public_z85, ReadKeyFile(d / "client.pub"));
  GLM_ASSIGN_OR_RETURN(keys.client.secret_z85, ReadKeyFile(d / "client.secret"));
  return keys;
}

}  // namespace glm::transport
