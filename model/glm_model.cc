#include "model/glm_model.h"

#include <cmath>
#include <limits>
#include <string>

#include "common/check.h"

namespace glm::model {
namespace {

// The reference's masked-score value (the fp16 minimum): scores * M -
// 65504 * (1 - M) leaves visible scores unchanged and sets masked ones to it.
constexpr double kMaskedScore = -65504.0;

torch::nn::LayerNorm MakeLayerNorm(const GlmConfig& c) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layernorm_epsilon).elementwise_affine(true));
}

uint64_t SplitMix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

torch::Tensor Dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  // On accelerators LibTorch's own kernel is the fast one.
  if (!x.device().is_cpu()) return torch::dropout(x, p, /*train=*/true);
  // One draw from the default generator seeds this mask.
  const auto seed = static_cast<uint64_t>(torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kInt64)
                                              .item<int64_t>());
  torch::Tensor mask = torch::empty(x.sizes(), x.options().device(torch::kCPU).requires_grad(false));
  const int64_t n = mask.numel();
  // Keep an element iff its 32 random bits are >= p * 2^32.
  const auto threshold = static_cast<uint64_t>(p * 4294967296.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, mask.scalar_type(), "glm_dropout", [&] {
    auto* out = mask.data_ptr<scalar_t>();
    const auto keep = static_cast<scalar_t>(1.0 / (1.0 - p));
    const auto drop = static_cast<scalar_t>(0);
    at::parallel_for(0, (n + 1) / 2, 8192, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        // Two elements per 64-bit draw.
        const uint64_t r = SplitMix64(seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
        out[2 * i] = (r & 0xFFFFFFFFull) >= threshold ? keep : drop;
        if (2 * i + 1 < n) out[2 * i + 1] = (r >> 32) >= threshold ? keep : drop;
      }
    });
  });
  return x * mask.to(x.device());
}

torch::Tensor BuildAttentionMask(const torch::Tensor& sep, int64_t query_length, int64_t memory_length) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(sep.device());
  // Key index relative to the new tokens: -M .. S-1.
  torch::Tensor key = torch::arange(-memory_length, query_length, opts).view({1, 1, -1});  // (1, 1, T)
  torch::Tensor query = torch::arange(query_length, opts).view({1, -1, 1});              // (1, S, 1)
  torch::Tensor row_sep = sep.to(torch::kInt64).view({-1, 1, 1});                        // (B, 1, 1)
  // Masked iff key >= sep and key > query (memory keys are < 0 <= sep).
  torch::Tensor masked = torch::logical_and(key >= row_sep, key > query);  // (B, S, T)
  return masked.unsqueeze(1);                                             // (B, 1, S, T)
}

// --- GlmSelfAttention ---

GlmSelfAttentionImpl::GlmSelfAttentionImpl(const GlmConfig& c)
    : num_heads_(c.num_attention_heads), head_size_(c.head_size()), attention_dropout_(c.attention_dropout) {
  query_key_value = register_module(
      "query_key_value", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, 3 * c.hidden_size)));
  dense = register_module("dense", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.hidden_size)));
}

torch::Tensor GlmSelfAttentionImpl::forward(const torch::Tensor& a, const torch::Tensor& mem_normed,
                                            const torch::Tensor& masked) {
  const int64_t batch = a.size(0);
  const int64_t query_length = a.size(1);
  // As the reference: one projection over [mem ; new], queries of the new rows.
  torch::Tensor input = mem_normed.defined() ? torch::cat({mem_normed, a}, 1) : a;  // (B, T, H)
  const int64_t key_length = input.size(1);
  torch::Tensor qkv = query_key_value(input);                                        // (B, T, 3H)
  // (B, T, 3, N, d) -> (3, B, N, T, d): contiguous thirds Q;K;V, heads within.
  qkv = qkv.view({batch, key_length, 3, num_heads_, head_size_}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0];  // (B, N, T, d)
  torch::Tensor k = qkv[1];  // (B, N, T, d)
  torch::Tensor v = qkv[2];  // (B, N, T, d)
  if (key_length != query_length) q = q.narrow(2, key_length - query_length, query_length);  // (B, N, S, d)
  // The reference divides K (not the scores) by sqrt(d).
  k = k / std::sqrt(static_cast<double>(head_size_));
  torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2));  // (B, N, S, T)
  scores.masked_fill_(masked, kMaskedScore);
  torch::Tensor probs = torch::softmax(scores, -1);  // (B, N, S, T)
  probs = Dropout(probs, attention_dropout_, is_training());
  torch::Tensor context = torch::matmul(probs, v);  // (B, N, S, d)
  context = context.permute({0, 2, 1, 3}).reshape({batch, query_length, num_heads_ * head_size_});  // (B, S, H)
  return dense(context);
}

