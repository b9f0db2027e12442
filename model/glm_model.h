// The GLM transformer (GLM_SPEC.md section 3), in the LibTorch C++ frontend
// style: XxxImpl modules wrapped by TORCH_MODULE. Registered submodule names
// equal the reference checkpoint keys, so named_parameters() yields exactly
//
//   word_embeddings.weight                                  (V, H)
//   transformer.position_embeddings.weight                  (P+1, H)
//   transformer.block_position_embeddings.weight            (P+1, H)
//   transformer.layers.{i}.input_layernorm.{weight,bias}     (H)
//   transformer.layers.{i}.attention.query_key_value.{weight,bias}  (3H, H), (3H)
//   transformer.layers.{i}.attention.dense.{weight,bias}    (H, H), (H)
//   transformer.layers.{i}.post_attention_layernorm.{weight,bias}   (H)
//   transformer.layers.{i}.mlp.dense_h_to_4h.{weight,bias}  (4H, H), (4H)
//   transformer.layers.{i}.mlp.dense_4h_to_h.{weight,bias}  (H, 4H), (H)
//   transformer.final_layernorm.{weight,bias}               (H)
//
// Computation, exactly as the reference (mpu/transformer.py):
//   h0 = E_word[tok] + E_pos[pos] + E_block[block]; dropout
//   per layer: h += Dropout(Attn(LN1(h))); h += Dropout(MLP(LN2(h)))
//   logits = LN_final(h) E_word^T (tied, no bias)
// Attention: Q;K;V are contiguous thirds of the fused projection; K is
// divided by sqrt(d) before Q K^T; key j is visible to query i iff j < sep or
// j <= i (sep per row); masked scores are set to -65504 (the reference's
// `s*M - 65504(1-M)` gives exactly that value); softmax; dropout; P V.
// GELU is the tanh approximation. The mask is a (B, 1, S, T) bool tensor
// broadcast over heads, never a per-head float mask.
//
// Memory ("KV cache" for incremental decoding, GLM_SPEC.md 3.4): as the
// reference, the memory is the input of every layer plus the last layer's
// output (L + 1 tensors of (B, M, H)); a layer given memory computes keys and
// values over [LN1(mem) ; LN1(h)]. Feeding a context with sep = its length
// and then one token at a time with sep = 0 gives the logits of one full
// pass with that sep.
//
// Dtype and device follow the parameters (model->to(torch::kFloat64) for
// float64). Thread-safety: a module is used by one thread at a time.
#ifndef GLM_MODEL_GLM_MODEL_H_
#define GLM_MODEL_GLM_MODEL_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/glm_config.h"

namespace glm::model {

// Fused QKV self-attention with the sep mask.
class GlmSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit GlmSelfAttentionImpl(const GlmConfig& config);

  // a: (B, S, H) normalised layer input; mem_normed: (B, M, H) normalised
  // memory or undefined; masked: (B, 1, S, M+S) bool, true where NOT attended.
  // Returns (B, S, H) before the output dropout.
  torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& mem_normed,
                        const torch::Tensor& masked);

  torch::nn::Linear query_key_value{nullptr};  // (3H, H): rows [Q; K; V]
  torch::nn::Linear dense{nullptr};            // (H, H)

 private:
  int64_t num_heads_;
  int64_t head_size_;
  double attention_dropout_;
};
TORCH_MODULE(GlmSelfAttention);

// gelu_tanh(b W1^T + b1) W2^T + b2.
class GlmMlpImpl : public torch::nn::Module {
 public:
  explicit GlmMlpImpl(const GlmConfig& config);
  torch::Tensor forward(const torch::Tensor& b);  // (B, S, H) -> (B, S, H)

  torch::nn::Linear dense_h_to_4h{nullptr};  // (4H, H)
  torch::nn::Linear dense_4h_to_h{nullptr};  // (H, 4H)
};
TORCH_MODULE(GlmMlp);

// One pre-LayerNorm block.
class GlmLayerImpl : public torch::nn::Module {
 public:
  explicit GlmLayerImpl(const GlmConfig& config);
  // h: (B, S, H); mem: (B, M, H) un-normalised cached input or undefined;
  // masked: (B, 1, S, M+S) bool, true where NOT attended.
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& mem, const torch::Tensor& masked);

  torch::nn::LayerNorm input_layernorm{nullptr};
  GlmSelfAttention attention{nullptr};
  torch::nn::LayerNorm post_attention_layernorm{nullptr};
  GlmMlp mlp{nullptr};

 private:
  double hidden_dropout_;
};
TORCH_MODULE(GlmLayer);

