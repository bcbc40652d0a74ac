// Package polymat multiplies a client's encrypted matrix X (Rows x In) by a
// server's plaintext matrix W (In x Out) with polynomial products and no
// rotation: the block coefficient encoding of Cheetah, Iron and BumbleBee,
// on Lattigo's RLWE ring with the weights pre-encoded once in the NTT
// domain and Montgomery form. mpcbridge/matmul turns the products into
// additive shares of X·W between the two parties.
//
// # Encoding
//
// A Block (D0, D1, D2) with D0·D1·D2 <= N cuts X into D0 x D1 blocks and W
// into D1 x D2 blocks (edge blocks zero-padded). Within a block,
//
//	X[r, k] -> x^(r·D1·D2 + D1-1-k),  W[k, c] -> x^(c·D1 + k),
//
// and the product of the two polynomials modulo x^N + 1 holds
// Σ_k X[r,k]·W[k,c] at the target exponent r·D1·D2 + c·D1 + D1-1 (Layout
// has the proof that nothing else lands there). Summing the products of
// input block (i, a) and weight block (a, j) over a gives output block
// (i, j). So an input ciphertext carries D0·D1 entries (fill 1/D2), an
// output ciphertext D0·D2 results (fill 1/D1, the other coefficients hold
// cross sums of W and are never revealed), and a weight plaintext D1·D2
// weights (fill 1/D0).
//
// # Products
//
// The weight blocks are used in the NTT domain and in Montgomery form,
// either pre-encoded once (NewEncodedWeights, Evaluator.EncodeWeights:
// InnerBlocks·ColBlocks·L·N·8 bytes, 1152 MiB for either of BERT-base's
// 768x768 and 768x3072 with the blocks ChooseBlock picks at n = 128 under
// a 1.25 GiB budget) or encoded on the fly (NewOnTheFlyWeights: only the
// integer matrix is held, In·Out·8 bytes, and each call encodes the blocks
// of a column group on the worker that multiplies by them). Plan decides
// which, per matrix of a model, under a memory budget.
//
// Evaluator.MulThen runs through a kernels.Backend (by default kernels'
// CPU reference): the inputs are uploaded once, and each column group is
// one kernels.Backend.MulMatrixMontgomery call, Lattigo's lazy Montgomery
// multiply-add (no reduction per term, a lazy reduction every
// kernels.LazyTerms terms), tiled on the CPU so that the group's
// accumulators stay in cache while the inputs and weights stream through.
// A weight block is written in Montgomery form on its few nonzero
// coefficients and transformed on the backend (the NTT being linear, the
// words are those of an NTT followed by MForm).
//
// # Block shape and weight memory
//
// CostModel.Estimate models the time of one call with a block shape and a
// way of holding W:
//
//	seconds = products·2·L·N·MAC + L·(3·inputs + 5·outputs)·N·Transform + bytes·Byte + encode
//	bytes   = inputs·(N·InBits/8 + 32) + (outputs·N + Rows·Out)·OutBits/8
//	encode  = weights·L·N·(Transform + Encode) per call, 0 when pre-encoded
//
// with products = RowBlocks·InnerBlocks·ColBlocks, weights =
// InnerBlocks·ColBlocks (about In·Out·D0/N), L the number of primes (the
// "levels" every product and transform runs on). Pre-encoded plaintexts
// take weights·L·N·8 bytes. For a fixed D0 and D1 the largest D2 is best;
// a larger D0 lowers the bytes (as sqrt(N/D0) at the optimum) but raises
// the weight plaintexts linearly, in memory when pre-encoded, in encoding
// time per call otherwise. CostModel.ChooseBlock(d, budget) takes the best
// of both over all balanced shapes, pre-encoded only within the budget;
// at n = 128 without a bound it pre-encodes (128, 4, 8)-like shapes
// (1.1-4.5 GiB per matrix), with none it encodes (16, 16, 16) for
// 768x768, (10, 12, 34) for 768x2304 and (8, 11, 46) for 768x3072 per
// call (0.54 s of the 3.1 s modelled for the last).
//
// CostModel.Plan does it for a whole model within one budget for all its
// pre-encoded plaintexts (a multiple-choice knapsack over each shape's
// Pareto front of memory against time). BERT-base at n = 128, 48 matrices
// (12 x 768x2304, 768x768, 768x3072, 3072x768), modelled seconds of all
// the products of one inference on one core at 1 Gbit/s (TestPlan):
//
//	budget     pre-encoded   plaintexts   held      seconds (encoding)
//	0          0 of 48       0            0.63 GiB  116.9 (27.2)
//	1 GiB      4             1.00 GiB     1.58 GiB  115.0 (25.3)
//	4 GiB      14            4.00 GiB     4.41 GiB  109.4 (19.7)
//	16 GiB     48            15.98 GiB    15.98 GiB  87.1 (0)
//	no bound   48            162 GiB      162 GiB    52.0 (0)
//
// Within 16 GiB the plan pre-encodes shapes of small D0 (8 to 16) for
// many matrices rather than large-D0 shapes for a few (at 16 GiB:
// (16,16,16) for 768x768, (16,8,32) for 768x2304 and 768x3072, (10,34,12)
// for 3072x768); the matrices it encodes per call hold only their integers
// (In·Out·8 bytes).
// Pre-encoded weights fix D1 and D2 only: CostModel.ChooseRows picks D0
// for another row count (a shorter input, the rows left after pruning), at
// which a large-D0 plan keeps all its products (768x768 in (128,4,8) costs
// 0.44 s modelled at n = 1, against 0.02 s in (1,64,64)).
//
// # Choice of the ring
//
// A product costs 2·L·N multiply-adds and covers D0·D1·D2 <= N entries,
// so the total work is about 2·L·Rows·In·Out whatever N; what N changes is
// the memory (L·N·8 bytes per D1·D2 weights) and the bytes per value. The
// bridge's statistical masks need log2 Q of about 105 bits
// (mpcbridge/matmul), so L = 2 primes; N = 2^12 allows 109 bits at 128-bit
// security (N12) and, for the same weight memory, sends fewer bytes than N
// = 2^13 (N13) at the same multiply-adds. Measured (matmul.BenchmarkLinear,
// 1.25 GiB of weights, n = 128): N12 sends 16.5 and 66.0 MB for 768x768
// and 768x3072 where N13 sends 21.9 and 87.7 MB, and is 1.2-1.3x faster;
// N13 leaves 7 more bits for the weights (Fw = 27 instead of 20).
package polymat
