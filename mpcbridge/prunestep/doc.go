// Package prunestep is the encrypted token-pruning step of a private
// inference (docs/design.md, "The pruning protocol", mpcbridge/README.md sections 1-4): it
// composes mpcbridge/share, mpcbridge/shuffle and mpcbridge/gc over one
// mpcbridge/wire connection into one call per party, and adapts it, with
// the two-party refresh, to the ckks evaluator's Bridge interface.
//
// The server S holds the attention block's output, the hidden state X
// (n x d, ckks column-block layout) and the importance scores (score of
// token j in slot j of the score ciphertext), encrypted under the client
// C's key, and the layer's private thresholds θ (prune) and β (degree).
// Afterwards S holds fresh top-level encryptions of the kept rows in the
// next layer's layout, their degrees and the attention masks of the next
// layer; both parties hold the public counts.
//
// On the rotation-free path, where every stage of a layer starts and ends
// with integer additive shares, Server.PruneShares and Client.PruneShares
// run the same step on each party's integer shares of the hidden state and
// the scores (Rows) and return each party's integer shares of the kept
// rows; Server.RevealShares and Server.RevealLabelShares open the logits,
// or only the label, from shares (section "On shares").
//
// # The composed protocol
//
//  1. Request and HE to shares. S sends a request (MsgRequest: the public
//     layout, the layer, the level and scale it wants back, and the
//     fingerprint of the parameters) and, in the same flight, the masked
//     hidden-state and score ciphertexts (share.Server.EncToShares, one
//     batch). Both parties obtain integer shares of round(2^F·x) for every
//     slot, and reduce them modulo 2^128 (ring shares).
//  2. Rows. Each party reads from its slot vectors the n token rows, each
//     of d + 1 ring values of two words (low first): the d features (token
//     i at offset i of every column block) and the score (slot i). Row 0,
//     CLS, is kept out of the shuffle: by a public rule it is never pruned
//     and always high-degree.
//  3. Shuffle. Rows 1..n-1 are shuffled with shuffle.Shuffle over the raw
//     stream (S First, C Second; shuffle.Ring128): both now hold fresh ring
//     shares modulo 2^128 of the rows in the order σ = π_C∘π_S, unknown to
//     both.
//  4. Ring to integer shares. Right behind its last shuffle flight S draws
//     b' uniform in [0, 2^88) for every feature value of every shuffled row
//     and sends (b - b') mod 2^128 (MsgIntShares, two words a value). C's
//     integer share is the signed value of a + (b - b') mod 2^128, which is
//     v - b' exactly (|v| < 2^22 by B + F <= 22, so |v - b'| < 2^89); S's
//     integer share is b'. Both have at most 89 bits, within the share
//     codec's precision. The values of the rows that will be pruned go
//     too: this saves a round trip, and each value is hidden like the
//     others (see Security).
//  5. Comparisons. The score column's ring shares (modulo 2^64: the low
//     words) go to the garbled
//     circuit (gc, over a wire tunnel: the library reads ahead): S garbles
//     with θ and β encoded in the comparison's fixed point, C evaluates;
//     both learn keep = [s > θ] and high = [s > β] ∧ keep for every
//     shuffled row. The scores need no rescaling: the conversions and the
//     comparisons use the same F (ParametersLiteral.Share.FracBits; a
//     shift of a ring share would not be exact). With
//     ParametersLiteral.KeepGroup g the rows carry one more ring value
//     through the shuffle, their index (S's share i-1 for row i, C's 0),
//     and the comparison is gc's top-K circuit on B + F + 2 bits: the kept
//     count, CLS included, is rounded up to a multiple of g (at most n) by
//     also keeping the best-scoring rows below θ, ranked in bins of 2^-10
//     and then by index (Parameters.Decide is the rule), and only that
//     count is revealed: the text's real length, which the first kept
//     count gives away (padding scores 0), is hidden within the group.
//  6. Drop and group. Both parties drop the rows with keep = 0 and order
//     the rest: CLS, then the high-degree rows, then the low-degree rows,
//     each group in the order σ.
//  7. Shares to HE. Both pack the kept rows' integer shares (CLS: its
//     integer shares from step 1) into the slot vectors of the next layout
//     (Parameters.NextLayout: Rows = kept count, row r at offset r, zero
//     elsewhere; the same Block, or with ParametersLiteral.HeadDim (and
//     Heads, and not KeepBlock) the smallest block ckks.Layout.Compact allows, several heads
//     per ciphertext once few rows are left, which both compute from the
//     revealed count); C encrypts its shares as seeded ciphertexts at the level
//     and scale of the request (the top level, the default scale) and
//     sends them right behind its last comparison flight; S adds its own
//     (share.SharesToEnc). S builds the next CtMatrix.
//  8. Masks and degrees. The degrees are High for CLS and the high group
//     and Low for the rest. The attention masks of the next layer are the
//     all-valid masks of the kept count, which is public: a padding row
//     receives exactly zero attention (its key-mask column is zero), so its
//     score is 0 up to the HE noise (about 1e-5) and θ > MinTheta = 1e-3
//     prunes it; every kept row is then a real token. Prune refuses θ <=
//     MinTheta. With a KeepGroup, padding rows kept to fill the group
//     become tokens of the next layers like any other kept row. Since the masks depend only on the public count, S encrypts
//     them itself under C's public key (ckks.Client.EncryptAttentionMasks
//     with the public key): the same ciphertexts C would have sent, without
//     numDense+1 top-level ciphertexts on the wire (three at n = 128,
//     d = 768 with Interactive14: 8.7 MB in Lattigo's serialization, 2.3
//     MB even seeded) and without the client's encryption work.
//
// Flights (maximal runs of messages one party sends), as measured by
// wire.Conn.Stats: 6 from S and 6 or 7 from C, 6 to 6.5 round trips in all.
// The only flights the composition adds to its parts' are the request with
// the masked ciphertexts; the integer-share words go out with S's last
// shuffle flight, the comparison's hellos cross, and C's seeded
// ciphertexts go out with its last comparison flight.
//
// # Security (semi-honest)
//
// What each party sees, step by step: C decrypts only masked polynomials
// (share, statistical 2^-(λ+1), re-randomized); the shuffle's messages are
// uniform (computational, 128-bit); the ring-to-integer words are masked
// (below); the comparison reveals the keep and degree bits in the order σ,
// uniformly random to each party, which amounts to their counts; C's
// seeded ciphertexts are RLWE samples. So the step reveals, beyond the
// public n, d, layout and layer, exactly Counts: the kept and high-degree
// numbers (docs/design.md, "Parties, secrets and what leaks"). With a KeepGroup the bits are still in the
// order σ, and the extra rows are chosen by score and by the row index
// hidden by the shuffle, never by position, so they too reveal only their
// counts: the rounded kept count and the high count. The thresholds enter
// only as garbler inputs; the request holds no secret.
//
// Ring-to-integer hiding. C's ring share a is uniform modulo 2^128 and
// independent of its other views, and a + (b - b') = v - b' with b' uniform
// on [0, 2^88): for one value, C's view is within |v|/2^88 of the
// value-independent -b' (|v| <= 2^(B+F), |x| <= 2^B at F fraction bits;
// B = 4, F = 16 gives 2^-68). Over the m = (n-1)·d values of one step the
// distances add up to at most m·2^(B+F-88): 2^-51 at n = 128, d = 768 and
// 2^-49 at n = 512, against the 2^-40 docs/design.md asks of the whole step.
// Both parties refuse a layout with m > 2^(48-B-F) (2^28 values at B = 4,
// F = 16; larger than any batch the share parameters allow). The masks
// were 2^62 in a 2^64 ring before protocol version 6 of the engine: 2^-42
// per value, only 2^-25 for a step at n = 128 jointly; the 2^128 ring
// costs 43% more bytes per step (Costs).
//
// # Costs
//
// Measured with BenchmarkPrune (go test ./mpcbridge/prunestep -run '^$'
// -bench Prune -benchtime 1x) at Interactive14, d = 768, over loopback
// TCP, both parties in one process on 2 cores shared with a 2-thread
// training job; about half the rows kept. The LAN (3 Gbps, 0.8 ms RTT) and
// WAN (200 Mbps, 40 ms RTT) times add bytes/bandwidth and round trips·RTT
// to the loopback time. The 2^128 ring against the 2^64 ring of protocol
// version 5 (the same benchmark on the previous commit, minutes apart):
//
//	n    ring    loopback  S→C       C→S       round trips  LAN      WAN
//	128  2^128   1.05 s    20.65 MB  21.38 MB  6.5          1.17 s   2.99 s
//	128  2^64    0.85 s    13.97 MB  15.48 MB  6.5          0.93 s   2.29 s
//	512  2^128   3.52 s    93.81 MB  98.11 MB  6.5          4.04 s   11.5 s
//	512  2^64    2.83 s    60.75 MB  68.20 MB  6.5          3.18 s   8.25 s
//
// At n = 128: 13 masked ciphertexts at level 2 (6.0 MB), the shuffle
// (11.8 MB each way), the integer-share words (1.6 MB), the comparisons
// (1.3 MB) and 12 seeded top-level ciphertexts (9.2 MB; at this BERT-base
// shape the block cannot shrink below 128 = slots/head dimension, so the
// kept rows still fill as many ciphertexts).
//
// The step on shares against the ciphertext step, from one run on
// 2026-12-06 13:05 UTC (commit 29e6b27; go test ./mpcbridge/prunestep
// -run '^$' -bench '^BenchmarkPrune(Shares)?$' -benchtime 3x; same rows,
// scores and setup as above; 2 cores shared with other jobs, load average
// 1.8 to 2.0; CPU-s: user + system time of both parties per step):
//
//	n    step         loopback  CPU-s  S→C       C→S       round trips  LAN      WAN
//	128  Prune        0.655 s   0.734  20.65 MB  21.38 MB  6.3          0.77 s   2.59 s
//	128  PruneShares  0.115 s   0.147  14.58 MB  11.96 MB  6.5          0.19 s   1.44 s
//	512  Prune        2.94 s    3.255  93.81 MB  98.11 MB  6.0          3.46 s   10.9 s
//	512  PruneShares  0.376 s   0.492  70.93 MB  60.46 MB  6.7          0.73 s   5.90 s
//
// PruneShares takes 1/5 (n = 128) to 1/6.6 (n = 512) of the CPU time and
// 63% to 68% of the bytes: no masked ciphertexts (6.0 MB at n = 128), no
// seeded ciphertexts back (9.2 MB), no HE conversion work; what is left is
// the shuffle (11.8 MB each way at n = 128), the integer-share words (1.6
// MB) and the comparisons (1.3 MB). The round trips are counted from
// direction changes and vary by half a round between runs.
//
// # On shares
//
// Server.PruneShares and Client.PruneShares are the step for a layer that
// hands over integer additive shares instead of ciphertexts (mpcbridge/
// layers, sharedmul, elementwise): each party passes its Rows, its shares
// of the n x d hidden state (row-major) and of the n scores, a + b =
// round(2^F·x) over the integers. Steps 1 and 7 of the composed protocol
// go; the rest is the same code (both entry points reach one pipeline):
//
//  1. Request. S sends MsgRequest (RequestPruneShares: the fingerprint,
//     the layer, n and d; nothing secret). C checks the fingerprint, its
//     own input against n, d and the layer, and the widths of its shares,
//     and refuses a mismatch (ErrMismatch) by aborting the connection
//     with the reason. Otherwise, for n > 1, it sends MsgAccept (empty)
//     right before its first shuffle bytes, and S receives it before
//     reading any: no flight is added, a refusal reaches S as C's Abort,
//     and the tunnel end marker of C's previous garbled circuit travels
//     in front of it (wire's raw stream does not skip one, so a step on
//     shares right after another would otherwise fail).
//  2. Rows. Integer shares reduce modulo 2^128 to ring shares directly
//     (a + b = v over Z gives a + b = v mod 2^128, for any widths). Row 0,
//     CLS, stays out of the shuffle, as in step 2 above.
//  3. to 6. Shuffle, ring to integer shares, comparisons (KeepGroup's
//     top-K circuit included) and drop and group, exactly as above.
//
// Each party returns the Rows of the kept rows (CLS first, then the
// high-degree rows, then the low-degree rows, each group in the order σ;
// Scores nil) and the counts, from which the degrees follow (High for the
// first Counts.High rows). The shares of a shuffled row are S's b',
// uniform in [0, 2^88), and C's v - b', below 2^89 in magnitude; CLS's are
// the input shares as they are. No masks are encrypted: the next stage
// reads the public count.
//
// Bounds. Every share must be below 2^MaxShareBits = 2^120 in magnitude;
// both parties check their own and refuse wider ones with an error (S
// before any I/O, C by aborting), never a panic. Every value must satisfy
// |x| <= 2^B (B = LogBound, so |v| < 2^(B+F) <= 2^22), as for the
// ciphertext step, where HE to shares requires it: the ring-to-integer
// conversion (v - b' read from 128 bits) and the comparisons (low 64 bits,
// or B + F + 2 with a KeepGroup) are exact only then. The step cannot
// check it without revealing more; a larger value comes out wrong, and
// its conversion hides it only to |v|/2^88.
//
// What leaks: exactly Counts, as in Security below. Nothing is decrypted;
// the shuffle's and the conversion's words and the garbled circuits are
// what they are in the ciphertext step, and the request carries only
// public values (n, d, the layer, the fingerprint).
//
// Reveals on shares. Server.RevealShares opens the k logits to the client
// (RequestRevealShares, then S's shares in MsgRevealShares with indices
// 0..k-1; one flight, no round trip): the client learns them to 2^-F, the
// server nothing, and unlike Reveal there is no trace of HE noise.
// Server.RevealLabelShares opens only the label, the index of the largest
// of k logits (the first of equal ones), for 2 <= k <= MaxLabels: after
// the request (RequestRevealLabelShares, k) the parties run gc's top-K
// circuit on the low 64 bits of their shares with KeepGroup 2, KeepBase 1,
// θ above every value and the label indices as tie orders, which keeps
// exactly the best logit, EvaluatorOnly, so that only the client reads the
// bits: one-hot at the label. The server learns nothing, the client the
// label only. Values must be below 2^(63-F) in magnitude. For k = 2 it
// gives RevealLabel's bit; it costs about 0.14 MB S→C at k <= 8 and 2.4 MB
// at k = 100 (TestRevealLabelShares).
//
// # Bridge sessions
//
// Bridge implements ckks.Bridge for S: Refresh sends a refresh request and
// runs share's refresh, AfterAttention runs Prune with the layer's
// LayerRule. C runs Client.ServeBridge, which answers the requests in the
// order S sends them until S calls Bridge.Done. So a session is
//
//	S: for each layer, ev.Layer(ctx, l, x, el, masks, degs, bridge, tr); ev.Head(...); bridge.Done(ctx)
//	C: counts, err := client.ServeBridge(ctx, conn)
//
// with the evaluator built with ckks.WithReserve(server.MinLevel()).
//
// # Connections, errors, goroutines
//
// Both parties must hold equal Parameters and CKKS parameters; the request
// carries their fingerprint, and C refuses a request for others
// (ErrMismatch), aborting the connection with the reason. An argument
// error (θ <= MinTheta, a bad attention output) returns before any I/O
// and leaves the connection usable; any failure after the first message
// aborts the connection, so the peer's pending call returns an error
// instead of waiting. Errors name the failed step: "cannot Prune: shuffle:
// ...". PruneShares, RevealShares and RevealLabelShares follow the same
// rules; their requests are served by the Client's calls of the same
// names, which take the client's shares, never by ServeBridge, which
// refuses them (ErrMalformed). No goroutine outlives a call (the shuffle's and the comparison's
// are stopped before they return). Context cancellation reaches every
// blocking read and write through the wire.Conn.
package prunestep
