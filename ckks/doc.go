// Package ckks is the homomorphic part of a private inference: CKKS on
// Lattigo v5 (he/hefloat), the parameter presets, the client's keys and
// the server's polynomial evaluation of the calls in slots
// (mpcbridge/elementwise). The layers run on additive shares
// (mpcbridge/layers); nothing here rotates.
//
// # Parameters and keys
//
// Presets are named, immutable parameter sets checked against the
// Homomorphic Encryption Standard's 128-bit bound (Presets, PresetByName,
// Preset.CheckSecurity): Interactive14 (N = 2^14) and Interactive15; the
// InsecureTest presets keep their chains in small rings and are refused
// unless asked for explicitly. SecretKeys generates a client's keys and
// marshals the relinearization key seeded (the uniform halves travel as a
// 32-byte seed, internal/xof); KeyReceiver checks every received key
// against the preset before decoding it, and DecodePublicKey does the same
// for a public key of any ring (the products' rings of ckks/polymat).
//
// # Evaluation
//
// Layout is the column-block packing of an n x d matrix (token i at offset
// i of every Block-slot column; a flat vector is one row with Block 1) and
// CtMatrix an encrypted matrix in a Layout; Client encrypts, decrypts and
// packs on the key holder's side. Evaluator.ApplyFunc evaluates the
// models/approx registry's polynomial of a function on every entry, each
// token at its degree (DegreeSet), with the relinearization key as the
// only evaluation key; FuncDepth gives the levels it consumes.
//
// The slot-rotation path that evaluated whole encoder layers here (BSGS
// matmuls, the attention block, LayerNorm, the two-party refresh and the
// Galois key plans) is gone; docs/results.md keeps its figures, and commit
// 745a473 is the last that has it.
package ckks
