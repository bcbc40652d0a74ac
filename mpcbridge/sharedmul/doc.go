// Package sharedmul computes additive shares of Z = X·Y when both X (Rows x
// In) and Y (In x Out) are additive integer shares between a client, who
// holds the only secret key, and a server: attention's S = Q·Kᵀ (per head,
// n x dh times dh x n) and A·V, whose operands cannot be mpcbridge/matmul's
// small plaintext weights. It is option (b) of the linear-layers research
// note, "combine, then multiply": one ciphertext-ciphertext polynomial
// product in the block coefficient encoding of ckks/polymat, no evaluation
// key, one round trip (MsgInput, then MsgOutput, one message per
// ciphertext). One call computes Count independent products of one shape
// (attention's heads): Layout packs them as one block-diagonal product.
//
// # Shares
//
// Inputs and outputs are integer shares in the convention of
// mpcbridge/share (share.Vector, row-major): the parties' x's sum over the
// integers to round(2^F·X), the y's to round(2^F·Y) (F = 16 by default), the
// shares themselves statistically masked integers (about 87 bits in the
// bridge, any size below 2^120). A caller with shares of K (n x dh)
// transposes its own share locally for Q·Kᵀ. Output: a + b = round(2^F·Xq·Yq)
// + ε, Xq, Yq the fixed-point operands, ε the two roundings (±1) plus the
// encryption noise: Gaussian-like, about 3.2·sqrt(In·(D0+D2))·rms(x)/2^G
// units of 2^-F (TestMul: at most 66 units, 0.001, for |x| < 8 at In = 64
// with the defaults).
//
// # Several products in one call
//
// Count products X_h·Y_h of the same shape (Rows x In by In x Out) are one
// product of Rows x Count·In by Count·In x Count·Out,
//
//	[X_1 | ... | X_Count] · diag(Y_1, ..., Y_Count) = [X_1·Y_1 | ... | X_Count·Y_Count],
//
// cut into polymat's blocks (Layout). The left operand is the X_h side by
// side (for the scores, the n x hidden queries as they are; for A·V, the
// probabilities laid out row, head, key), the right one the Y_h one after
// the other, the result the Z_h side by side (the scores' layout, and the
// heads' context vectors concatenated). The off-diagonal entries are
// public zeros (both parties encode 0 there): a weight block that holds
// only zeros is neither sent nor multiplied, so column block j sums only its
// Layout.InnerRange(j). With blocks within one product (D1 | In, D2 | Out:
// BERT's heads at n = 128) that is exactly Count products in one round
// trip; with larger blocks (few rows) several products share every
// ciphertext: BERT-base's 12 heads' scores at n = 2 take 5 operands and 3
// outputs instead of 24 and 12 (TestChooseBlock). At a target, the terms
// of other products meet zeros of the right operand: the value sums In
// products (one product's), the noise every block multiplied ("Budget").
//
// # Protocol
//
// Public: the ring, the Parameters and the Layout (the packed Rows, In,
// Out, the block and Count), which every message repeats and the receiver
// checks.
//
//  1. Client: encodes its share of X, times 2^G, block by block as polymat's
//     input (X[r,k] at r·D1·D2 + D1-1-k) and its share of the
//     block-diagonal Y, times 2^G, as polymat's weight (Y[k,c] at c·D1 + k,
//     the Layout.Weights() blocks that hold diagonal entries), reduced
//     modulo Q, and sends each block as a seeded secret-key encryption (the
//     seed and c0), each as soon as it is ready.
//  2. Server: expands c1, adds the NTT of the same encoding of its own
//     share to c0, block by block as they arrive. The sum of the two
//     residue encodings is exact modulo Q, so each ciphertext now encrypts
//     2^G·round(2^F·X) (or Y) as a small centred polynomial, whatever the
//     size of the shares. For every output block (i, j) it computes the
//     degree-2 ciphertext Σ_a A(i,a) ⊗ B(a,j) over a in InnerRange(j) =
//     (Σ A0·B0, Σ A0·B1 + A1·B0, Σ A1·B1), which decrypts under (1, s, s²)
//     to Σ_a (m_A + e_A)(m_B + e_B): the product 2^(2F+2G)·X·Y at the
//     targets of polymat.Layout, plus noise. Then, per output: (a) a fresh
//     public-key encryption of zero (Lattigo's, u ternary and e0, e1
//     Gaussian; each worker's encryptor has its own PRNG keyed from
//     crypto/rand) added to (c0, c1); (b) at every target a
//     mask M, the sum of three integers uniform in [-2^β, 2^β)
//     (matmul.MaskSampler); its share is round(-M/2^(F+2G)); (c) c0 at the
//     targets only and c1 whole, coefficient domain, every coefficient c in
//     [0, Q) rounded to y = round(c/2^k) (at most floor((Q-1)/2^k): the
//     message has one reading), OutputWidth bits each; not c2. The outputs
//     are sent in order, each as soon as it is ready.
//  3. Client: computes c2 = Σ_a c1_A·c1_B from its own c1's, then, with c0
//     and c1 read as y·2^k, c0 + c1·s + c2·s² at the targets, centred
//     modulo Q, checks |p| < 2^(β+2), and keeps round(p/2^(F+2G)), output
//     by output as they arrive.
//
// Why c2 is neither re-randomized nor sent: c2 = Σ_a c1_A·c1_B is a
// product of the client's own uniform c1's, expanded from the client's
// seeds, which the server never changes (it adds its shares to c0 only). So
// c2 is a function of what the client already holds and can tell it
// nothing about the server's shares; the client computes it itself
// (InnerBlocks products of N·L words per output, a few milliseconds per
// head), which halves the bytes down (BenchmarkAttention, 8-byte
// residues: 53.5 MB with c2 sent, 28.3 MB without). c1 = Σ_a (c0_A·c1_B + c1_A·c0_B), on the other
// hand, is linear in the server's shares with coefficients the client
// knows: without the encryption of zero the client divides them out
// (TestRerandomization recovers the server's share of X exactly from such a
// server, and fails to from this one). With it, c1 is a fresh RLWE sample
// under the server's u, and the targets of c0 given c1, c2 and s amount to
// v + M. c0 off the targets holds cross sums of the combined operands: it
// never leaves. The rounding in (c) is a function of the message the
// server would otherwise send: the client's view is a function of that
// view and can tell it no more (TestRerandomization runs with
// ExactOutputs so that its spy, which needs c1 exactly, shows the leak of
// a server without the encryption of zero).
//
// # Budget
//
// Let Mx = F + G + Bx and My = F + G + By, so that every coefficient of a
// combined encoding of X is at most 2^Mx (|x| <= 2^Bx public), of Y 2^My.
// At a target, over the integers, with P the inner blocks its output sums
// (at most Layout.MaxInner):
//
//	value   Σ_k m_A·m_B over one product's In  <= In·2^(Mx+My)
//	m_A·e_B, per block pair                    <= D0·D1·2^Mx·20
//	e_A·m_B, per block pair                    <= D1·D2·2^My·20
//	e_A·e_B, per block pair                    <= N·400
//	encryption of zero (u·e_pk + e0 + e1·s)    <= 20·(2N+1)
//
// (|e| <= 19.2, Lattigo's bound; a block of X has at most D0·D1 non-zero
// coefficients, of Y D1·D2, and each meets one coefficient of the other's
// noise at a target; the other products' entries in a block meet zeros of
// Y), whose sum, the value plus P times the three block terms plus the
// encryption of zero, is at most 2^V (Parameters.ValueBits). The
// rounding of (c) adds at most 2^k·(N+1) (c1's rounding times the ternary
// secret, and c0's), far below 2^β. The mask is matmul's (the same
// Hellinger argument: the session's 2^LogMaxValues outputs are within
// sqrt(2^LogMaxValues·1.15)·2^V/2^(β+1) <= 1.0724·2^-(λ+2) of a view
// independent of the server's shares):
//
//	β = λ + ceil(LogMaxValues/2) + V + 1,   and the ring must hold
//	|p| < 3·2^β + 2^V + 2^k·(N+1) < 2^(β+2) <= Q/2, so log2 Q > β + 3.
//
// With F = 16, G = 5, λ = 40, LogMaxValues = 27 (BERT-base's attention
// products at n = 512 are 2^26.2 outputs), TestBudget pins, with blocks
// of (16, 8, 16) (the noise moves little with the block: 2^40.9 at
// (16, 16, 32)):
//
//	product, ring            In    Bx, By   value   noise    V    β     log2 Q >
//	Q·Kᵀ, N = 2^13            64   4, 4     2^56    2^40.3   57   112   115
//	A·V, N = 2^13            128   0, 4     2^53    2^40.4   54   109   112
//	Q·Kᵀ, N = 2^12            64   4, 4     2^56    2^40.3   57   112   115
//	Q·Kᵀ, N = 2^12, G = 2     64   3, 3     2^48    2^36.3   49   104   107
//
// N = 2^12 (polymat.N12, log2 Q = 108.99, the most at 128 bits) holds the
// masks only with Bx + By + 2G <= 12 at In = 64, e.g. B = 3 and G = 2: the
// noise is then 8 times that at G = 5 (about 500 units of 2^-16, 0.008, at
// |x| < 8) and |x| <= 8 is tight for BERT's Q and K. Rejected.
//
// N = 2^13 (polymat.N13, two 58-bit primes, log2 Q = 115.99 of the 218 the
// standard allows at 128 bits) holds G = 5 with Bx = By = 4 for Q·Kᵀ and Bx
// = 0 for A·V: the package's ring. G = 6 needs log2 Q > 117, B = 4 on both
// operands of A·V more than 116 (CheckLayout refuses both); a third prime
// would buy G = 10 (β up to 123, the limit of the mask sampler and of
// Int128) for 1.5 times the bytes.
//
// Measured noise (TestMul, |x| < 8, G = 5): at most 66 units of 2^-16 at
// In = 64.
//
// # Cost
//
// Bytes, with w = Σ_i ceil(log2 q_i) = 116 bits per operand coefficient
// (residues packed with matmul.BitWriter), OutputWidth = 101 bits per
// output coefficient on N13 (k = 15), 32 bytes of header and 12 of frame:
// Operands·(76 + N·w/8) up, Σ_outputs 44 + ceil((targets + N)·
// OutputWidth/8) down (Parameters.Bytes; TestMul checks both exactly).
// Server: Products·3 products of L·N words and 2 inverse NTTs per output,
// and a Garner reconstruction per sent coefficient; client: the same count
// of products for c2, 1 NTT, 2 products and an inverse NTT per output, and
// a CRT per target. Several products in one call cost what they cost
// apart when the blocks are within one product, less when the products
// share blocks.
//
// The bytes up dominate: an operand block carries N·116 bits for D0·D1
// (or D1·D2) entries, a fill of 1/D2 (1/D0); per entry, up costs 14.5·D2
// (or D0) bytes and down 12.6·D1 per output, whatever N. ChooseBlock takes
// the block of powers of two with the fewest bytes: (16, 16, 32) for
// BERT-base's scores at n = 128, 9.2 MB a head (68.5 MB up and 42.2 MB
// down for 12 heads; 9.75 MB with whole output coefficients at (32, 8,
// 32)), (16, 32, 16) for A·V, 9.1 MB. Fewer outputs cost less CPU (an
// encryption of zero and two inverse NTTs each): (32, 8, 32) took 2.16
// CPU-s for the 12 heads' scores against 2.6 at (16, 16, 32), for 6% more
// bytes; the choice is for the network.
//
// BenchmarkAttention (12 heads, from ~87-bit shares to shares, both
// parties in one process over loopback TCP, 2 workers each, on the
// 2-core machine at load 13-15 from other jobs, so that the wall times
// vary by 1.5x from run to run and the CPU seconds of both parties are the
// figure to compare; 2026-12-06; go test -run '^$' -bench
// BenchmarkAttention -benchtime 1x ./mpcbridge/sharedmul), 12 calls of one
// head against one call of 12:
//
//	product, n, block              calls   wall      CPU-s   MB up + down
//	S = Q·Kᵀ, 128, (16,16,32)      12      7.22 s    2.58    68.5 + 42.2
//	                               1       6.83 s    2.69    68.5 + 42.2
//	A·V, 128, (16,32,16)           12      7.01 s    2.53    68.5 + 41.0
//	                               1       6.94 s    2.50    68.5 + 41.0
//	S = Q·Kᵀ, 2, (2,64,2)          12      0.253 s   0.148   2.85 + 1.24
//	            (2,512,8)          1       0.021 s   0.021   0.59 + 0.31
//	A·V, 2, (2,2,64)               12      0.168 s   0.116   2.85 + 1.26
//	       (2,16,256)              1       0.022 s   0.022   0.59 + 0.33
//
// At n = 128 one call costs what twelve did, less 11 round trips; at n = 2
// (a pruned layer) the heads share ciphertexts: 7x less CPU, 4.5x fewer
// bytes.
package sharedmul
