// Package layers composes the rotation-free primitives of the bridge into
// the stages of a post-LayerNorm Transformer encoder layer, on additive
// shares between a client, who holds the only secret keys, and a server,
// who holds the weights: LayerNorm and the feed-forward stage
// LayerNorm(h + W2·GELU(W1·h + b1) + b2). The products are
// mpcbridge/matmul's polynomial matmuls (no evaluation key), the
// nonlinearities and the Hadamard products mpcbridge/elementwise's calls in
// slots (the relinearization key only); between calls, each party works on
// its own share, and a change of layout (a row's value repeated over its
// columns) is a rearrangement of the shares, for free. Both parties run the
// same methods in the same order over one connection (Conn: a *wire.Conn);
// every call's messages carry its own types, and every value is public
// except the shares and the server's weights.
//
// # Shares
//
// Every stage starts and ends with integer shares (share.Vector, Int128 per
// value, row-major): a + b = round(2^F·x) over the integers, F = 16 for both
// primitives (NewParameters refuses different F). Sums over Z are exact, so
// a party may add, subtract and divide its own share: round(a/d) +
// round(b/d) is the exact quotient within one unit (two roundings of at
// most 1/2). The stage outputs have about 87 bits, the elementwise calls'
// output size, and feed the next stage unchanged: no re-sharing anywhere
// (TestFFNChain runs two stages back to back).
//
// # LayerNorm (Server.LayerNorm, Client.LayerNorm)
//
// For x (n x d) with each row's public degree (nil: all high):
//
//  1. Local: each party sums its share's rows and divides by d, rounding
//     (the mean's shares, within 2^-F of the exact mean), and subtracts the
//     mean from its row: z = x - mean.
//  2. elementwise Square(z): shares of z², one operand up (half of
//     Mul(z, z)'s upload).
//  3. Local: row sums of z² divided by d, rounding: the variance v; the
//     server adds round(2^F·ε) to its share.
//  4. elementwise Poly(InvSqrt) on the n values of v, one call per span of
//     rows with one degree: shares of s = 1/√(v + ε) by the registry's
//     recipe, the approximate forward's.
//  5. Local: each party repeats s_i over row i's d columns.
//  6. elementwise MulScaled(γ; z, s): shares of γ_j·z_ij·s_i, γ the
//     server's plaintext (repeated over the rows, encoded at the scale of
//     the prime it is rescaled by).
//  7. Local: the server adds round(2^F·β_j) to its share.
//
// γ and β are not folded into the next product's weights (W' = diag(γ)W,
// b' = βW + b, which would save step 6's extra level): the residual needs
// LayerNorm's output itself, so the stage computes it and the next product
// takes it as it is.
//
// # Feed-forward (Server.FFN, Client.FFN)
//
// For h (n x Hidden, n at most the plan's Rows):
//
//  1. matmul W1 (+ b1): shares of u = h·W1 + b1 (n x Intermediate), the
//     server passing its share of h, the client its own.
//  2. elementwise Poly(GELU) on u, one call per degree span of rows.
//  3. matmul W2 (+ b2): shares of v.
//  4. Local: r = h + v (the residual).
//  5. LayerNorm(r) with the stage's γ, β, ε.
//
// The blocks of both products are public (FFNPlan: Parameters.PlanFFN
// picks them for Rows within the weight budget, the server encodes its
// weights for them once, and a call on n <= Rows rows keeps D1 and D2 and
// balances D0).
//
// # Bounds
//
// Public: B_m = matmul LogBound, By = LogBoundOut, B = elementwise
// LogBound (8 by default), the registry's intervals. They must hold on
// every input (the masks' widths follow from them; the polynomials cannot
// clamp):
//
//   - h: |h| <= 2^B_m (W1's input; a LayerNorm output).
//   - u - b1 and v - b2: 2^B_m·Σ_k |W[k, c]| <= 2^By for every column
//     (matmul.NewWeights checks it; LogBoundOut derives By from weights);
//     u inside GELU's interval; |GELU(u)| <= 2^B_m (W2's input: 17 on
//     sentiment-tiny's interval [-17, 17], so B_m = 5).
//   - LayerNorm: |z| <= 2^(B/2) (Square's output within 2^B: |z| <= 16),
//     v + ε inside InvSqrt's interval, |γ| <= 2^B (MulScaled refuses more)
//     and |γ·z·s| <= 2^B.
//
// Share sizes: the products accept shared inputs up to 2^120, the
// elementwise calls up to share.CodecBits = 92 bits. The products' outputs
// have about 82 bits, the elementwise calls' about 87 (84 at
// InsecureTest11's N = 2^11); the residual adds one bit (88), the mean's
// row sums log2 d bits inside Int128 (at most 98 for d = 768 before the
// division), the centred z one more (89, the widest share a call gets).
// The tests log the widest output share of every stage.
//
// # Round trips and bytes
//
// LayerNorm: three round trips (Square, InvSqrt, MulScaled; one more per
// extra degree span). Feed-forward: six (W1, GELU, W2, and LayerNorm's
// three). Each round trip is one call of mpcbridge/matmul or
// mpcbridge/elementwise, whose documentation gives its bytes; per call the
// client sends first and the server answers. With ceil(k/Slots)
// ciphertexts for k values (Slots = 8192 at Interactive14), LayerNorm on
// n x d sends up ceil(nd/S) ciphertexts at the product level (Square),
// ceil(n/S) at InvSqrt's input level, and ceil(nd/S) at each of the scaled
// product's two levels, and down ceil(nd/S)·2 + ceil(n/S) ciphertexts at
// the mask level.
//
// Measured (BenchmarkFFN: BERT-base's shapes at n = 128, random weights,
// Interactive14 and polymat.N12, 1.25 GiB of pre-encoded weights per
// matrix, both parties in one process over loopback TCP with 2 workers
// each, on the shared 2-core machine at load below 1, 2026-12-06; wall
// seconds of the server per step, MB client -> server + server -> client):
//
//	step        high (GELU 127)     low (GELU 63)
//	W1          1.50 s  42.9 + 24.3  1.22 s  42.9 + 24.3
//	GELU       25.28 s  37.7 + 22.4 13.82 s  34.3 + 22.4
//	W2          1.28 s  32.8 + 27.2  1.26 s  32.8 + 27.2
//	Square      0.26 s   3.6 +  5.6  0.33 s   3.6 +  5.6
//	InvSqrt     0.52 s   0.7 +  0.5  0.57 s   0.7 +  0.5
//	MulScaled   0.37 s   8.1 +  5.6  0.40 s   8.1 +  5.6
//	stage      29.2 s (57.0 CPU-s)  17.6 s (34.3 CPU-s); 125.8 (122.5) + 85.6 MB
//
// LayerNorm alone on 128 x 768: 1.21 s, 1.88 CPU-s, 12.4 + 11.7 MB. The
// error against the approximate forward is 1.3e-3 at most on the stage's
// outputs, nearly all from W2's quantization (its 3072-term column sums
// need By = 13, which leaves Fw = 15 bits per weight), 8e-5 for LayerNorm.
// GELU is 87% of the time: the degree (or the low-degree rows of a pruned
// layer) is the lever, not the products. The old path in the same session
// (ckks has no feed-forward benchmark; its 2 workers, refreshes excluded):
// BenchmarkGELU/high 19.7 s (degree 63, as the low column),
// BenchmarkLayerNorm/high 3.54 s (1/√x of degree 511), and
// BenchmarkLinear/768x3072 88.6 s (W1's shape; W2's 3072x768 has none):
// about 200 s for the stage against 17.6 s.
//
// # Security (semi-honest)
//
// The stages add no message of their own: what each party sees is the
// union of its views of the calls, each simulated by its package's
// argument (matmul: the client's view within the session bound of one
// independent of W; elementwise: within 2^-(λ+1) per masked ciphertext),
// and the local steps are functions of a party's own share. The session's
// statistical distance is the sum over the calls (issue: rotation-free
// layers, item 6, states it for a whole inference). Leakage: the shapes,
// n, the degree spans (the count of low-degree rows), the plan's blocks,
// the public bounds and the registry.
package layers
