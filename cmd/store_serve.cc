// glm store serve: the storage actor of a pipeline cluster. Owns the one
// read-write RocksDB store of a job and serves it to every worker's
// executors over ZeroMQ (StoreServer, CurveZMQ with the cluster's keys and a
// ZAP allow-list), until SIGTERM/SIGINT. docs/runtime.md "Where the store
// lives".
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/logging.h"
#include "common/options.h"
#include "dataloader/tokenizer.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_server.h"
#include "transport/keys.h"
#include "transport/zap.h"

namespace glm::cmd {
namespace {

std::atomic<bool> g_stop{false};
void OnStopSignal(int) { g_stop = true; }

struct StoreServeOptions {
  std::string store;                               // Default: none (required)
  std::string tokenizer;                           // Default: none (required); its hash is stamped into the store
  std::string bind = "tcp://127.0.0.1:*";          // Default: loopback, a free port
  std::string keys;                                // Default: "" = plain TCP (tests only)
  std::string endpoint_file;                       // Default: "" (write the bound endpoint there when set)
  std::string description = "glm pipeline store";  // Default: "glm pipeline store"

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireNonEmpty("store", store));
    GLM_RETURN_IF_ERROR(RequireNonEmpty("tokenizer", tokenizer));
    return CheckEndpoint("bind", bind, /*allow_wildcard_port=*/true);
  }
};

int RunStoreServe(const StoreServeOptions& o) {
  InitLogging("store").IgnoreError();
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm store serve: %s\n", s.message().c_str());
    return kExitUsage;
  }
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "glm store serve: %s\n", s.ToString().c_str());
    return kExitFailure;
  };
  auto tokenizer = dataloader::GlmTokenizer::Load(o.tokenizer);
  if (!tokenizer.ok()) return fail(tokenizer.status());
  storage::StoreOptions so;
  so.path = o.store;
  so.tokenizer_hash = (*tokenizer)->hash();
  so.description = o.description;
  auto store = storage::RocksDbSampleStore::Open(so);
  if (!store.ok()) return fail(store.status());

  zmq::context_t context(1);
  storage::StoreServerOptions server_options;
  server_options.endpoint = o.bind;
  std::unique_ptr<transport::ZapAuthenticator> zap;
  if (!o.keys.empty()) {
    auto keys = transport::LoadServerKeys(o.keys);
    if (!keys.ok()) return fail(keys.status());
    zap = std::make_unique<transport::ZapAuthenticator>(&context, keys->allowed_clients);
    if (Status s = zap->Start(); !s.ok()) return fail(s);
    server_options.curve_public_key = keys->server.public_z85;
    server_options.curve_secret_key = keys->server.secret_z85;
    server_options.configure_socket = [](zmq::socket_t* socket) {
      socket->set(zmq::sockopt::zap_domain, "glm");
      return Status::Ok();
    };
  }
  auto server = storage::StoreServer::Start(store->get(), &context, server_options);
  if (!server.ok()) return fail(server.status());
  signal(SIGTERM, OnStopSignal);
  signal(SIGINT, OnStopSignal);
  if (!o.endpoint_file.empty()) {
    std::string tmp = o.endpoint_file + ".tmp";
    std::ofstream(tmp) << (*server)->endpoint() << "\n";
    std::filesystem::rename(tmp, o.endpoint_file);
  }
  spdlog::info("serving store {} (tokenizer hash {:016x}) on {}{}", o.store, so.tokenizer_hash,
               (*server)->endpoint(), zap ? " with CurveZMQ" : " (plain TCP)");
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  (*server)->Stop();
  auto c = (*server)->counters();
  spdlog::info("stopped: {} requests, {} errors, {} records written, {} sent", c.requests, c.errors,
               c.records_written, c.records_sent);
  if (zap) zap->Stop();
  return kExitOk;
}

}  // namespace

void RegisterStoreServeCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* store = app->get_subcommand("store");
  auto o = std::make_shared<StoreServeOptions>();
  CLI::App* sub = store->add_subcommand("serve", "Serve a store to the cluster's executors (the storage actor)");
  AddOption(sub, "store", &o->store, "Store directory (created if missing)");
  AddOption(sub, "tokenizer", &o->tokenizer, "Tokenizer directory; its hash is stamped into the store");
  AddOption(sub, "bind", &o->bind, "Endpoint to bind, e.g. tcp://0.0.0.0:5601");
  AddOption(sub, "keys", &o->keys, "Cluster keys directory (server.secret, allowed_clients); empty = plain TCP");
  AddOption(sub, "endpoint-file", &o->endpoint_file, "Write the bound endpoint to this file once serving");
  registry->Add(sub, [o] { return RunStoreServe(*o); }, [o] { return o->Validate(); });
}

}  // namespace glm::cmd
