#include "worker/training/train_run.h"

#include <nlohmann/json.hpp>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "dataloader/tokenizer.h"
#include "dataloader/vocab.h"
#include "model/batch.h"
#include "model/loss.h"
#include "model/torch_env.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_client.h"
#include "transport/keys.h"
#include "worker/trainer/trainer.h"
#include "worker/training/inference.h"
#include "worker/training/seams.h"

namespace glm::training {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string TrainRunResult::ToJson() const {
  nlohmann::json j = {{"start_step", start_step}, {"final_step", final_step}, {"stopped", stopped},
                      {"first_loss", first_loss}, {"last_loss", last_loss},   {"seconds", seconds},
                      {"checkpoint", checkpoint}, {"unigram_entropy", unigram_entropy}};
  nlohmann::json ev = nlohmann::json::object();
  for (const ObjectiveEval& e : eval) {
    ev[std::string(ObjectiveName(e.objective))] = {
        {"heldout_loss", e.loss},
        {"unigram_entropy", unigram_entropy},
        {"below_unigram_entropy", unigram_entropy - e.loss},
        {"unigram_cross_entropy_of_targets", e.unigram},
        {"tokens", e.tokens}};
  }
  j["eval"] = ev;
  nlohmann::json inf = nlohmann::json::array();
  for (const InfillExample& x : infill) {
    inf.push_back({{"context", x.context}, {"truth", x.truth}, {"generated", x.generated}});
  }
  j["infill"] = inf;
  return j.dump(2);
}

namespace {

// The address of this host's interface that routes to host:port (a UDP
// connect sends nothing): what Gloo peers can reach this trainer at, in a pod
// network, a network namespace or on loopback alike.
StatusOr<std::string> LocalAddressToward(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0 || res == nullptr) {
    return UnavailableError("cannot resolve the rendezvous host " + host + ": " + gai_strerror(rc) +
                            " (or give this trainer's address with --gloo-host)");
  }
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  const bool ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
  freeaddrinfo(res);
  if (fd >= 0) close(fd);
  if (!ok) {
    return UnavailableError("no route to the rendezvous host " + host + " (or give this trainer's address with --gloo-host)");
  }
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &local.sin_addr, buf, sizeof buf);
  return std::string(buf);
}