// Position tables, the blocks and the final LayerNorm ("transformer." keys).
class GlmTransformerImpl : public torch::nn::Module {
 public:
  explicit GlmTransformerImpl(const GlmConfig& config);

  torch::nn::Embedding position_embeddings{nullptr};        // (P+1, H)
  torch::nn::Embedding block_position_embeddings{nullptr};  // (P+1, H)
  torch::nn::ModuleList layers{nullptr};                    // L x GlmLayer
  torch::nn::LayerNorm final_layernorm{nullptr};
};
TORCH_MODULE(GlmTransformer);

struct GlmModelOptions {
  GlmConfig config;  // Default: GlmConfig{} (the tiny shape)
  // Default: 0 = do not seed. Otherwise parameters are initialised after
  // torch::manual_seed(seed), so equal seeds give equal weights.
  uint64_t seed = 0;
};

// Output of ForwardWithMemory.
struct GlmMemoryOutput {
  torch::Tensor logits;              // (B, S, V)
  std::vector<torch::Tensor> memory; // L + 1 tensors (B, M + S, H), detached
};

class GlmModelImpl : public torch::nn::Module {
 public:
  explicit GlmModelImpl(const GlmModelOptions& options);
  explicit GlmModelImpl(const GlmConfig& config) : GlmModelImpl(GlmModelOptions{config, 0}) {}

  // tokens, position_ids, block_position_ids: (B, S) int64; sep: (B) int64.
  // Returns logits (B, S, V) in the parameters' dtype.
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                        const torch::Tensor& block_position_ids, const torch::Tensor& sep);

  // Final hidden states LN_final(h): (B, S, H). The loss projects only the
  // loss positions through Logits() (the full (B, S, V) is never needed).
  torch::Tensor Hidden(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                       const torch::Tensor& block_position_ids, const torch::Tensor& sep);

  // (..., H) -> (..., V): hidden E_word^T.
  torch::Tensor Logits(const torch::Tensor& hidden);

  // Incremental decoding. `memory` is empty or the L + 1 tensors of a
  // previous call (all with the same M); `sep` applies within the new
  // tokens (sep = 0: plain causal), every memory position is visible.
  // Returned memory = old memory ++ new states (GLM_SPEC.md 3.4).
  GlmMemoryOutput ForwardWithMemory(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                                    const torch::Tensor& block_position_ids, const torch::Tensor& sep,
                                    const std::vector<torch::Tensor>& memory);

  // Re-initialises every parameter as the reference does (GLM_SPEC.md 3.5).
  void ResetParameters();

  const GlmConfig& config() const { return config_; }

  torch::nn::Embedding word_embeddings{nullptr};  // (V, H), tied to the output
  GlmTransformer transformer{nullptr};

 private:
  // Returns LN_final(h) and, when `memory_out` is non-null, the layer inputs.
  torch::Tensor Run(const torch::Tensor& tokens, const torch::Tensor& position_ids,
                    const torch::Tensor& block_position_ids, const torch::Tensor& sep,
                    const std::vector<torch::Tensor>& memory, std::vector<torch::Tensor>* memory_out);

  GlmConfig config_;
};
TORCH_MODULE(GlmModel);

// The (B, 1, S, M + S) bool mask, true where query i must NOT see key j:
// key j (0-based over memory then new tokens) is visible iff j < M, or
// j - M < sep[b], or j - M <= i. sep: (B) int64.
torch::Tensor BuildAttentionMask(const torch::Tensor& sep, int64_t query_length, int64_t memory_length);

// Inverted dropout: x * m / (1 - p) with m ~ Bernoulli(1 - p) per element,
// x itself when !training or p == 0. The mask comes from a counter-based
// generator (splitmix64 over the element index, seeded from LibTorch's
// default generator, so torch::manual_seed makes it reproducible), filled in
// parallel: LibTorch 1.13's CPU bernoulli_ draws element by element and was
// 15% of a training step. Differentiable (the gradient is g * m / (1 - p)).
// Non-CPU tensors use torch::dropout.
torch::Tensor Dropout(const torch::Tensor& x, double p, bool training);

// Parameter names in the reference order (the order of named_parameters()).
std::vector<std::string> ParameterNames(const GlmConfig& config);

}  // namespace glm::model

#endif  // GLM_MODEL_GLM_MODEL_H_
