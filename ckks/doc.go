// Package ckks is the homomorphic half of a private inference: CKKS on
// Lattigo v5 (he/hefloat), specialized to BERT encoder layers whose input
// is encrypted under the client's key.
//
// # Parameters and keys
//
// Presets are named, immutable parameter sets checked against the
// Homomorphic Encryption Standard's 128-bit bound (Presets, PresetByName,
// Preset.CheckSecurity): Interactive14 (the default, N = 2^14) and
// Interactive15; the InsecureTest presets keep their chains in small rings
// and are refused unless asked for explicitly. GaloisElements and Keys give
// the rotation plan of a model shape and packing; SecretKeys generates a
// client's keys and marshals them seeded (the uniform halves travel as a
// 32-byte seed, internal/xof), and KeyReceiver checks every received key
// against the preset and the plan before decoding it.
//
// # Packing
//
// Layout is the column-block packing of an n x d activation matrix: a
// ciphertext holds Slots/Block feature columns, token i at offset i of every
// Block-slot column, so per-token operations act slot by slot and dropping
// or moving a row is a re-packing the client does when it re-encrypts
// (Layout.Compact), never a slot permutation. BlockFor chooses the block;
// with few rows several heads share a ciphertext (Layout.HeadsPerCt,
// StackedColumn). CtMatrix is an encrypted matrix in a Layout; Client
// encrypts, decrypts and packs on the key holder's side; DecodeCtMatrix and
// DecodeAttentionMasks check a received ciphertext's ring, level, scale and
// representation before use.
//
// # Evaluation
//
// Evaluator runs a layer homomorphically: Linear (BSGS diagonal matmuls
// with hoisted baby steps, diagonals encoded on the fly by an encoder that
// writes Lattigo's plaintexts word for word), AttentionBlock (QKV
// projections, Q·Kᵀ and A·V by block-internal token shifts, softmax by
// polynomials with a fixed public shift, the importance scores),
// FeedForwardBlock, LayerNorm, ApplyFunc (every nonlinearity is the
// models/approx registry's polynomial, per token at its degree) and Head
// (pooler and classifier on the CLS row). NewEncodedLayer and
// NewEncodedHead encode a models layer's weights for a block size.
//
// The evaluator never decrypts: whenever levels run out it asks a
// Refresher, and after each attention block a Bridge prunes rows and picks
// their degrees. In the engine both are the two-party protocol of
// mpcbridge/prunestep; tests use a secret-key helper. A LevelRefresher
// returns only the levels the next stages use (the level plan), and
// WithReserve keeps the levels the bridge's masks need. WithLinearLevel
// caps the matmuls' level; WithBackend routes rotations, products and
// rescales through a kernels.Backend (the pure-Go reference or the GPU).
package ckks
