#include "coordinator/http/serving.h"

#include <sys/socket.h>

#include <chrono>

namespace glm::http {

void ConfigureServer(httplib::Server* server, int threads) {
  server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server->set_read_timeout(5, 0);
  server->set_write_timeout(5, 0);
  server->set_keep_alive_timeout(5);
  server->set_tcp_nodelay(true);
  server->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
}

Status ServingThread::Start(httplib::Server* server, const std::string& address, int port, const std::string& hint) {
  server_ = server;
  port_ = port == 0 ? server->bind_to_any_port(address) : (server->bind_to_port(address, port) ? port : -1);
  if (port_ < 0) {
    return UnavailableError("HTTP server cannot bind " + address + ":" + (port == 0 ? "(any port)" : std::to_string(port)) +
                            " (in use, or not an address of this machine); " + hint);
  }
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  // httplib's stop() is a no-op until the accept loop runs; wait for it so
  // that Stop() right after Start() cannot leave the thread running.
  while (!server->is_running() && !listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return Status::Ok();
}

void ServingThread::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace glm::http
