// Package matmul computes additive shares of Y = X·W (+ bias) between a
// client, who holds X (or a share of it) and the only secret key, and a
// server, who holds W: the client's blocks of X travel encrypted in the
// block coefficient encoding of ckks/polymat, the server multiplies them by
// its pre-encoded weight blocks without any rotation or key, and sends
// every output ciphertext sanitized, so that the client's decryption is its
// share and the server's mask is its own. One round trip: MsgInput
// (client -> server), MsgOutput (server -> client), each split into
// messages of ParametersLiteral.Chunk ciphertexts.
//
// # Shares
//
// Both parties end with integer shares of round(2^F·Y) in the convention
// of mpcbridge/share: share.Vector (Int128 per entry, Rows x Out
// row-major), a + b = round(2^F·(Xq·Wq + bias)) + ε over the integers, F =
// 16 by default, where Xq is the fixed-point input (a sum of shares over
// 2^F) and Wq = round(2^Fw·W)/2^Fw. Vector.Low64 gives ring shares modulo
// 2^64. The error ε is the two local roundings (|ε| <= 1) plus the
// encryption noise times W divided by 2^(G+Fw): Gaussian-like with a
// standard deviation of about 3.2·||W_j||_F·2^-G output units, W_j the D2
// columns of W in the output's block (0.3-0.5 units for BERT-base's
// random N(0, 0.03²) weights at G = 5), plus 2^-6 units of rounding from
// the compression. The input may be the client's alone (the server passes
// nil) or shared: the server adds the encoding of its share into the
// client's ciphertexts before the products, so the shares may be the
// statistically masked integers of other protocols (up to 2^120).
//
// # Protocol
//
// Public: the ring, ParametersLiteral, the Layout (Rows, In, Out and the
// Block, which both parties pass and every message repeats and checks).
//
//  1. Client: for every input block (i, a), encode 2^G·X[block] as a
//     polynomial, encrypt it under the secret key with c1 expanded from a
//     fresh 32-byte seed, and send the seed and c0 (NTT domain, ceil(log2
//     q_i) bits per coefficient of limb i).
//  2. Server: expand c1, add its encoded share 2^G·Xs[block] to c0 (if
//     any), compute every output block (i, j) = Σ_a in(i, a)·W(a, j)
//     (polymat.Evaluator), and for each output, on the worker that computed
//     it:
//     (a) add a fresh public-key encryption of zero (u·pk0 + e0, u·pk1 +
//     e1), u ternary and e0, e1 Gaussian drawn for this ciphertext alone
//     from an AES-256-CTR stream keyed by crypto/rand. Without it c1 =
//     Σ_a c1_a·W_a is a function of the client's own c1_a and W, and the
//     client could solve for W (TestRerandomization fails on such a
//     server, and on one that reuses u across outputs);
//     (b) bring c0 and c1 to the coefficient domain and add to c0, at
//     every target t (the D0·D2 coefficients that hold Y, fewer at the
//     edges), a mask M_t, the sum of three independent integers uniform in
//     [-2^β, 2^β); its share of that entry is round(-M_t/2^(G+Fw)) plus
//     round(2^F·bias);
//     (c) send c0 at the targets only (the other coefficients are cross
//     sums of W: they never leave; TestOnlyTargetsSent fails on a server
//     that sends them and the client refuses its message) and c1 whole,
//     every coefficient reduced to [0, Q) and rounded to a multiple of
//     2^k, OutWidth bits each.
//  3. Client: rebuild c1·2^k, compute p = c0 + c1·s at the targets,
//     centred modulo Q, check |p| < 2^(β+2) (a wrong key or parameters
//     fail here), and keep round(p/2^(G+Fw)).
//
// Only needed limbs: the masked values need all of Q (log2 Q > β + 3), so
// no limb can be dropped; the rounding to multiples of 2^k drops the low
// bits instead, k = G + Fw - 6 - ceil(log2(sqrt(2N)/3)) + 1, where the
// error's standard deviation 2^(k-1)·sqrt(2N)/3 (c1's rounding times the
// ternary secret) stays below 2^(G+Fw-6), 1/64 of an output unit: 94 of
// 109 bits per coefficient with the benchmark's parameters.
//
// # Mask width
//
// Let v_t be the value at target t before the mask: the product plus all
// noise. Over the integers,
//
//	|v_t| <= 2^(G+F+Fw+By) + 20·N·2^(Fw+By-B) + 20·(2N+1) <= 2^V,
//
// where the first term is 2^G·|Σ_k X[r,k]·W[k,c]| at scale 2^(F+Fw) with
// |X| <= 2^B and 2^B·Σ_k |W[k,c]| <= 2^By (NewWeights checks it on the
// quantized weights, so the bound holds for every input); the second the
// client's encryption noise (|e| <= 19.2, Lattigo's bound) times W's
// blocks, summed over the inner blocks: at most 20·D2·max_c Σ_k|W[k,c]|
// with D2 <= N; the third the decryption of the encryption of zero,
// u·e_pk + e0 + e1·s. The weight-dependent noise is thus inside v_t, and
// the mask floods it with the value.
//
// Per target: the client sees v_t + M_t. With M uniform on the w =
// 2^(β+1) values of [-2^β, 2^β), summed three times, the Hellinger
// distance between M and v + M satisfies H² <= v²·J/2 (Cauchy-Schwarz over
// the v unit steps), where J = Σ_x (sqrt(f(x+1)) - sqrt(f(x)))² <=
// 1.15/w² for the probability function f (TestIH3Constant computes it).
// Per polynomial of t targets, with independent masks: H² <= t·2^(2V)·J/2.
// Composition: for independent coordinates, 1 - H²(product) = Π (1 - H²_t)
// >= 1 - Σ H²_t, so over the K = 2^LogMaxValues outputs a Server may mask
// in its session (it refuses more), H² <= K·2^(2V)·J/2, and the
// statistical distance is at most sqrt(2·H²) <= sqrt(K·1.15)·2^V/2^(β+1).
// With
//
//	β = λ + ceil(LogMaxValues/2) + V + 1
//
// this is at most 1.0724·2^-(λ+2) < 2^-(λ+1) for the whole session
// (Parameters.SessionBound; TestMaskWidth pins it). A single uniform mask would
// compose linearly (distance |v|/w per value) and need LogMaxValues bits
// where this one needs half: β = 117 instead of 105 for the benchmark's
// parameters, and Q above 2^119, more than N = 2^12 allows at 128-bit
// security. The ring
// must hold the masked values: |p| < 3·2^β + 2^V + 2^(k-1)·(N+1) <
// 2^(β+2) <= Q/2, so Q > 2^(β+3).
//
// With the defaults (λ = 40, LogMaxValues = 27, F = 16, G = 5) on
// polymat.N12 (log2 Q = 108.99) and B = 3, By = 8: Fw = 20 (the largest
// that fits), V = 50, β = 105, k = 15, 94 bits per output coefficient.
//
// # Security (semi-honest)
//
// The server sees seeded secret-key RLWE encryptions (c1 expanded from
// the seed, c0 = -c1·s + e + m): pseudorandom under RLWE. The client sees,
// per output, c1 + u·pk1 + e1, a fresh RLWE sample under the server's u
// (pseudorandom even to the key owner) and so independent of how c1 was
// computed, and the targets of c0, which given c1 and s amount to v_t +
// M_t: within the session bound above of a view that depends on neither
// W nor X. Its share, a function of that view, is as masked. Leakage, by
// design: Rows, In, Out, the block, B, By and the parameters, all public.
//
// # Cost
//
// Bytes: Inputs·(32 + N·log2 Q/8) up, Σ_outputs (N + targets)·OutWidth/8
// down, plus 38 + 12 bytes per message. BenchmarkLinear (BERT-base's
// shapes at n = 128, both parties over loopback TCP, 2 workers each, 1.25
// GiB of pre-encoded weights per matrix), beside ckks.BenchmarkLinear in
// one run on the shared 2-core machine (load 8-10 from other jobs, so the
// wall times are inflated several-fold, the ratios less):
//
//	           old (rotations)  new, N12 (CPU-s, MB up+down)   new, N13
//	768x768    98.3 s           1.96 s (0.94, 10.7+5.8)        2.56 s (1.18, 11.4+10.5)
//	768x3072   396.1 s          6.15 s (3.03, 42.9+23.1)       7.42 s (3.60, 45.6+42.0)
//
// Blocks (128, 4, 8) and (32, 4, 32) on N12. The products are most of the
// work: 2·L·Rows·In·Out lazy multiply-adds, 0.84 ns each on an idle core.
//
// # Weight memory
//
// Pre-encoded weights take 1.1 GiB per matrix with those blocks, 162 GiB
// for BERT-base's 48 matrices. A server with less memory encodes some of
// them per call (NewWeightsOnTheFly: it holds the quantized matrix only,
// In·Out·8 bytes, and every MatMul encodes the blocks on its workers);
// Parameters.PlanWeights chooses which, and every block, for a model
// within a budget (polymat.CostModel.Plan, with its BERT-base table). On
// the fly, the cost model picks blocks of smaller D0 (fewer plaintexts to
// encode, more ciphertexts each way). BenchmarkLinear, one run (after the
// products moved to kernels.MulMatrixMontgomery; load 7-8 from other jobs
// on the 2 cores, so compare CPU seconds, the wall times vary by 2x
// between variants run minutes apart):
//
//	           pre-encoded (1.25 GiB budget)            on the fly (budget 0)
//	           block      s     CPU-s  MB     held       block       s     CPU-s  MB     held
//	768x768    (128,4,8)  1.49  1.00   16.5   1152 MiB   (16,16,16)  1.74  1.24   41.1   4.5 MiB
//	768x2304   (43,5,19)  3.20  2.01   46.9   1174 MiB   (10,12,34)  8.76  3.52   92.5   13.5 MiB
//	768x3072   (32,4,32)  5.89  2.48   66.0   1152 MiB   (8,11,46)   4.02  3.98   118.8  18 MiB
//
// The model gives 0.44/1.04, 1.33/2.43 and 1.77/3.04 s, ratios of 2.3, 1.8
// and 1.7; the measured CPU ratios are 1.2, 1.75 and 1.6 here, and 2.1,
// 1.8 and 1.8 in an earlier run of the same code bar the Montgomery form
// of the sparse blocks (0.63/1.31, 1.91/3.38, 2.36/4.32 CPU-s). Per call,
// then, encoding saves the memory (64-256x) for about 1.2-2.1x the CPU time
// and 1.8-2.5x the bytes.
package matmul