// --- GlmMlp ---

GlmMlpImpl::GlmMlpImpl(const GlmConfig& c) {
  dense_h_to_4h = register_module(
      "dense_h_to_4h", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, 4 * c.hidden_size)));
  dense_4h_to_h = register_module(
      "dense_4h_to_h", torch::nn::Linear(torch::nn::LinearOptions(4 * c.hidden_size, c.hidden_size)));
}

torch::Tensor GlmMlpImpl::forward(const torch::Tensor& b) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): the reference's gelu_impl.
  return dense_4h_to_h(torch::gelu(dense_h_to_4h(b), "tanh"));  // (B, S, H)
}

// --- GlmLayer ---

GlmLayerImpl::GlmLayerImpl(const GlmConfig& c) : hidden_dropout_(c.hidden_dropout) {
  input_layernorm = register_module("input_layernorm", MakeLayerNorm(c));
  attention = register_module("attention", GlmSelfAttention(c));
  post_attention_layernorm = register_module("post_attention_layernorm", MakeLayerNorm(c));
  mlp = register_module("mlp", GlmMlp(c));
}

torch::Tensor GlmLayerImpl::forward(const torch::Tensor& h, const torch::Tensor& mem,
                                    const torch::Tensor& masked) {
  torch::Tensor mem_normed = mem.defined() ? input_layernorm(mem) : torch::Tensor();
  torch::Tensor attn = attention(input_layernorm(h), mem_normed, masked);  // (B, S, H)
  torch::Tensor x = h + Dropout(attn, hidden_dropout_, is_training());    // (B, S, H)
  torch::Tensor m = mlp(post_attention_layernorm(x));                      // (B, S, H)
  return x + Dropout(m, hidden_dropout_, is_training());
}

// --- GlmTransformer ---

