// Package models holds the plaintext BERT stack: model configurations,
// checkpoint loading (safetensors in the Hugging Face layout), the WordPiece
// tokenizer, and the exact float64 forward pass that every other part of the
// engine is checked against.
//
// # The client/server split
//
// A Model is two parts that mirror the two parties of a private inference
// (docs/design.md, "Parties, secrets and what leaks"):
//
//   - ClientModel is public: the configuration (the model's public shape), the
//     tokenizer and the embedding layer (word, position and token-type tables
//     and the embedding LayerNorm). Its Embed method produces X_0, the n x d
//     matrix the client encrypts.
//   - ServerModel is the server's secret: every encoder layer, the pooler and
//     the classifier. Its Forward method maps X_0 and the attention mask to
//     the logits.
//
// Model.Logits runs both halves for tests and tools.
//
// # The seam for approximate inference
//
// The forward pass is written once. Everything in it that is not a
// polynomial goes through the Nonlinearities interface (masked softmax rows,
// GELU, the inverse square root of LayerNorm, tanh in the pooler); Exact
// evaluates them with the math package, and the approximate forward plugs in
// the polynomials of package models/approx. Every call receives the Degree of
// the token whose row it computes.
//
// Token pruning and degree selection are decided by a Schedule, consulted once
// per layer after the attention block (where the encrypted protocol runs its
// bridge, docs/design.md: "One inference, step by step", "The pruning protocol"). The schedule sees the layer's attention
// probabilities (LayerAttention, with Importance for the CipherPrune score)
// and returns which tokens survive and which degree each uses from then on.
// Dropped tokens are removed for all later layers; the CLS token is never
// dropped and always uses DegreeHigh.
//
// Package models knows nothing of encryption (docs/design.md, "Packages and who imports whom").
package models
