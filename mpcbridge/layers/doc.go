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
// Measured (BenchmarkFFN, BERT-base's shapes at n = 128, Interactive14 and
// polymat.N12, both parties over loopback TCP with 2 workers each, on the
// shared 2-core machine): see the benchmark's documentation and
// mpcbridge/README.md.
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
