#include "transport/socket.h"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include <chrono>
#include <array>
#include <thread>
#include <vector>

namespace glm::transport {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SetCommonOptions(zmq::socket_t& socket, const SocketOptions& options) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.limits.max_message_bytes));
  socket.set(zmq::sockopt::sndhwm, options.high_water_mark);
  socket.set(zmq::sockopt::rcvhwm, options.high_water_mark);
  socket.set(zmq::sockopt::handshake_ivl, options.handshake_ivl_ms);
}

}  // namespace

ServerSocket::ServerSocket(zmq::context_t* context, const ServerKeys& keys,
                           const SocketOptions& options)
    : options_(options),
      zap_(context, keys.allowed_clients),
      socket_(*context, zmq::socket_type::router) {}

ServerSocket::~ServerSocket() {
  socket_.close();
  zap_.Stop();
}

StatusOr<std::unique_ptr<ServerSocket>> ServerSocket::Bind(zmq::context_t* context,
                                                           const std::string& endpoint,
                                                           const ServerKeys& keys,
                                                           const SocketOptions& options) {
  std::unique_ptr<ServerSocket> s(new ServerSocket(context, keys, options));
  GLM_RETURN_IF_ERROR(s->zap_.Start());
  try {
    SetCommonOptions(s->socket_, options);
    s->socket_.set(zmq::sockopt::curve_server, 1);
    s->socket_.set(zmq::sockopt::curve_secretkey, keys.server.secret_z85);
    s->socket_.set(zmq::sockopt::zap_domain, "glm");
    // Replies to a peer that left are dropped, not errors.
    s->socket_.set(zmq::sockopt::router_mandatory, 0);
    s->socket_.bind(endpoint);
    s->endpoint_ = s->socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return UnavailableError("cannot bind " + endpoint + ": " + e.what() +
                            (e.num() == EADDRINUSE ? " (is another coordinator running there?)" : ""));
  }
  return s;
}

std::optional<Incoming> ServerSocket::Receive(int timeout_ms) {
  int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    int64_t left = deadline - NowMs();
    if (!PollReadable(socket_, std::max<int64_t>(0, left))) return std::nullopt;
    std::vector<zmq::message_t> parts;
    try {
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return std::nullopt;
      throw;
    }
    // ROUTER prepends the routing id; a DEALER peer sends exactly one part.
    if (parts.size() != 2) {
      ++num_dropped_;
      spdlog::debug("dropped a message of {} parts (expected 1 payload part)", parts.size());
      continue;
    }
    auto decoded = DecodeEnvelope(parts[1].data(), parts[1].size(), options_.limits);
    if (!decoded.ok()) {
      ++num_dropped_;
      spdlog::debug("dropped a message: {}", decoded.status().message());
      continue;
    }
    ++num_received_;
    return Incoming{parts[0].to_string(), std::move(decoded).value()};
  }
}

Status ServerSocket::Send(const std::string& peer, EnvelopeBuilder& message) {
  kj::Array<capnp::word> words = message.Encode();
  try {
    std::array<zmq::const_buffer, 2> parts = {
        zmq::buffer(peer), zmq::const_buffer(words.begin(), words.size() * sizeof(capnp::word))};
    if (!zmq::send_multipart(socket_, parts, zmq::send_flags::dontwait)) {
      return UnavailableError("peer queue full");
    }
  } catch (const zmq::error_t& e) {
    return UnavailableError(std::string("send failed: ") + e.what());
  }
  return Status::Ok();
}

ClientSocket::ClientSocket(zmq::context_t* context, const SocketOptions& options)
    : options_(options), socket_(*context, zmq::socket_type::dealer), reply_waiter_(options.busy_poll) {}

StatusOr<std::unique_ptr<ClientSocket>> ClientSocket::Connect(zmq::context_t* context,
                                                              const std::string& endpoint,
                                                              const ClientKeys& keys,
                                                              const SocketOptions& options) {
  std::unique_ptr<ClientSocket> s(new ClientSocket(context, options));
  try {
    SetCommonOptions(s->socket_, options);
    s->socket_.set(zmq::sockopt::immediate, 1);
    s->socket_.set(zmq::sockopt::reconnect_ivl, options.reconnect_ivl_ms);
    s->socket_.set(zmq::sockopt::reconnect_ivl_max, options.reconnect_ivl_max_ms);
    s->socket_.set(zmq::sockopt::curve_serverkey, keys.server_public_z85);
    s->socket_.set(zmq::sockopt::curve_publickey, keys.client.public_z85);
    s->socket_.set(zmq::sockopt::curve_secretkey, keys.client.secret_z85);
    s->socket_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgumentError("cannot connect to " + endpoint + ": " + e.what() +
                                " (expected e.g. tcp://127.0.0.1:5555)");
  }
  return s;
}

Status ClientSocket::Send(EnvelopeBuilder& message) {
  kj::Array<capnp::word> words = message.Encode();
  try {
    if (!socket_.send(zmq::const_buffer(words.begin(), words.size() * sizeof(capnp::word)),
                      zmq::send_flags::dontwait)) {
      return UnavailableError("not connected to the server (or its queue is full)");
    }
  } catch (const zmq::error_t& e) {
    return UnavailableError(std::string("send failed: ") + e.what());
  }
  return Status::Ok();
}

std::unique_ptr<DecodedEnvelope> ClientSocket::Receive(int timeout_ms) { return Receive(timeout_ms, nullptr); }

std::unique_ptr<DecodedEnvelope> ClientSocket::Receive(int timeout_ms, ReadableWaiter* waiter) {
  int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    int64_t left = std::max<int64_t>(0, deadline - NowMs());
    bool readable = waiter != nullptr ? waiter->Wait(socket_, static_cast<int>(left)) : PollReadable(socket_, left);
    if (!readable) return nullptr;
    zmq::message_t part;
    try {
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) continue;
      if (part.more()) {
        // Our peers send one part; drain and drop the rest of a multipart.
        ++num_dropped_;
        while (part.more() && socket_.recv(part, zmq::recv_flags::dontwait)) {
        }
        continue;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return nullptr;
      throw;
    }
    auto decoded = DecodeEnvelope(part.data(), part.size(), options_.limits);
    if (!decoded.ok()) {
      ++num_dropped_;
      spdlog::debug("dropped a message: {}", decoded.status().message());
      continue;
    }
    return std::move(decoded).value();
  }
}

StatusOr<std::unique_ptr<DecodedEnvelope>> ClientSocket::Call(EnvelopeBuilder& message,
                                                              int timeout_ms) {
  uint64_t id = message.envelope().getRequestId();
  int64_t deadline = NowMs() + timeout_ms;
  // With ZMQ_IMMEDIATE the first send may race the handshake: retry briefly.
  Status sent = Send(message);
  while (!sent.ok() && NowMs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    sent = Send(message);
  }
  if (!sent.ok()) return DeadlineExceededError("no connection to the server: " + sent.message());
  while (true) {
    int64_t left = deadline - NowMs();
    if (left <= 0) return DeadlineExceededError("no reply within " + std::to_string(timeout_ms) + " ms");
    std::unique_ptr<DecodedEnvelope> reply = Receive(static_cast<int>(left), &reply_waiter_);
    if (reply && reply->envelope().getRequestId() == id) return reply;
  }
}

}  // namespace glm::transport
