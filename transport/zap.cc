#include "transport/zap.h"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include <vector>

namespace glm::transport {

ZapAuthenticator::ZapAuthenticator(zmq::context_t* context, std::set<std::string> allowed_public_z85)
    : context_(context), allowed_(std::move(allowed_public_z85)) {}

ZapAuthenticator::~ZapAuthenticator() { Stop(); }

Status ZapAuthenticator::Start() {
  try {
    socket_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::rep);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    socket_.reset();
    return FailedPreconditionError(std::string("cannot bind the ZAP handler: ") + e.what());
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ZapAuthenticator::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  socket_.reset();
}

void ZapAuthenticator::Loop() {
  while (!stop_) {
    zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
      std::vector<zmq::message_t> request;
      if (!zmq::recv_multipart(*socket_, std::back_inserter(request))) continue;
      // Frames: version, request id, domain, address, routing id, mechanism,
      // credentials...
      std::string status = "400";
      std::string text = "malformed ZAP request";
      std::string version = request.size() > 0 ? request[0].to_string() : "1.0";
      std::string request_id = request.size() > 1 ? request[1].to_string() : "";
      if (request.size() >= 7 && version == "1.0") {
        std::string address = request[3].to_string();
        std::string mechanism = request[5].to_string();
        if (mechanism == "CURVE" && request[6].size() == 32) {
          char z85[41];
          zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32);
          if (allowed_.count(z85)) {
            status = "200";
            text = "OK";
            ++num_admitted_;
          } else {
            ++num_refused_;
            text = "key not in the cluster's allow-list";
            spdlog::warn("refused peer {} with CURVE key {}: not in the cluster's allow-list", address,
                         z85);
          }
        } else {
          ++num_refused_;
          text = "only CURVE is accepted";
          spdlog::warn("refused peer {} using mechanism {}: only CURVE is accepted", address,
                       mechanism);
        }
      } else {
        ++num_refused_;
      }
      std::vector<zmq::const_buffer> reply = {zmq::buffer(version), zmq::buffer(request_id),
                                              zmq::buffer(status), zmq::buffer(text),
                                              zmq::const_buffer(), zmq::const_buffer()};
      zmq::send_multipart(*socket_, reply);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      if (e.num() == EINTR) continue;  // a signal; the loop checks stop_
      spdlog::warn("ZAP handler: {}", e.what());
    }
  }
}

}  // namespace glm::transport
