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
// workers; Poly, Polys and MulPoly start with one small MsgScales (server
// -> client: one float64 per operand, below). Public: the parameters, the
// operation, n, the levels and the encoding factors.
//
// A call is one group of operands, or several: Polys takes up to MaxGroups
// items (function, degree, values), such as a layer's degree spans (the
// CLS and high-degree rows, then the low-degree rows), and runs them all
// in the one round trip. Each item is a group of its own ciphertexts, at
// its recipe's level (the server evaluates one polynomial per ciphertext:
// different polynomials on the slots of one ciphertext would cost a
// product per slot mask), the groups' ciphertexts one after the other in
// the messages, every header listing each group's length and levels
// (message version 2; the receiver checks them all against its own). The
// server's workers take the call's ciphertexts whatever their group, so
// two one-ciphertext items run in parallel where two Poly calls ran one
// after the other on one worker; the masked coefficients are those of the
// separate calls, N per output ciphertext. MsgScales carries each
// group's length and factors.
//
// A call of fewer ciphertexts than the server has workers (LayerNorm's
// 1/√x at n = 1: one value, one ciphertext) would leave the other workers
// idle while one evaluates the polynomial, which is most of such a call's
// CPU (86% of a one-value 1/√x call in a CPU profile). There the server
// spreads each ciphertext's polynomial over workers/ciphertexts goroutines
// (parPoly, each with its own evaluator): Lattigo's baby-step giant-step
// evaluation with its powers computed wave by wave, its baby steps and
// each round of giant steps in parallel; the same operations on the same
// operands, so the same ciphertext bit for bit (TestParallelPoly), the
// same CPU, a shorter critical path (degree 63: 16 products in 10 steps
// on two goroutines).
//
// Measured (BenchmarkPolys, Elementwise14, sentiment-tiny's registry, both
// parties in one process over loopback TCP, 2 workers each; wall seconds
// and CPU seconds of both parties per op, 5 ops):
//
//	go test -p 1 -run '^$' -bench '^BenchmarkPolys$' -benchtime 5x ./mpcbridge/elementwise
//
// on the shared 2-core machine, 2026-12-06 16:37-16:38 UTC, load average
// 11-13 (the machine oversubscribed about sixfold: the wall times measure
// the other agents more than this code; the CPU seconds are the
// comparable column):
//
//	call                                 before                after
//	1/√x, 1 value (seq, par)             0.72 s  0.372 CPU-s   0.73 s  0.375 CPU-s
//	GELU, 3072 values (seq, par)         0.83 s  0.413 CPU-s   0.90 s  0.428 CPU-s
//	1/√x, 1 + 1 values (2 Poly, Polys)   1.33 s  0.733 CPU-s   1.59 s  0.767 CPU-s
//	GELU, 3072 + 3072 (2 Poly, Polys)    1.41 s  0.698 CPU-s   1.38 s  0.697 CPU-s
//	GELU, 6144 + 10240 (2 Poly, Polys)   1.19 s  0.656 CPU-s   1.41 s  0.702 CPU-s
//
// The same CPU either way (within 5%), as designed: Polys saves a round
// trip (the two spans' messages travel together) and parPoly shortens the
// critical path, gains that show only where cores are idle, which they
// were not here; a run at load 14.5 (15:58) gave the same picture.
//
//  0. Encoding factors (Poly and MulPoly). The server sends the factor s
//     each operand is encoded with: the recipe's change-of-basis scalar
//     (t = s·x + c maps its interval onto [-1, 1]) for the polynomial's
//     operand when the recipe is folded (Parameters.Folded: every recipe
//     without Newton steps), 1 otherwise. The client holds no registry, so
//     it learns this public constant here; it checks it against the call
//     and bounds it to [2^-30, 2^30].
//  1. Shares to slots (mpcbridge/share, protocol B). For each operand and
//     each ciphertext t, the client encodes its values t·Slots .. of its
//     share a, divided by 2^F, at the scale Δ·s (s = 1 but for a folded
//     polynomial's operand), encrypts them under its secret key at the
//     operand's level (below) with c1 expanded from a fresh 32-byte seed,
//     and sends the seed and c0 (half the bytes). The
//     server expands c1 and adds its own share b, encoded the same way, to
//     c0: a fresh encryption of a + b = round(2^F·x), or, read at scale Δ,
//     of s·x (the change of basis without a level). The sum is formed
//     modulo Q_l and is exact there whatever the shares' size; what bounds
//     the shares is the slot codec's precision, share.CodecBits = 92 bits,
//     checked by both parties before anything is sent (matmul's output
//     shares have about 82 bits, this package's own about 89: both fit;
//     larger ones must be re-shared first, as prunestep's return step does).
//  2. Compute, at exactly the levels needed. Poly, folded recipe (poly.go):
//     the server adds c (free), evaluates the registry's Chebyshev
//     polynomial of fn/d on t with Lattigo's baby-step giant-step evaluator
//     (hefloat.PolynomialEvaluator, the one ckks uses), then the squarings
//     or the output scale: Parameters.PolyDepth = the recipe's depth less
//     its change of basis. A polynomial whose odd part is linear on a
//     symmetric interval (GELU: GELU(x) - x/2 is even, and the interpolant
//     keeps it) is evaluated as c_1·t + E(u), u = 2t² - 1 = T_2(t), E of
//     half the degree (T_2k = T_k∘T_2): the same depth, about half the
//     products. Poly, recipe with Newton steps (none in the shipped
//     registries): ckks.Evaluator.ApplyFunc, change of basis included
//     (approx.Recipe.Cost().Depth). The input is encrypted at the mask level
//     plus that depth (Parameters.PolyLevel) and the output lands on the
//     mask level. Mul: both operands at the mask level + 1
//     (Parameters.MulLevel), one product, relinearization, rescale. MulPoly,
//     x ⊙ fn(y): y at the mask level + depth + 1 (Parameters.MulPolyLevel),
//     x at MulLevel: one conversion each way instead of two. Square, x ⊙ x:
//     one operand at MulLevel, half of Mul(x, x)'s upload (LayerNorm's
//     variance). MulScaled, w ⊙ x ⊙ y with w the server's plaintext
//     (LayerNorm's γ): x at MulLevel + 1 (Parameters.MulScaledLevel),
//     multiplied by w encoded at the scale of the prime it is then rescaled
//     by (the scale stays Δ exactly), then the product with y as in Mul.
//     MulScaledPolys, w ⊙ x ⊙ fn(y) per item (LayerNorm's γ·z·(1/√v) in
//     one call where it took Poly then MulScaled): x as in MulScaled, y at
//     MulPolyLevel, the product of w ⊙ x and fn(y) at MulLevel.
//  3. Slots to shares (mpcbridge/share, protocol A, sanitized). For every
//     output ciphertext the server drops to the mask level (already there),
//     adds a fresh public-key encryption of zero (its c1 becomes a fresh
//     RLWE sample instead of a function of the client's c1 and of the
//     computation; TestRerandomization fails on a server without it, and
//     on one that reuses it across ciphertexts) and a mask M, every one of
//     the N coefficients the sum of three integers uniform in [-2^β, 2^β),
//     to c0, and sends c0 and c1. The N coefficients count against the
//     session's budget, shared by the server's workers (below). The client decrypts p = m + e + M (the computation's noise e
//     included) and decodes round(2^F·slot) as its share; the server's is
//     the decoding of -M. Both keep the n values of the call and drop the
//     padding slots of the last ciphertext.
//
// # Presets, levels and ciphertexts
//
// The default preset is this package's Elementwise14 (Presets): Lattigo's
// conjugate-invariant ring of degree N = 2^14, whose N coefficients carry N
// real slots (16384, twice the standard ring's 8192 complex slots at the
// same N and modulus: half the ciphertexts, work and bytes per value),
// Δ = 2^36, primes of 52 and 51 bits for the mask level (1), seven 36-bit
// levels above it, two 41-bit key-switching primes (digits of two primes:
// five per relinearization instead of Interactive14's eleven), log QP =
// 437 against the HE standard's 438 for N = 2^14 (TestPresets; the
// conjugate-invariant instance has dimension N, see Presets). No refresh
// happens inside a call, so the chain holds the deepest folded recipe and
// nothing more (a deeper registry needs Elementwise15, below); ckks's
// presets (Interactive14 and the others) remain usable by name, standard
// ring, ckks's chains. Why this chain (measured
// on one GELU-127 ciphertext while choosing it): with the change of basis
// folded, seven levels suffice, which frees the bits for a second
// key-switching prime (a relinearization at the top level 1.6 times
// faster than with one, and the polynomial 1.3 times) and for Δ = 2^36:
// at Δ = 2^33 the conjugate-invariant ring's GELU errs by up to 5e-4
// (against 2^-10 allowed), at 2^36 by 7e-5. A key-switching prime must not
// be far below the digits it switches (two 33-bit primes against the
// 100-bit digit of the mask primes erred by 9e-4), hence 41 bits.
//
// With B = 8 the mask is β = 100 bits and the mask level 1. The input levels
// with sentiment-tiny's registry (models/trained/sentiment-tiny/approx.json),
// folded: GELU high 8 (degree 127: depth 7), GELU low 7, exp 7 (degree 15
// and two squarings), 1/x 8, 1/√x 7, tanh 6; a product 2 (MulScaled's x
// 3); MulPoly's y one more than Poly's (1/√x 8; 1/x and GELU high do not
// fit). With approx.Default(): GELU 7/6, exp 7, tanh 7; its 1/x (degree
// 255) and 1/√x (degree 511) need more than the 7 levels and are refused
// (PolyLevel says so). Per operand and ciphertext the client sends
// N·Σ_i ceil(log2 q_i)/8 + 56 bytes at level l (739,384 at level 8,
// 663,608 at 7, 288,824 at a product's 2: 45, 41 and 18 bytes per value),
// the server 2·N·Σ_i ceil(log2 q_i)/8 + 26 at the mask level (426,010: 26
// bytes per value), plus 16 + groups·(4 + operands) bytes per message
// (20 + operands for one group) and one MsgScales of 8 + groups·(4 +
// 8·operands) bytes. A call on n values: ceil(n/16384)
// ciphertexts per operand: 24 for GELU on 128 x 3072, 12 for exp on
// 12 x 128 x 128. At ckks.Interactive14 (8192 slots, mask level 2, 96-bit
// mask) the same registry's folded levels are one higher (GELU high 9) and
// the bytes per value about twice.
//
// Measured (BenchmarkElementwise, sentiment-tiny's registry, both parties
// in one process over loopback TCP with 2 workers each, every conversion
// timed; CPU seconds of both parties, values per CPU-second, wall seconds,
// MB client -> server + server -> client; the maximum error against the
// recipe on the reconstructed outputs):
//
//	go test -p 1 -run '^$' -bench '^BenchmarkElementwise$/^(interactive14-nofold|interactive14|elementwise14)$' -benchtime 1x -timeout 1h ./mpcbridge/elementwise
//
// on the shared 2-core machine, 2026-12-06 13:01-13:03 UTC, load average
// 1.5-2.3 (other agents: compare the columns of one run, not the wall
// times across runs):
//
//	call (values)          Interactive14,         Interactive14,   Elementwise14
//	                       unfolded (before)      folded + split   (default, after)
//	GELU 127 (393,216)     47.6 CPU-s  8.3k v/s   29.1   13.5k     9.9 CPU-s  39.7k v/s (4.8x)
//	                       32.8 s  37.7 + 22.4 MB 14.7 s           5.0 s  17.7 + 10.2 MB
//	GELU 63 (393,216)      26.3 CPU-s  14.9k v/s  20.1   19.6k     7.2 CPU-s  54.8k v/s (3.7x)
//	                       13.3 s  34.3 + 22.4 MB 10.1 s           5.8 s  15.9 + 10.2 MB
//	exp 15, 2 sq (196,608)  8.1 CPU-s  24.2k v/s   8.3   23.6k     2.9 CPU-s  67.7k v/s (2.8x)
//	                        4.1 s  17.2 + 11.2 MB  4.5 s           2.6 s   8.0 +  5.1 MB
//	product (98,304)        0.73 CPU-s 135k v/s    0.74  134k      0.39 CPU-s 254k v/s (1.9x)
//	                        0.38 s  7.3 +  5.6 MB  0.74 s          0.39 s  3.5 +  2.6 MB
//	max error              1.2e-4 (GELU 127)      2.8e-4           1.3e-4 (tests allow 2^-10)
//
// A CPU profile of the default's GELU 127: 79% in the polynomial (45% in
// relinearizations, of which the NTTs of the key switching are the most),
// 15% in the conversions of both parties (slot codec, encryption, masks).
// The ciphertext-ciphertext products are near the baby-step giant-step
// minimum (19 per ciphertext for GELU 127 split: the square and the 18 of
// degree 63; 28 unsplit); what remains is the cost of one key switch.
//
// # The deep preset
//
// Elementwise15 is for registries deeper than Elementwise14's seven
// levels: spam-mini's 1/x (models/trained/spam-mini, degree 127 and one
// Newton step, so not folded) needs 10 levels above the mask level, which
// Elementwise14 refuses (TestPresetsDeep). Conjugate-invariant ring,
// N = 2^15 (32768 real slots), the same Δ = 2^36 and mask primes (52 and
// 51 bits: mask level 1, β = 100 bits as at N = 2^14), seventeen 36-bit levels above
// them, four 41-bit key-switching primes: log QP = 879.0 against the HE
// standard's 881 for N = 2^15 (TestPresets, Preset.CheckSecurity). The
// bits left after the mask primes buy 19 levels with two key-switching
// primes (two of 47 bits, log QP 881.0), 18 with three (43 bits, 880), 17
// with four. Measured on one ciphertext while choosing, with
// BenchmarkKeySwitchPrimes (the server's polynomial alone, one goroutine,
// CPU seconds per ciphertext, the best of 2 to 8 repetitions; the range
// over four runs, the first three by a throwaway version of it,
// 2026-12-06 13:39-13:48 UTC, load average 0.8-4.6):
//
//	go test -p 1 -run '^$' -bench '^BenchmarkKeySwitchPrimes$' -benchtime 4x ./mpcbridge/elementwise
//
//	key-switching primes    GELU 127 (input level 8)  GELU 63 (7)  spam-mini 1/x (11)
//	2 x 47 bits             0.75-0.80                 0.48-0.52    1.85-1.91
//	3 x 43 bits             0.71-0.75                 0.47-0.48    1.72-1.80
//	4 x 41 bits             0.69-0.73                 0.47-0.51    1.70-1.78
//	Elementwise14, 2 x 41   0.35 (half the values)    0.22-0.23    refused
//
// Three and four primes are within 5% of each other in every run (four
// ahead on GELU 127 in three runs of four; digits of three or four primes:
// at level 8 three digits either way, at 11 four against three), two
// 5-10% slower; four also keep
// the relinearization key smallest (5 digits at the top level, against 7
// and 11) and still leave seven levels more than spam-mini needs. Its
// recipes' input levels there: GELU 7 and 6, exp 7, 1/x 11 (MulPoly's
// 12), 1/√x 7, tanh 6. Per operand and ciphertext the client sends
// 1,466,424 bytes at level 8, 1,318,968 at 7, 1,916,984 at 11 and 573,496
// at a product's 2 (45, 40, 59 and 18 bytes per value), the server
// 851,994 at the mask level (26 per value): per value what Elementwise14
// sends, within 1% (some 36-bit primes take 37 bits). A ciphertext at the
// top level is 3 MB, so Chunk is at most 45 there (NewParameters).
// InsecureElementwise11Deep is the same chain in N = 2^11, for the tests
// of deep recipes (TestPolyDeep).
//
// Measured side by side with the default in one run (BenchmarkElementwise,
// as above; spam-mini's 1/x on 128 x 768 values uniform in its interval,
// the others with sentiment-tiny's registry):
//
//	go test -p 1 -run '^$' -bench '^BenchmarkElementwise$/^(elementwise14|elementwise15)$' -benchtime 1x -timeout 1h ./mpcbridge/elementwise
//
// on the shared 2-core machine, 2026-12-06 13:43:32-13:44:00 UTC, load
// average 1.9-2.1 (a second run at 13:44:03-13:44:38, load 1.9-2.1, in
// brackets: values per CPU-second of both):
//
//	call (values)           Elementwise14 (default)        Elementwise15
//	GELU 127 (393,216)      9.31 CPU-s  42.2k v/s  [38.0k]  11.8 CPU-s  33.3k v/s  [32.7k]  (0.79x [0.86x])
//	                        4.7 s  17.7 + 10.2 MB           6.0 s  17.6 + 10.2 MB
//	GELU 63 (393,216)       6.80 CPU-s  57.8k v/s  [55.6k]  7.81 CPU-s  50.3k v/s  [51.6k]  (0.87x [0.93x])
//	                        3.4 s  15.9 + 10.2 MB           4.0 s  15.8 + 10.2 MB
//	exp 15, 2 sq (196,608)  2.76 CPU-s  71.2k v/s  [66.8k]  2.78 CPU-s  70.7k v/s  [71.2k]  (0.99x [1.07x])
//	                        1.4 s   8.0 +  5.1 MB           1.4 s   7.9 +  5.1 MB
//	product (98,304)        0.36 CPU-s  274k v/s   [242k]   0.40 CPU-s  246k v/s   [248k]   (0.90x [1.03x])
//	                        0.19 s  3.5 +  2.6 MB           0.27 s  3.4 +  2.6 MB
//	spam-mini 1/x (98,304)  refused (10 levels needed)      5.73 CPU-s  17.2k v/s  [17.4k]
//	                                                        3.8 s   5.8 +  2.6 MB
//	max error               1.3e-4 (GELU 127)               2.4e-4 (GELU 127), 4.1e-5 (1/x)
//
// Same bytes per value; the larger ring costs 8-27% more CPU per value
// on GELU (the server's polynomial alone costs the same per value, 0.70
// CPU-s per 32768 values against 0.35 per 16384 in the first table, so
// the difference lies in the rest of the call: conversions, memory; not
// profiled) and nothing measurable on the shallow calls, and its error is
// about twice Elementwise14's (within 2^-10). So Elementwise14 stays the
// default, and Elementwise15 is for the registries it refuses.
//
// # Mask width and statistical distance
//
// Every coefficient of m + e is below 2^V = 2^(B+1)·Δ (|y| <= 2^B and
// noise below 2^B·Δ), and every one is masked by the sum of three
// independent integers uniform in [-2^β, 2^β) (mpcbridge/share,
// mpcbridge/internal/mask: mpcbridge/matmul's masks). Their squared
// Hellinger distances add over the session, so its 2^LogMaxValues masked
// coefficients together are within sqrt(2^LogMaxValues·1.15)·2^V/2^(β+1)
// of a view independent of the values and of the noise
// (Parameters.SessionBound), and β is the least width that makes this at
// most 2^-(λ+1): β = λ + LogMaxValues/2 + V + 1 for an even LogMaxValues
// (Parameters.MaskBits: 100 at Elementwise14 and Elementwise15, 97 at
// Interactive14, λ = 40, B = 8, LogMaxValues = 28; the bound 1.07·2^-42).
// The default budget, 2^28 coefficients (Parameters.MaxCiphertexts: 16,384
// output ciphertexts of Elementwise14), covers BERT-base at n = 512, about
// 9,300 (mpcbridge/README.md, section 13). The server's workers draw on
// one budget (share.Server.ShallowCopy; Server.Masked), and a call that
// would exceed it is refused before any message: a session is one Server.
// The mask level must hold the masked values, 3·2^β + 2^V < (1/2 -
// 2^-20)·Q: Q > 2^102.6 at Elementwise14, whose Q_1 is 2^103.0 (level 1);
// 2^30 coefficients or B = 9 would need β = 101 and 2^103.6, which level 1
// has not, and a mask level of 2 would leave GELU 127 and 1/x without a
// level (Q_2 112 bits at Interactive14, level 2 as before). An output's
// scale a little above Δ (Δ²/q after a rescale by a prime below Δ) costs
// no bit (NewParameters checks the largest such scale). On the
// conjugate-invariant ring the argument is the same, over its N stored
// coefficients (each masked; the coefficients of m again at most
// Δ·max|y|: mpcbridge/share's documentation), and with twice the values
// per ciphertext a call masks half the ciphertexts, so it spends half the
// session's budget. The input side needs no mask: the server sees only
// seeded secret-key RLWE encryptions.
//
// Cost against the single uniform mask of b = λ + log2 N + B + log2 Δ + 1
// = 99 bits it replaced (2^-41 per ciphertext, composing linearly to about
// 2^-27.8 over BERT-base's session): the same bytes (the mask level and
// its primes are unchanged), shares about 2 bits larger (89 at
// Elementwise14, under share.CodecBits = 92), and 48 keystream bytes per
// coefficient instead of 16 (0.21 ms per ciphertext instead of 0.07);
// BenchmarkElementwise's elementwise14/gelu-high, before and after:
// 17.7 + 10.2 MB both times, 9.96 and 9.73 CPU-s (within the noise).
//
// # Security (semi-honest)
//
// The server's view: seeded RLWE encryptions under the client's key,
// pseudorandom. The client's view of each output: c1 + (u·pk1 + e1) with u
// fresh, a fresh RLWE sample independent of the computation, and c0, which
// given c1 and the key amounts to p = m + e + M: over the whole session
// within 2^-(λ+1) of a view independent of the values (above). The recipe and
// its interval are the server's but public in this protocol (its depth is
// the level the client encrypts at, its change-of-basis scalar the factor
// MsgScales carries; the encoding at Δ·s changes nothing of the above: the
// ciphertexts the server sees are still seeded secret-key encryptions).
// Leakage by design: n, the operation, the levels, the encoding factors,
// B, the parameters. Inputs outside a recipe's interval are
// not clamped: the polynomial diverges there, and outputs beyond 2^B
// weaken the bound (the client's range check refuses far-out ones).
package elementwise
