// Package elementwise evaluates the elementwise nonlinearities of a
// private inference (GELU, exp, 1/x, 1/√x, tanh: the polynomial recipes of
// models/approx) and the elementwise product of two shared vectors
// (LayerNorm's x·(1/σ), softmax's e^s·(1/Σ)) between a client, who holds
// the only secret key, and a server, who holds the recipes and the client's
// public and relinearization keys: no Galois key. Both parties start and end
// with integer shares (share.Vector, Int128 per value, F = 16 fraction
// bits), the convention of mpcbridge/share and of mpcbridge/matmul's
// outputs; the ciphertexts live only inside one call.
//
// The name says what the package computes: functions and products value by
// value, whatever the layout. Layout is the caller's: a call takes n values
// (r·c of a matrix, row-major or any order both parties agree on) and packs
// them densely, ceil(n/Slots) ciphertexts per operand (Parameters.Ciphertexts),
// no per-row replication and no power-of-two block: a party lays out its own
// share as it likes, so replication (a row's 1/σ repeated over its columns)
// and reordering happen in the shares, for free.
//
// # Protocol
//
// One round trip: MsgInput (client -> server), MsgOutput (server -> client),
// each split into messages of Chunk ciphertexts (Parameters.Chunk) that the
// server processes as they arrive and answers as they are done, on its
// workers. Public: the parameters, the operation, n, and the levels.
//
//  1. Shares to slots (mpcbridge/share, protocol B). For each operand and
//     each ciphertext t, the client encodes its values t·Slots .. of its
//     share a, divided by 2^F, at the default scale Δ, encrypts them under
//     its secret key at the operand's level (below) with c1 expanded from a
//     fresh 32-byte seed, and sends the seed and c0 (half the bytes). The
//     server expands c1 and adds its own share b, encoded the same way, to
//     c0: a fresh encryption of a + b = round(2^F·x). The sum is formed
//     modulo Q_l and is exact there whatever the shares' size; what bounds
//     the shares is the slot codec's precision, share.CodecBits = 92 bits,
//     checked by both parties before anything is sent (matmul's output
//     shares have about 82 bits, this package's own about 87: both fit;
//     larger ones must be re-shared first, as prunestep's return step does).
//  2. Compute, at exactly the levels needed. Poly: ckks.Evaluator.ApplyFunc
//     (ckks/poly.go) on the ciphertext, the registry's recipe fn/d: change of
//     basis, Chebyshev polynomial, squarings or Newton steps, output scale,
//     approx.Recipe.Cost().Depth levels, so the input is encrypted at the
//     mask level plus that depth (Parameters.PolyLevel) and the output lands
//     on the mask level. Mul: both operands at the mask level + 1
//     (Parameters.MulLevel), one product, relinearization, rescale. MulPoly,
//     x ⊙ fn(y): y at the mask level + depth + 1 (Parameters.MulPolyLevel),
//     x at MulLevel: one conversion each way instead of two. Square, x ⊙ x:
//     one operand at MulLevel, half of Mul(x, x)'s upload (LayerNorm's
//     variance). MulScaled, w ⊙ x ⊙ y with w the server's plaintext
//     (LayerNorm's γ): x at MulLevel + 1 (Parameters.MulScaledLevel),
//     multiplied by w encoded at the scale of the prime it is then rescaled
//     by (the scale stays Δ exactly), then the product with y as in Mul.
//  3. Slots to shares (mpcbridge/share, protocol A, sanitized). For every
//     output ciphertext the server drops to the mask level (already there),
//     adds a fresh public-key encryption of zero (its c1 becomes a fresh
//     RLWE sample instead of a function of the client's c1 and of the
//     computation; TestRerandomization fails on a server without it, and
//     on one that reuses it across ciphertexts) and a mask M, every one of
//     the N coefficients uniform in [-2^b, 2^b), to c0, and sends c0 and
//     c1. The client decrypts p = m + e + M (the computation's noise e
//     included) and decodes round(2^F·slot) as its share; the server's is
//     the decoding of -M. Both keep the n values of the call and drop the
//     padding slots of the last ciphertext.
//
// # Levels and ciphertexts
//
// At Interactive14 (N = 2^14, 8192 slots, Δ = 2^33, levels of 33 bits over a
// 46-bit base) with B = 8 the mask level is 2. The input levels with
// sentiment-tiny's registry (models/trained/sentiment-tiny/approx.json):
// GELU high 10 (depth 8), GELU low 9, exp 9, 1/x 10, 1/√x 9, tanh 8; a
// product 3 (MulScaled's x 4); MulPoly's y one more than Poly's (1/√x 10; 1/x and GELU high do
// not fit). With approx.Default(): GELU 9/8, exp 9, tanh 9; its 1/x (depth
// 9) and 1/√x (depth 10) need more than the 10 levels and are refused
// (PolyLevel says so). Per operand and ciphertext the client sends
// N·Σ_i ceil(log2 q_i)/8 + 56 bytes at level l (784,440 at level 10,
// 577,592 at 7, 303,160 at a product's 3), the server 2·N·Σ_i
// ceil(log2 q_i)/8 + 26 at the mask level (466,970), plus 19 + operands
// bytes per message. A call on n values: ceil(n/8192)
// ciphertexts per operand: 48 for GELU on 128 x 3072, 24 for exp on
// 12 x 128 x 128.
//
// # Mask width and statistical distance
//
// b = λ + log2 N + B + ceil(log2 Δ) + 1 (Parameters.MaskBits: 96 bits at
// Interactive14, λ = 40, B = 8). Every coefficient of m + e is below
// 2^(B + log2 Δ + 1) (|y| <= 2^B and noise below 2^B·Δ), so for one output
// ciphertext the client's view is within N·2^(B+log2 Δ+1)/2^(b+1) =
// 2^-(λ+1) = 2^-41 of a view independent of the values and of the noise
// (Parameters.PolyDistance), and the server's share alone likewise. The
// bound composes additively: a session that masks K output ciphertexts in
// this package is within K·2^-41 (Parameters.SessionDistance), and the
// session's budget of 2^-40 sums this over every masked polynomial of
// every protocol. The mask level must hold b + 2 bits: Q_2 has 112 bits.
// The input side needs no mask: the server sees only seeded secret-key RLWE
// encryptions.
//
// # Security (semi-honest)
//
// The server's view: seeded RLWE encryptions under the client's key,
// pseudorandom. The client's view of each output: c1 + (u·pk1 + e1) with u
// fresh, a fresh RLWE sample independent of the computation, and c0, which
// given c1 and the key amounts to p = m + e + M, within 2^-(λ+1) of
// uniform-like noise independent of the values (above). The recipe and
// its interval are the server's but public in this protocol (its depth is
// the level the client encrypts at). Leakage by design: n, the operation,
// the levels, B, the parameters. Inputs outside a recipe's interval are
// not clamped: the polynomial diverges there, and outputs beyond 2^B
// weaken the bound (the client's range check refuses far-out ones).
package elementwise
