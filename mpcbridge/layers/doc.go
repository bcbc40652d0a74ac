// Package layers composes the rotation-free primitives of the bridge into
// the stages of a post-LayerNorm Transformer encoder layer, on additive
// shares between a client, who holds the only secret keys, and a server,
// who holds the weights: the attention stage (Attention, with every
// token's importance score), the feed-forward stage
// LayerNorm(h + W2·GELU(W1·h + b1) + b2) (FFN), LayerNorm, and the
// classification head (Head). The products by weights are
// mpcbridge/matmul's polynomial matmuls (no evaluation key), Q·Kᵀ and A·V
// mpcbridge/sharedmul's products of two shared matrices, the
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
// most 1/2). The stage outputs have about 89 bits, the elementwise calls'
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
//  4. elementwise Polys(InvSqrt) on the n values of v, one item per span
//     of rows with one degree, all in one call: shares of s = 1/√(v + ε)
//     by the registry's recipe, the approximate forward's.
//  5. Local: each party repeats s_i over row i's d columns.
//  6. elementwise MulScaled(γ; z, s): shares of γ_j·z_ij·s_i, γ the
//     server's plaintext (repeated over the rows, encoded at the scale of
//     the prime it is rescaled by).
//  7. Local: the server adds round(2^F·β_j) to its share.
//
// Steps 4 to 6 are one call where repeating each row's variance over its
// columns adds no ciphertext (every span's rows·d values within the
// ciphertexts of its rows' variances: at Elementwise14 up to 16384/d rows
// per span, 21 at BERT-base's d = 768, 128 at sentiment-tiny's 128; and
// 1/√x one level below the top): elementwise MulScaledPolys(γ; z, v
// repeated), one item per span, computes γ_j·z_ij·InvSqrt(v_i) with one
// conversion each way instead of two (fusedNorm). LayerNorm then takes two
// round trips instead of three, and at n = 1 one call on one ciphertext
// less. Measured (BenchmarkLayer at n = 1, before and after, two runs each
// alternating, 2026-12-06 16:26-16:33 UTC, load average 9-19 on the
// shared 2-core machine):
//
//	go test -p 1 -run '^$' -bench 'BenchmarkLayer$/bert-base/^n=(1|32)$/' -benchtime 1x ./mpcbridge/layers
//
// n = 1: 9 server rounds instead of 11, 8.22 MB up and 6.13 down instead
// of 8.64 and 6.98, 1.93 and 2.02 CPU-s against 1.93 and 1.77 (the
// polynomial runs one level higher, the conversions of one call are
// saved: even within the noise); n = 32 (not fused: 32·768 values are two
// ciphertexts, 32 variances one) unchanged, 17 rounds, 8.5-8.8 CPU-s
// against 8.0-8.6. The wall times of these runs (2.6-16 s at n = 1) say
// more about the other agents than about the layer.
//
// γ and β are not folded into the next product's weights (W' = diag(γ)W,
// b' = βW + b, which would save step 6's extra level): the residual needs
// LayerNorm's output itself, so the stage computes it and the next product
// takes it as it is.
//
// # Attention (Server.Attention, Client.Attention)
//
// mpcbridge/README.md section 12 gives the protocol: the QKV product with
// 1/√dh folded into the queries' weights, every head's Q·Kᵀ in one
// sharedmul call (the heads packed block-diagonally, sharedmul.Layout), the
// shift on the server's share, exp per degree span, the client's key mask
// while its padding is secret (Rows.Hidden), the row sums by a product
// with public all-ones weights (Parameters.Sums; local sums would outgrow
// the slot codec), 1/Σ and the normalization in slots, every head's A·V
// in one sharedmul call, the output projection, the residual and
// LayerNorm, and the importance scores at F + 4 fraction bits (local sums,
// or a shared product with the client's weights 16·valid_i/m while its
// padding is secret). One valid key needs no
// softmax: its probabilities are 1. The client never holds the server's
// registry: its Parameters (NewClientParameters) carry the levels of the
// polynomials' inputs and the bound of the exponentials.
//
// # Feed-forward (Server.FFN, Client.FFN)
//
// For h (n x Hidden, n at most the plan's Rows):
//
//  1. matmul W1 (+ b1): shares of u = h·W1 + b1 (n x Intermediate), the
//     server passing its share of h, the client its own.
//  2. elementwise Polys(GELU) on u, one item per degree span of rows, one
//     call.
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
// have about 82 bits, the elementwise calls' about 89 (the three-uniform
// masks of mpcbridge/share, 2 bits wider than the single uniform before);
// the residual adds one bit (90), the mean's row sums log2 d bits inside
// Int128 (at most 100 for d = 768 before the division), the centred z one
// more (91, the widest share a call gets: one bit under the codec's 92;
// the variance's Square gets it divided by 2^k, NormLogBound). The tests
// log the widest output share of every stage.
//
// # Round trips and bytes
//
// LayerNorm: three round trips (Square, InvSqrt, MulScaled), two where
// InvSqrt and MulScaled are one call (above), whatever the degree spans
// (one call carries them all). Feed-forward: six (W1, GELU, W2, and
// LayerNorm's three), five with the two-call LayerNorm. Each round trip is one call of mpcbridge/matmul or
// mpcbridge/elementwise, whose documentation gives its bytes; per call the
// client sends first and the server answers. With ceil(k/Slots)
// ciphertexts for k values (Slots = 16384 at Elementwise14), LayerNorm on
// n x d sends up ceil(nd/S) ciphertexts at the product level (Square),
// ceil(n/S) at InvSqrt's input level, and ceil(nd/S) at each of the scaled
// product's two levels, and down ceil(nd/S)·2 + ceil(n/S) ciphertexts at
// the mask level.
//
// Measured (BenchmarkLayer: one BERT-base-shaped layer, attention then the
// feed-forward stage, random weights, calibrated intervals with
// sentiment-tiny's recipes, GELU of degree 127; Elementwise14, polymat.N12
// and N13; both parties in one process over loopback TCP, 2 workers each;
// load below 1, 2026-12-06; go test -p 1 -run '^$' -bench
// 'BenchmarkLayer$' -benchtime 1x ./mpcbridge/layers): n = 128 26.4 s
// (46.2 CPU-s of both parties), 297.9 MB up, 206.6 MB down, 39 round
// trips; n = 32 4.85 s; n = 1 1.61 s (blocks for one row, weights encoded
// per call). At n = 128, the server's wall seconds per step (MB up +
// down; the run before, 26.8 s in all):
//
//	QKV         1.56   25.8 + 22.0     W1          2.61   42.9 + 24.1
//	scores      4.44   68.5 + 48.5     GELU        4.99   17.8 + 10.2
//	exp         2.87    8.0 +  5.1     W2          1.22   32.8 + 26.9
//	sums        0.18    2.7 +  0.2     LayerNorm   1.13    6.3 +  5.6
//	1/Σ         0.86    0.7 +  0.4
//	normalize   0.82    6.9 +  5.1
//	A·V         4.35   68.5 + 47.0
//	Wo          0.72   10.7 +  6.0
//	LayerNorm   1.44    6.3 +  5.6
//
// The error against the approximate forward is 1.1e-3 at most on the
// layer's outputs, nearly all from the products' quantized weights. The
// rotation path's layer took 306.6 s at n = 128 (docs/results.md).
//
// Since, every head's scores and A·V are one sharedmul call each, with
// rounded outputs. The same benchmark (now at n = 2 too), the code before
// (ac798c0) and after in one run, twice each, on the 2-core machine at
// load 10-15 from other jobs, so that the wall times vary by 1.5x between
// runs and the CPU seconds of both parties and the bytes are the figures
// to compare (2026-12-06):
//
//	n      round trips   CPU-s before   CPU-s after   MB before   MB after
//	128    39 -> 17      33.0, 33.9     32.2, 32.2    504.5       492.2
//	32     39 -> 17      8.27, 8.42     8.18, 7.90    117.8       116.2
//	2      39 -> 17      3.24, 3.29     3.23, 3.00    36.3        29.5
//	1      11            2.03, 2.03     2.01, 1.94    15.6        15.6
//
// At n = 128 the scores now take 68.5 + 42.2 MB and A·V 68.5 + 41.0; at
// n = 2 both 0.9 MB instead of 4.3 (the heads share ciphertexts). One row
// has a single key, and no shared product.
//
// # Security (semi-honest)
//
// The stages add no message of their own: what each party sees is the
// union of its views of the calls, each simulated by its package's
// argument (matmul: the client's view within the session bound of one
// independent of W; elementwise: its session's masked coefficients
// within 2^-(λ+1) together, mpcbridge/README.md section 13),
// and the local steps are functions of a party's own share. The session's
// statistical distance is the sum over the calls (issue: rotation-free
// layers, item 6, states it for a whole inference). Leakage: the shapes,
// n, the degree spans (the count of low-degree rows), the plan's blocks,
// the public bounds and the registry.
package layers