// The samples: a local store read-only, or a storage server over CurveZMQ.
StatusOr<std::unique_ptr<storage::SampleStore>> OpenSamples(const TrainRunOptions& o, zmq::context_t* context) {
  if (!o.store_dir.empty()) {
    storage::StoreOptions so;
    so.path = o.store_dir;
    so.mode = storage::OpenMode::kReadOnly;
    GLM_ASSIGN_OR_RETURN(auto store, storage::RocksDbSampleStore::Open(so));
    return std::unique_ptr<storage::SampleStore>(std::move(store));
  }
  storage::StoreClientOptions co;
  co.endpoint = o.store_endpoint;
  co.timeout_ms = 30000;
  if (!o.keys_dir.empty()) {
    GLM_ASSIGN_OR_RETURN(transport::ClientKeys keys, transport::LoadClientKeys(o.keys_dir));
    co.curve_server_key = keys.server_public_z85;
    co.curve_public_key = keys.client.public_z85;
    co.curve_secret_key = keys.client.secret_z85;
  }
  // The server may still be starting (a cluster's pods start in any order).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.wait_for_data_ms);
  for (;;) {
    auto client = storage::StoreClient::Connect(context, co);
    if (client.ok()) return std::unique_ptr<storage::SampleStore>(std::move(client).value());
    if (std::chrono::steady_clock::now() >= deadline) {
      return UnavailableError("storage server " + o.store_endpoint + ": " + client.status().message());
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// The dataset manifest; from a storage server, waited for while the
// pipeline's finalize task has not written it yet.
StatusOr<DatasetManifest> WaitForManifest(storage::SampleStore& store, const TrainRunOptions& o,
                                          const std::function<void(const std::string&)>& say) {
  if (o.store_endpoint.empty()) return ReadDatasetManifest(store);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(o.wait_for_data_ms);
  bool told = false;
  for (;;) {
    auto text = store.GetMeta(kDatasetMetaKey);
    if (text.ok()) return DatasetManifest::FromJson(*text);
    if (text.status().code() != StatusCode::kNotFound && text.status().code() != StatusCode::kDeadlineExceeded) {
      return text.status();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("the storage server " + o.store_endpoint + " has no dataset manifest after " +
                                   std::to_string(o.wait_for_data_ms / 1000) +
                                   " s: is the pipeline running (glm status)? Its finalize task writes it");
    }
    if (!told) {
      say("waiting for the pipeline to tokenize the corpus and write the dataset manifest");
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600), static_cast<long long>(t / 60 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  }
  return buf;
}

// Decodes ids, showing special tokens by their names and skipping [CLS].
std::string Show(const dataloader::GlmTokenizer& tok, const std::vector<int32_t>& ids) {
  std::string out;
  std::vector<int32_t> run;
  auto flush = [&] {
    if (run.empty()) return;
    auto text = tok.Decode(run);
    out += text.ok() ? *text : "?";
    run.clear();
  };
  for (int32_t id : ids) {
    if (id >= 0 && id < dataloader::kNumSpecialTokens) {
      flush();
      if (id != tok.ids().cls) out += " " + std::string(dataloader::kSpecialTokenPieces[id]) + " ";
    } else {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

}  // namespace

StatusOr<std::vector<ObjectiveEval>> EvaluateHeldOut(model::GlmModel& model, storage::SampleStore& store,
                                                     const DatasetManifest& manifest, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<ObjectiveEval> out;
  for (int o = 0; o < kNumObjectives; ++o) {
    const uint64_t n = manifest.validation_samples[o];
    if (n == 0) continue;
    ObjectiveEval e;
    e.objective = static_cast<Objective>(o);
    e.unigram = manifest.unigram_cross_entropy[o];
    double sum = 0;
    for (uint64_t begin = 0; begin < n; begin += static_cast<uint64_t>(batch_size)) {
      const uint64_t end = std::min<uint64_t>(n, begin + static_cast<uint64_t>(batch_size));
      GLM_ASSIGN_OR_RETURN(std::vector<Sample> samples,
                           store.GetSampleRange(e.objective, kValidationEpoch, begin, end));
      GLM_ASSIGN_OR_RETURN(model::Batch b, model::CollateSamples(samples));
      model::LossOutput l = model::ComputeLoss(model, b);
      sum += l.objective_loss_sum[o];
      e.tokens += l.objective_tokens[o];
    }
    e.loss = e.tokens > 0 ? sum / e.tokens : 0;
    out.push_back(e);
  }
  if (was_training) model->train();
  return out;
}

StatusOr<InfillExample> InfillSample(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                     const Sample& s, int64_t max_tokens_per_blank) {
  const auto& ids = tokenizer.ids();
  const int64_t sep = s.sep;
  if (sep <= 0 || sep > static_cast<int64_t>(s.tokens.size())) return InvalidArgumentError("sample has no Part A");
  // The blanks in the sample's Part-B order: each [sop] and the position it carries.
  std::vector<int64_t> blanks;
  InfillExample ex;
  ex.context = Show(tokenizer, std::vector<int32_t>(s.tokens.begin(), s.tokens.begin() + sep));
  for (int64_t i = sep; i < static_cast<int64_t>(s.tokens.size()); ++i) {
    if (s.tokens[i] != ids.sop) continue;
    blanks.push_back(s.position_ids[i]);
    std::vector<int32_t> truth;  // the targets from this [sop] up to [eop]
    for (int64_t k = i; k < static_cast<int64_t>(s.targets.size()) && s.targets[k] != ids.eop; ++k) {
      truth.push_back(s.targets[k]);
    }
    ex.truth.push_back(Show(tokenizer, truth));
  }
  SamplingOptions greedy;
  greedy.max_tokens = max_tokens_per_blank;
  GLM_ASSIGN_OR_RETURN(std::vector<BlankFill> fills,
                       FillBlanks(model, ids, tokenizer.vocab_size(),
                                  std::vector<int32_t>(s.tokens.begin(), s.tokens.begin() + sep), blanks, greedy));
  for (const BlankFill& f : fills) ex.generated.push_back(Show(tokenizer, f.tokens));
  return ex;
}

StatusOr<TrainRunResult> RunTraining(const TrainRunOptions& o) {
  const PretrainConfig& c = o.config;
  GLM_RETURN_IF_ERROR(c.Validate());
  if (o.store_dir.empty() == o.store_endpoint.empty()) {
    return InvalidArgumentError("give the samples as exactly one of --store DIR or --store-endpoint tcp://HOST:PORT");
  }
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    return InvalidArgumentError("--rank " + std::to_string(o.rank) + " is not in [0, --world-size " +
                                std::to_string(o.world_size) + ")");
  }
  if (o.workdir.empty()) return InvalidArgumentError("--workdir is required");
  auto say = [&](const std::string& line) {
    if (o.progress) std::fprintf(stderr, "%s\n", line.c_str());
  };

  zmq::context_t zmq_context(1);
  GLM_ASSIGN_OR_RETURN(std::unique_ptr<storage::SampleStore> store, OpenSamples(o, &zmq_context));
  const std::string samples_from = o.store_dir.empty() ? "storage server " + o.store_endpoint : o.store_dir;
  GLM_ASSIGN_OR_RETURN(DatasetManifest manifest, WaitForManifest(*store, o, say));
  GLM_ASSIGN_OR_RETURN(auto tokenizer, dataloader::GlmTokenizer::Load(manifest.tokenizer_dir));
  if (tokenizer->hash() != store->tokenizer_hash()) {
    return FailedPreconditionError("the tokenizer in " + manifest.tokenizer_dir +
                                   " is not the one the store was built with");
  }

  GLM_ASSIGN_OR_RETURN(model::GlmConfig mc, model::GlmConfig::FromPreset(c.model_preset));
  mc.vocab_size = tokenizer->padded_vocab_size();
  if (manifest.seq_length > mc.max_sequence_length) {
    return InvalidArgumentError("the store's samples have up to " + std::to_string(manifest.seq_length) +
                                " tokens but preset " + c.model_preset + " has max_sequence_length " +
                                std::to_string(mc.max_sequence_length));
  }
  GLM_RETURN_IF_ERROR(mc.Validate());
  if (c.threads > 0) model::SetComputeThreads(static_cast<int>(c.threads));

  trainer::TrainerOptions to;
  to.geometry.global_batch_size = c.global_batch_size;
  to.geometry.micro_batch_size = c.micro_batch_size;
  to.mixer.weights = c.objective_weights;
  to.mixer.samples_per_epoch = manifest.samples_per_epoch;
  to.schedule.lr = c.lr;
  to.schedule.decay_steps = c.max_steps;
  to.schedule.warmup_fraction = c.warmup;
  GLM_ASSIGN_OR_RETURN(to.schedule.style, trainer::ParseDecayStyle(c.decay));
  to.schedule.decay_ratio = c.min_lr_ratio;
  to.adamw.weight_decay = c.weight_decay;
  to.seed = c.seed;
  to.checkpoint_every_steps = c.checkpoint_every;
  to.overlap_allreduce = c.overlap_allreduce;
  to.max_steps = c.max_steps;
  to.config_json = mc.ToJson();
  GLM_RETURN_IF_ERROR(to.Validate());

  // The store must hold every sample the run will read.
  GLM_ASSIGN_OR_RETURN(trainer::ObjectiveMixer mixer, trainer::ObjectiveMixer::Create(to.mixer, c.global_batch_size));
  const trainer::ObjectiveCounts needed = mixer.ConsumedAfter(c.max_steps);
  for (int k = 0; k < kNumObjectives; ++k) {
    if (needed[k] > manifest.stored_samples[k]) {
      return FailedPreconditionError(
          std::to_string(c.max_steps) + " steps read " + std::to_string(needed[k]) + " " +
          std::string(ObjectiveName(static_cast<Objective>(k))) + " samples but the store holds " +
          std::to_string(manifest.stored_samples[k]) + "; lower --max-steps or produce the store for more steps");
    }
  }

  std::error_code ec;
  fs::create_directories(o.workdir, ec);
  model::GlmModel net(model::GlmModelOptions{mc, c.seed});
  StoreBatchSource source(store.get(), o.store_endpoint.empty() ? 0 : o.wait_for_data_ms, o.stop);
  trainer::CommunicatorOptions co;
  co.timeout_ms = 120000;  // a peer may still be loading LibTorch or waiting for data
  std::unique_ptr<trainer::StoreServer> rendezvous_store;
  trainer::Membership me;
  me.rank = o.rank;
  me.world_size = o.world_size;
  if (o.group != nullptr) {
    // The coordinator's trainer group admits this trainer and names the
    // rendezvous store it hosts.
    say("joining the trainer group");
    GLM_ASSIGN_OR_RETURN(me, o.group->Join());
    co.store_host = o.group->store_host();
    co.port = o.group->store_port();
    if (co.port <= 0) {
      return FailedPreconditionError("the coordinator hosts no rendezvous store (start it with --rendezvous-port)");
    }
    if (!o.gloo_host.empty()) {
      co.bind_host = o.gloo_host;
    } else {
      GLM_ASSIGN_OR_RETURN(co.bind_host, LocalAddressToward(co.store_host, co.port));
    }
    say("in the trainer group: generation " + std::to_string(me.generation) + ", rank " + std::to_string(me.rank) +
        " of " + std::to_string(me.world_size) + " (rendezvous " + co.store_host + ":" + std::to_string(co.port) + ")");
  } else if (o.world_size > 1) {
    const size_t colon = o.rendezvous.rfind(':');
    if (colon == std::string::npos) return InvalidArgumentError("--rendezvous must be HOST:PORT, got " + o.rendezvous);
    co.store_host = o.rendezvous.substr(0, colon);
    co.port = std::atoi(o.rendezvous.c_str() + colon + 1);
    if (co.port <= 0) return InvalidArgumentError("--rendezvous must be HOST:PORT, got " + o.rendezvous);
    if (!o.gloo_host.empty()) {
      co.bind_host = o.gloo_host;
    } else {
      GLM_ASSIGN_OR_RETURN(co.bind_host, LocalAddressToward(co.store_host, co.port));
    }
    if (o.rank == 0) {
      GLM_ASSIGN_OR_RETURN(rendezvous_store, trainer::StoreServer::Start(co.port, co.timeout_ms));
    }
  }
  trainer::RendezvousCommunicatorFactory communicators(co);  // world size 1: local
  trainer::StaticMembership static_membership;
  trainer::MembershipSource* membership = o.group != nullptr ? static_cast<trainer::MembershipSource*>(o.group)
                                                             : &static_membership;
  trainer::CheckpointOptions cko;
  cko.directory = (fs::path(o.workdir) / "checkpoints").string();
  cko.keep_last = c.keep_checkpoints;
  cko.model_writer = GlmModelWriter(mc);
  cko.model_reader = GlmModelReader();
  trainer::CheckpointManager checkpoints(cko);

  TrainRunResult result;
  result.unigram_entropy = manifest.unigram_entropy;
  std::vector<double> losses;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto t0 = Clock::now();
  int64_t run_start_step = 0;
  auto progress = [&](const trainer::StepMetrics& m) {
    losses.push_back(m.loss);
    if (o.on_step) o.on_step(m);
    if (!o.progress) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const int64_t done = m.step - run_start_step;
    const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(c.max_steps - m.step) : NAN;
    const int64_t every = std::max<int64_t>(1, c.max_steps / 40);
    if (!tty && m.step % every != 0 && m.step != c.max_steps && done != 1) return;
    std::string per;
    const char* names[] = {"blank", "sent", "doc"};
    for (int k = 0; k < kNumObjectives; ++k) {
      if (m.objective_samples[k] == 0 || !std::isfinite(m.objective_loss[k])) continue;
      char b[48];
      std::snprintf(b, sizeof b, " %s %.3f", names[k], m.objective_loss[k]);
      per += b;
    }
    std::fprintf(stderr, "%sstep %lld/%lld  loss %.3f (%s )  %.0f tok/s  data wait %.1f ms  lr %.2e  ETA %s%s",
                 tty ? "\r\033[K" : "", static_cast<long long>(m.step), static_cast<long long>(c.max_steps), m.loss,
                 per.c_str(), m.tokens_per_s, m.data_wait_ms, m.lr, FormatDuration(eta).c_str(), tty ? "" : "\n");
    std::fflush(stderr);
  };
  GLM_ASSIGN_OR_RETURN(auto sink, JsonlMetricsSink::Open((fs::path(o.workdir) / "metrics.jsonl").string(), progress));

  trainer::Trainer t(to, net.ptr(), &source, MakeGlmLoss(net), &communicators, membership, sink.get(), &checkpoints);
  GLM_RETURN_IF_ERROR(t.Init());
  if (o.resume) {
    auto latest = checkpoints.LoadLatest();
    if (latest.ok()) {
      GLM_RETURN_IF_ERROR(t.Restore(*latest));
      say("resuming from " + latest->path + " (step " + std::to_string(latest->snapshot.state.step) + ")");
    } else if (latest.status().code() == StatusCode::kNotFound) {
      say("no checkpoint in " + cko.directory + ": starting from step 0");
    } else {
      return latest.status();
    }
  }
  GLM_RETURN_IF_ERROR(t.Start(me));
  run_start_step = result.start_step = t.step();
  say("training preset " + c.model_preset + " (" + std::to_string(mc.NumParameters()) + " parameters, vocab " +
      std::to_string(mc.vocab_size) + ") on " + samples_from + " for " + std::to_string(c.max_steps) + " steps");
  const auto stop_requested = [&] {
    return (o.stop != nullptr && o.stop->load()) || (o.stop_at_step > 0 && t.step() >= o.stop_at_step);
  };
  while (t.step() < c.max_steps) {
    if (o.group != nullptr) {
      // The group decides at every boundary: a stop request becomes "leaving",
      // and every member checkpoints and switches (or stops) at the same step.
      GLM_ASSIGN_OR_RETURN(BoundaryDecision d, o.group->AtBoundary(t.step(), stop_requested()));
      if (d.checkpoint && t.step() > 0) {
        GLM_ASSIGN_OR_RETURN(double blocked_ms, t.SaveCheckpoint());
        if (o.on_checkpoint) o.on_checkpoint(t.step(), blocked_ms);
      }
      if (d.stop) {
        if (!stop_requested()) {
          return AbortedError("the trainer group stopped this trainer at step " + std::to_string(t.step()) + ": " +
                              d.reason);
        }
        result.stopped = true;
        break;
      }
    } else if (stop_requested()) {
      result.stopped = true;
      break;
    }
    // TrainStep() keeps one prefetch thread loading the next step while this
    // one computes.
    if (Status s = t.TrainStep(); !s.ok()) {
      // A stop while the step waited for samples: the step was not taken.
      if (o.stop != nullptr && o.stop->load()) {
        result.stopped = true;
        break;
      }
      return s;
    }
  }
  if (o.progress && tty) std::fprintf(stderr, "\n");
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  result.final_step = t.step();
  const bool saved = c.checkpoint_every > 0 && t.step() % c.checkpoint_every == 0 && t.step() > result.start_step;
  if (!saved && t.step() > result.start_step && !(result.stopped && o.group != nullptr)) {
    GLM_ASSIGN_OR_RETURN(double blocked_ms, t.SaveCheckpoint());
    if (o.on_checkpoint) o.on_checkpoint(t.step(), blocked_ms);
  }
  GLM_RETURN_IF_ERROR(t.WaitForCheckpoint());
  auto list = checkpoints.List();
  if (!list.empty()) result.checkpoint = list.back();
  if (!losses.empty()) {
    result.first_loss = losses.front();
    const size_t n = std::min<size_t>(10, losses.size());
    double sum = 0;
    for (size_t k = losses.size() - n; k < losses.size(); ++k) sum += losses[k];
    result.last_loss = sum / static_cast<double>(n);
  }
  if (result.stopped) {
    say("stopped at step " + std::to_string(result.final_step) + "; checkpoint " + result.checkpoint +
        " (continue with --resume)");
    return result;
  }
  if (t.communicator() != nullptr && t.communicator()->rank() != 0) return result;  // rank 0 evaluates

  GLM_ASSIGN_OR_RETURN(result.eval, EvaluateHeldOut(net, *store, manifest, c.micro_batch_size));
  const uint64_t examples = std::min<uint64_t>(static_cast<uint64_t>(c.infill_examples),
                                               manifest.validation_samples[static_cast<int>(Objective::kBlank)]);
  if (examples > 0) {
    GLM_ASSIGN_OR_RETURN(std::vector<Sample> samples, store->GetSampleRange(Objective::kBlank, kValidationEpoch, 0, examples));
    for (const Sample& s : samples) {
      GLM_ASSIGN_OR_RETURN(InfillExample ex, InfillSample(net, *tokenizer, s, 24));
      result.infill.push_back(std::move(ex));
    }
  }
  std::ofstream(fs::path(o.workdir) / "eval.json") << result.ToJson() << "\n";
  return result;
}

}  // namespace glm::training
