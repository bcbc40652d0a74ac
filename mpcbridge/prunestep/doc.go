// Package prunestep is the token-pruning step of a private inference and
// the openings of its result (docs/design.md, "The pruning protocol",
// mpcbridge/README.md sections 2-4 and 7): it composes mpcbridge/shuffle
// and mpcbridge/gc over one mpcbridge/wire connection into one call per
// party, on the integer additive shares the layers hand over
// (mpcbridge/layers, sharedmul, elementwise).
//
// Each party holds Rows: its integer shares of the n x d hidden state
// (row-major) and of the n importance scores, a + b = round(2^F·x) over
// the integers (the scores at Parameters.ScoreFracBits). The server S also
// holds the layer's private thresholds θ (prune) and β (degree).
// Server.PruneShares and Client.PruneShares return each party's integer
// shares of the kept rows and the public counts; Server.RevealShares and
// Server.RevealLabelShares open the logits, or only the label, from
// shares. (The slot-rotation path's step between ciphertexts, with its
// HE-to-shares and shares-to-HE conversions, the refresh and the bridge
// session, is gone; docs/results.md keeps its figures.)
//
// # The step
//
//  1. Request. S sends MsgRequest (RequestPruneShares: the fingerprint of
//     the parameters, the layer, n and d; nothing secret). C checks the
//     fingerprint, its own input against n, d and the layer, and the
//     widths of its shares, and refuses a mismatch (ErrMismatch) by
//     aborting the connection with the reason. Otherwise, for n > 1, it
//     sends MsgAccept (empty) right before its first shuffle bytes, and S
//     receives it before reading any: no flight is added, a refusal
//     reaches S as C's Abort, and the tunnel end marker of C's previous
//     garbled circuit travels in front of it (wire's raw stream does not
//     skip one, so a step right after another would otherwise fail).
//  2. Rows. Integer shares reduce modulo 2^128 to ring shares directly
//     (a + b = v over Z gives a + b = v mod 2^128, for any widths): each
//     row is d + 1 ring values of two words (low first), the d features
//     and the score. Row 0, CLS, is kept out of the shuffle: by a public
//     rule it is never pruned and always high-degree.
//  3. Shuffle. Rows 1..n-1 are shuffled with shuffle.Shuffle over the raw
//     stream (S First, C Second; shuffle.Ring128): both now hold fresh ring
//     shares modulo 2^128 of the rows in the order σ = π_C∘π_S, unknown to
//     both.
//  4. Ring to integer shares. Right behind its last shuffle flight S draws
//     b' uniform in [0, 2^88) for every feature value of every shuffled row
//     and sends (b - b') mod 2^128 (MsgIntShares, two words a value). C's
//     integer share is the signed value of a + (b - b') mod 2^128, which is
//     v - b' exactly (|v| < 2^22 by B + F <= 22, so |v - b'| < 2^89); S's
//     integer share is b'. The values of the rows that will be pruned go
//     too: this saves a round trip, and each value is hidden like the
//     others (see Security).
//  5. Comparisons. The score column's ring shares (modulo 2^64: the low
//     words) go to the garbled circuit (gc, over a wire tunnel: the
//     library reads ahead): S garbles with θ and β encoded in the
//     comparison's fixed point, C evaluates; both learn keep = [s > θ] and
//     high = [s > β] ∧ keep for every shuffled row. With
//     ParametersLiteral.KeepGroup g the rows carry one more ring value
//     through the shuffle, their index (S's share i-1 for row i, C's 0),
//     and the comparison is gc's top-K circuit on B + F + 2 bits: the kept
//     count, CLS included, is rounded up to a multiple of g (at most n) by
//     also keeping the best-scoring rows below θ, ranked in bins of 2^-10
//     and then by index (Parameters.Decide is the rule), and only that
//     count is revealed: the text's real length, which the first kept
//     count gives away (padding scores 0), is hidden within the group.
//  6. Drop and group. Both parties drop the rows with keep = 0 and order
//     the rest: CLS (its input shares as they are), then the high-degree
//     rows, then the low-degree rows, each group in the order σ.
//
// Each party returns the Rows of the kept rows (Scores nil) and the
// counts, from which the degrees follow (High for the first Counts.High
// rows). The next layer's attention masks are the all-valid masks of the
// kept count, which is public: a padding row receives exactly zero
// attention, so its score is 0 up to the rounding and θ > MinTheta = 1e-3
// prunes it; every kept row is then a real token. PruneShares refuses
// θ <= MinTheta. With a KeepGroup, padding rows kept to fill the group
// become tokens of the next layers like any other kept row.
//
// Bounds. Every share must be below 2^MaxShareBits = 2^120 in magnitude;
// both parties check their own and refuse wider ones with an error (S
// before any I/O, C by aborting), never a panic. Every value must satisfy
// |x| <= 2^B (B = LogBound, so |v| < 2^(B+F) <= 2^22): the ring-to-integer
// conversion (v - b' read from 128 bits) and the comparisons (low 64 bits,
// or B + F + 2 with a KeepGroup) are exact only then. The step cannot
// check it without revealing more; a larger value comes out wrong, and its
// conversion hides it only to |v|/2^88.
//
// # Security (semi-honest)
//
// What each party sees: the shuffle's messages are uniform (computational,
// 128-bit); the ring-to-integer words are masked (below); the comparison
// reveals the keep and degree bits in the order σ, uniformly random to
// each party, which amounts to their counts. So the step reveals, beyond
// the public n, d and layer, exactly Counts: the kept and high-degree
// numbers (docs/design.md, "Parties, secrets and what leaks"). With a
// KeepGroup the bits are still in the order σ, and the extra rows are
// chosen by score and by the row index hidden by the shuffle, never by
// position, so they too reveal only their counts: the rounded kept count
// and the high count. The thresholds enter only as garbler inputs; the
// request holds no secret.
//
// Ring-to-integer hiding. C's ring share a is uniform modulo 2^128 and
// independent of its other views, and a + (b - b') = v - b' with b' uniform
// on [0, 2^88): for one value, C's view is within |v|/2^88 of the
// value-independent -b' (|v| <= 2^(B+F), |x| <= 2^B at F fraction bits;
// B = 6, F = 16 gives 2^-66). Over the m = (n-1)·d values of one step the
// distances add up to at most m·2^(B+F-88): 2^-49.4 at n = 128, d = 768
// and 2^-47.4 at n = 512, against the 2^-40 docs/design.md asks of the
// whole step. Both parties refuse a step with m > 2^(48-B-F) (2^26 values
// at B = 6, F = 16). The masks were 2^62 in a 2^64 ring before protocol
// version 6 of the engine: 2^-40 per value, only 2^-23.4 for a step at
// n = 128 jointly.
//
// # Costs
//
// BenchmarkPruneShares (go test ./mpcbridge/prunestep -run '^$' -bench
// PruneShares -benchtime 3x; d = 768, about half the rows kept, loopback
// TCP, both parties in one process; 2026-12-06 13:05 UTC, commit 29e6b27,
// 2 cores shared with other jobs, load average 1.8 to 2.0; CPU-s: user +
// system time of both parties per step; LAN = 3 Gbps and 0.8 ms RTT, WAN =
// 200 Mbps and 40 ms RTT added to the loopback time):
//
//	n    loopback  CPU-s  S→C       C→S       round trips  LAN      WAN
//	128  0.115 s   0.147  14.58 MB  11.96 MB  6.5          0.19 s   1.44 s
//	512  0.376 s   0.492  70.93 MB  60.46 MB  6.7          0.73 s   5.90 s
//
// At n = 128: the shuffle (11.8 MB each way), the integer-share words (1.6
// MB) and the comparisons (1.3 MB). The round trips are counted from
// direction changes and vary by half a round between runs.
//
// # Openings
//
// Server.RevealShares opens the k logits to the client (RequestRevealShares,
// then S's shares in MsgRevealShares with indices 0..k-1; one flight, no
// round trip): the client learns them to 2^-F, the server nothing.
// Server.RevealLabelShares opens only the label, the index of the largest
// of k logits (the first of equal ones), for 2 <= k <= MaxLabels: after
// the request (RequestRevealLabelShares, k) the parties run gc's top-K
// circuit on the low 64 bits of their shares with KeepGroup 2, KeepBase 1,
// θ above every value and the label indices as tie orders, which keeps
// exactly the best logit, EvaluatorOnly, so that only the client reads the
// bits: one-hot at the label. The server learns nothing, the client the
// label only. Values must be below 2^(63-F) in magnitude. It costs about
// 0.14 MB S→C at k <= 8 and 2.4 MB at k = 100 (TestRevealLabelShares).
//
// # Connections, errors, goroutines
//
// Both parties must hold equal Parameters; the request carries their
// fingerprint (Server.Fingerprint: the step's parameters only, the step
// encrypts nothing), and C refuses a request for others (ErrMismatch),
// aborting the connection with the reason. Each request is
// served by the Client's call of the same name, which refuses any other
// (ErrMismatch). An argument error (θ <= MinTheta, a bad input) returns
// before any I/O and leaves the connection usable; any failure after the
// first message aborts the connection, so the peer's pending call returns
// an error instead of waiting. Errors name the failed step: "cannot
// PruneShares: shuffle: ...". No goroutine outlives a call (the shuffle's
// and the comparison's are stopped before they return). Context
// cancellation reaches every blocking read and write through the
// wire.Conn.
package prunestep
