// Package share converts between CKKS ciphertexts and additive secret
// shares between two parties (mpcbridge/elementwise's calls in slots): the
// client, who
// holds the only secret key, and the server, who holds the model and
// computes on the client's ciphertexts (docs/design.md: "Parties, secrets and what leaks", "One inference, step by step", "The pruning protocol").
// Unlike Lattigo's mhe/mhefloat, where every party holds a key share, here
// the server has no key: its mask-and-re-randomize step is what protects
// the model, and the client's decryption is the only one.
//
// # Protocols
//
// A. HE to shares (Server.EncToShares, Client.EncToShares). The server holds
// a ciphertext ct = (c0, c1) of a slot vector x with |x_i| <= 2^B (B is
// public, ParametersLiteral.LogBound) at scale Δ.
//
//  1. The server drops ct to the lowest level l whose modulus Q_l holds
//     the masked values, 3·2^β + 2^V < (1/2 - 2^-20)·Q_l, where 2^V =
//     2^(B+1)·Δ bounds the message and noise and β the mask width below
//     (Parameters.MaskLevel); a ciphertext below that level is refused with
//     an error that names the bits needed and available.
//  2. It counts the N coefficients against the session's budget of
//     2^LogMaxValues (refusing beyond it; Server.Masked), re-randomizes: it
//     adds a fresh public-key encryption of zero (c1 becomes a fresh RLWE
//     sample instead of a linear function of the client's ciphertexts
//     whose coefficients depend on the weights), and adds to c0 a mask
//     polynomial M whose coefficients are i.i.d., each the sum of three
//     independent integers uniform in [-2^β, 2^β) (mpcbridge/internal/mask,
//     as mpcbridge/matmul's masks), β = ceil(λ + log2(sqrt(1.15·
//     2^LogMaxValues)·2^V)) (Parameters.MaskBits; λ + LogMaxValues/2 + V +
//     1 for an even LogMaxValues and Δ a power of two); it sends the result
//     (one message for the whole batch).
//  3. The client decrypts it to the integer polynomial p = m + e + M,
//     centred modulo Q_l (|p| <= 3·2^β + 2^V, checked), and decodes p
//     into slots y; its share is a_i = round(2^F·Re(y_i)). The server's
//     share is b_i = round(2^F·Re(decode(-M)_i)). Decoding is linear, so
//     a_i + b_i = 2^F·Dec(ct)_i ± 1 (two roundings). The shares are integers
//     of about β + 1 - log2(Δ) + logN/2 + F bits (84-90 bits for the
//     presets; Parameters.TypicalShareBits), kept as Int128; they are
//     shares over the integers (see Vector), and Vector.Low64 gives ring
//     shares modulo 2^64.
//
// Decoding and encoding need about 100 bits of precision (shares of 80-90
// bits, resolved well below one unit). Instead of Lattigo's big-float
// encoder they use the same special FFT (same roots, same slot order) in
// double-double arithmetic on the exact integer coefficients, 35-40 times
// faster at N = 2^14; the tests check it against Lattigo's encoder at 128
// bits (identical shares when decoding; encoded coefficients within a few
// units, far below the encryption noise).
//
// Both of Lattigo's CKKS rings are supported, chosen by the parameters'
// RingType: the standard ring Z[X]/(X^N+1), N/2 complex slots of which the
// real parts are shared (the ckks presets), and the conjugate-invariant
// ring Z[X+X^-1]/(X^2N+1), held as N coefficients, with N real slots: twice
// the values per ciphertext at the same N and modulus, so half the
// ciphertexts, work and bytes per value (mpcbridge/elementwise's default).
// The codec follows Lattigo's convention for each (slots.go); the tests run
// every protocol on both kinds of ring.
//
// B. Shares to HE (Client.SharesToEnc, Server.SharesToEnc). Each party holds
// integer shares a, b of a vector v (possibly permuted or compacted by other
// protocols, both parties applying the same moves). The client encodes
// a/2^F at the requested level and scale (all slots) and
// encrypts it under its secret key as a seeded ciphertext: c1 is expanded
// from a 32-byte seed (internal/xof: AES-256-CTR), so only c0 and the seed
// travel (half the bytes). The server expands c1 from the seed, encodes
// b/2^F the same way and adds it to c0: the result is a fresh encryption of
// v, with the noise of one secret-key encryption. The two encodings round
// to the nearest integer coefficient each, an error of about one unit per
// coefficient, far below the encryption noise.
//
// (C, the two-party refresh of the removed slot-rotation path, is gone;
// docs/results.md keeps its figures.)
//
// # Security (semi-honest, statistical parameter λ >= 40)
//
// What the client sees of a masked ciphertext is (c0', c1') with
// c1' = c1 + c1z and c0' = -c1'·s + m + e + ez + M, where (c0z, c1z) is the
// server's fresh public-key encryption of zero with noise ez. Under RLWE,
// c1z (a fresh sample u·pk1 + e1 scaled down by P, u fresh) is
// pseudorandom even to the key owner, so c1' is independent of c1 and of
// how the server computed it. Given c1' the client's view is p = v + M with
// v = m + e + ez. Every coefficient of v is below 2^B·Δ + |e + ez| <=
// 2^(B+1)·Δ = 2^V (the coefficients of m are at most Δ·max|x_i|: the
// decoding matrix is unitary up to N; the noise stays below 2^B·Δ or the
// ciphertext is useless anyway). For one coefficient, with M_j the sum of
// three integers uniform on the w = 2^(β+1) values of [-2^β, 2^β), the
// squared Hellinger distance between v_j + M_j and M_j is at most
// v_j²·J/2 with w²·J <= 1.15 (mpcbridge/matmul's documentation, "Mask
// width", and its TestIH3Constant). Squared Hellinger distances add over
// independent coordinates, and over the adaptively chosen ciphertexts of
// a session too (chain rule of the Bhattacharyya coefficient): over the
// session's 2^LogMaxValues masked coefficients, which the server counts,
// H² <= 2^LogMaxValues·2^(2V)·1.15/2^(2β+3), and the statistical distance
// is at most sqrt(2·H²) = sqrt(2^LogMaxValues·1.15)·2^V/2^(β+1) <=
// 2^-(λ+1) by the choice of β (Parameters.SessionBound; TestMaskWidth pins
// it). So everything the client sees of the session's masked polynomials,
// and everything it derives from them (its shares), is within 2^-(λ+1) of
// a distribution that depends neither on the messages nor on the noise. A
// single uniform mask of width b gives |v_j|/2^(b+1) per coefficient,
// composing linearly: it would need LogMaxValues bits above λ + V where
// this one needs half as many. The argument holds unchanged on the
// conjugate-invariant ring: p is its N stored coefficients (the element
// of Z[X]/(X^2N+1) they stand for has each of them twice as a coefficient,
// ring.UnfoldConjugateInvariantToStandard, so it is a function of them), M
// masks each of the N, and the coefficients of m are again at most
// Δ·max|x_i| (that element takes the values Δ·x_i at the primitive 4N-th
// roots of unity, so the same inverse transform, unitary up to 2N, bounds
// its coefficients). The mask floods the noise e too (it hides the
// whole decrypted polynomial), so no separate smudging is needed before this
// decryption. The server sees only ciphertexts under the client's key:
// seeded RLWE encryptions, pseudorandom under RLWE. The shares a, b are
// each, alone, within 2^-(λ+1) of a value-independent distribution (for
// the whole session).
//
// The session: a Server and its ShallowCopy copies count the coefficients
// they mask (N per ciphertext, in EncToShares) against one
// budget of 2^LogMaxValues (2^28 by default: BERT-base at n = 512 masks
// about 2^27.2 in mpcbridge/elementwise) and refuse a batch beyond it, so
// the bound holds per Server: use one per session.
//
// Leakage that remains, by design: the batch size, the levels and scales,
// B, and the slot count (all public in docs/design.md, "Parties, secrets and what leaks").
//
// # Requirements on callers
//
//   - A ciphertext must be at or above the mask level (level 2 for every
//     ckks preset with B <= 8, 1 for mpcbridge/elementwise's chain with
//     B <= 8 and LogMaxValues <= 29; Parameters.MaskLevel).
//   - |x_i| <= 2^B must hold (values outside weaken the bound; far outside,
//     the client's range check fails).
//   - Shares passed to SharesToEnc are shares over the integers of at most
//     about 92 bits (checked against the codec's precision): a protocol that
//     re-shares them must add bounded (statistical) masks, not uniform masks
//     modulo 2^K; ring shares (Vector.Low64) cannot come back.
//   - Both parties call matching methods in the same order with the same
//     arguments (level, scale); the messages check parameters, levels,
//     scales and counts and return errors on any mismatch.
//
// # Messages
//
// Message types are in 0x0100-0x01ff, the block mpcbridge/wire assigns to
// this package (MsgEncToShares etc.). Polynomials
// travel in the NTT domain, each RNS limb packed with ceil(log2 q_i) bits
// per coefficient. A masked ciphertext at level l costs 2·N·log2(Q_l)/8
// bytes, a seeded one N·log2(Q_l)/8 + 42 bytes.
package share