GlmTransformerImpl::GlmTransformerImpl(const GlmConfig& c) {
  position_embeddings = register_module(
      "position_embeddings", torch::nn::Embedding(c.max_sequence_length + 1, c.hidden_size));
  block_position_embeddings = register_module(
      "block_position_embeddings", torch::nn::Embedding(c.max_sequence_length + 1, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(GlmLayer(c));
  final_layernorm = register_module("final_layernorm", MakeLayerNorm(c));
}

// --- GlmModel ---

GlmModelImpl::GlmModelImpl(const GlmModelOptions& options) : config_(options.config) {
  Status s = config_.Validate();
  GLM_CHECK(s.ok()) << "GlmModel: invalid config: " << s;
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(config_.vocab_size, config_.hidden_size));
  transformer = register_module("transformer", GlmTransformer(config_));
  if (options.seed != 0) torch::manual_seed(options.seed);
  ResetParameters();
}

void GlmModelImpl::ResetParameters() {
  torch::NoGradGuard no_grad;
  const double std = config_.init_std;
  const double scaled_std = std / std::sqrt(2.0 * static_cast<double>(config_.num_layers));
  word_embeddings->weight.normal_(0.0, std);
  transformer->position_embeddings->weight.normal_(0.0, std);
  transformer->block_position_embeddings->weight.normal_(0.0, std);
  for (const auto& module : *transformer->layers) {
    auto* layer = module->as<GlmLayerImpl>();
    for (auto ln : {layer->input_layernorm, layer->post_attention_layernorm}) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
    layer->attention->query_key_value->weight.normal_(0.0, std);
    layer->attention->query_key_value->bias.zero_();
    layer->attention->dense->weight.normal_(0.0, scaled_std);
    layer->attention->dense->bias.zero_();
    layer->mlp->dense_h_to_4h->weight.normal_(0.0, std);
    layer->mlp->dense_h_to_4h->bias.zero_();
    layer->mlp->dense_4h_to_h->weight.normal_(0.0, scaled_std);
    layer->mlp->dense_4h_to_h->bias.zero_();
  }
  transformer->final_layernorm->weight.fill_(1.0);
  transformer->final_layernorm->bias.zero_();
}

torch::Tensor GlmModelImpl::Run(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                                const torch::Tensor& block_position_ids, const torch::Tensor& sep,
                                const std::vector<torch::Tensor>& memory,
                                std::vector<torch::Tensor>* memory_out) {
  GLM_CHECK(tokens.dim() == 2) << "tokens must be (B, S), got " << tokens.sizes();
  GLM_CHECK(position_ids.sizes() == tokens.sizes() && block_position_ids.sizes() == tokens.sizes())
      << "position ids " << position_ids.sizes() << " and block position ids " << block_position_ids.sizes()
      << " must match tokens " << tokens.sizes();
  const int64_t batch = tokens.size(0);
  const int64_t query_length = tokens.size(1);
  const auto num_layers = static_cast<size_t>(config_.num_layers);
  GLM_CHECK(memory.empty() || memory.size() == num_layers + 1)
      << "memory must hold " << num_layers + 1 << " tensors, got " << memory.size();
  const int64_t memory_length = memory.empty() ? 0 : memory[0].size(1);
  torch::Tensor row_sep = sep.numel() == 1 ? sep.reshape({1}).expand({batch}) : sep.reshape({batch});

  torch::Tensor h = word_embeddings(tokens) + transformer->position_embeddings(position_ids) +
                    transformer->block_position_embeddings(block_position_ids);  // (B, S, H)
  h = Dropout(h, config_.hidden_dropout, is_training());
  torch::Tensor masked = BuildAttentionMask(row_sep.to(tokens.device()), query_length, memory_length);

  if (memory_out != nullptr) memory_out->clear();
  size_t i = 0;
  for (const auto& module : *transformer->layers) {
    if (memory_out != nullptr) memory_out->push_back(h.detach());
    torch::Tensor mem = memory.empty() ? torch::Tensor() : memory[i];
    h = module->as<GlmLayerImpl>()->forward(h, mem, masked);
    ++i;
  }
  if (memory_out != nullptr) {
    memory_out->push_back(h.detach());
    if (!memory.empty()) {
      for (size_t l = 0; l < memory_out->size(); ++l) {
        (*memory_out)[l] = torch::cat({memory[l], (*memory_out)[l]}, 1);  // (B, M + S, H)
      }
    }
  }
  return transformer->final_layernorm(h);  // (B, S, H)
}

torch::Tensor GlmModelImpl::Hidden(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                                   const torch::Tensor& block_position_ids, const torch::Tensor& sep) {
  return Run(tokens, position_ids, block_position_ids, sep, {}, nullptr);
}

torch::Tensor GlmModelImpl::Logits(const torch::Tensor& hidden) {
  return torch::matmul(hidden, word_embeddings->weight.t());  // (..., V)
}

torch::Tensor GlmModelImpl::forward(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                                    const torch::Tensor& block_position_ids, const torch::Tensor& sep) {
  return Logits(Hidden(tokens, position_ids, block_position_ids, sep));  // (B, S, V)
}

GlmMemoryOutput GlmModelImpl::ForwardWithMemory(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                                                const torch::Tensor& block_position_ids,
                                                const torch::Tensor& sep,
                                                const std::vector<torch::Tensor>& memory) {
  GlmMemoryOutput out;
  out.logits = Logits(Run(tokens, position_ids, block_position_ids, sep, memory, &out.memory));
  return out;
}

std::vector<std::string> ParameterNames(const GlmConfig& c) {
  std::vector<std::string> names = {"word_embeddings.weight", "transformer.position_embeddings.weight",
                                    "transformer.block_position_embeddings.weight"};
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "transformer.layers." + std::to_string(i) + ".";
    for (const char* m : {"input_layernorm", "attention.query_key_value", "attention.dense",
                          "post_attention_layernorm", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"}) {
      names.push_back(p + m + ".weight");
      names.push_back(p + m + ".bias");
    }
  }
  names.push_back("transformer.final_layernorm.weight");
  names.push_back("transformer.final_layernorm.bias");
  return names;
}

}  // namespace glm::model
