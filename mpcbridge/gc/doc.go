// Package gc runs the garbled-circuit comparisons of encrypted token pruning
// (docs/design.md, "The pruning protocol", step 3), with Yao garbling, half gates and free XOR
// from github.com/markkurossi/mpc.
//
// # Setting
//
// After the HE-to-shares conversion and the two-party shuffle, the client
// holds c_j and the server v_j, additive shares modulo 2^K of m importance
// scores s_j = (c_j + v_j) mod 2^K, read as K-bit two's-complement fixed-point
// numbers with F fraction bits (Params.Encode, Params.Decode). The server also
// holds two private thresholds in the same encoding: θ (prune) and β (degree).
// One call computes, for every j,
//
//	keep_j = [s_j > θ]    high_j = [s_j > β] ∧ keep_j    (signed comparison)
//
// and reveals both bit vectors to both parties. high is masked by keep so a
// pruned token's degree bit reveals nothing, even when β < θ. θ, β and the shares are
// private inputs; only the bits come out. Params.Greater is the plaintext rule.
//
// Since the rows were shuffled by a permutation neither party knows, the
// bits in this order reveal only the numbers of kept and of high-degree
// tokens, which docs/design.md allows to leak. This package does not check that
// the input order is random: that is the caller's duty. m and the circuit
// size (the bucket) are public too: m is the number of rows entering the
// layer.
//
// # The circuit
//
// For each score, a K-bit ripple-carry adder reconstructs the sum of the two
// shares and two comparators compare it with the thresholds:
//
//	x_j  = c_j + v'_j mod 2^K            K-1 AND gates
//	keep = [x_j >u θ']  high = [x_j >u β']  K AND gates each (unsigned >)
//
// The signed comparison becomes an unsigned one by flipping the sign bits of
// both sides (a >s b iff a⊕2^(K-1) >u b⊕2^(K-1)). The garbler does this on its
// own inputs before garbling, at no cost in gates: it feeds v'_j = v_j +
// 2^(K-1), which flips the sign bit of the sum, and θ' = θ ⊕ 2^(K-1), β' = β ⊕
// 2^(K-1), with their bits inverted, so the comparator's recurrence
//
//	c_0 = 0,  c_{i+1} = c_i ⊕ ((c_i ⊕ x_i) ∧ (c_i ⊕ ¬θ'_i)),  keep = c_K
//
// needs no constant wires. With the final high ∧ keep that is 3K AND gates
// per score (192 for K = 64;
// XOR gates are free) and 32 bytes of garbled table per AND gate. The scores'
// sub-circuits are disjoint, so each output depends on its own score only. A
// call with m scores uses the circuit of the smallest bucket >= m (powers of
// two from 8 to 512 by default); the padding slots get zero shares and their
// outputs are dropped, so padding never affects a real output. Cache compiles
// each (K, bucket) circuit once (10 ms for the largest) and shares it.
//
// Sizes (CircuitStats; tables = garbled tables, 32 bytes per non-XOR gate):
//
//	         K = 64                          K = 32
//	bucket   gates    non-XOR  tables       gates    non-XOR  tables
//	     8     6,577    1,536  49.2 kB        3,249      768  24.6 kB
//	    16    13,153    3,072  98.3 kB        6,497    1,536  49.2 kB
//	    32    26,305    6,144  196.6 kB      12,993    3,072  98.3 kB
//	    64    52,609   12,288  393.2 kB      25,985    6,144  196.6 kB
//	   128   105,217   24,576  786.4 kB      51,969   12,288  393.2 kB
//	   256   210,433   49,152  1.57 MB      103,937   24,576  786.4 kB
//	   512   420,865   98,304  3.15 MB      207,873   49,152  1.57 MB
//
// K sets the size. Reducing additive shares modulo 2^K is exact, so shares
// modulo 2^64 can be compared with K = 32 (half the traffic) whenever every
// score and threshold fits in 32 signed bits (|x| < 2^(31-F)); K = 64 (the
// default) needs no such bound.
//
// # Hiding the kept count (the top-K circuit)
//
// The keep bits reveal how many scores exceed θ. With
// ParamsLiteral.KeepGroup g, GarbleTopK and EvaluateTopK run another
// circuit (topk.go) that reveals instead keep'_j = [rank_j < K], K =
// min(roundup(c + KeepBase, g) - KeepBase, m) for c = #{s_j > θ}: every
// score above θ plus the best-scoring others (ranked by s_j >> RankShift,
// then by a tie order ρ_j the parties hold in shares), and high'_j = [s_j
// > β] ∧ keep'_j. Only K and the high count come out; c is hidden within
// its group. A selection network with a tree of merges finds the g best
// keys, and its comparators run backwards to bring the extra rows' bits back
// to their slots. Params.TopK is the plaintext rule. Sizes at K = 24, g = 8,
// base 1, shift 4 (mpcbridge/prunestep's for the engine): 44,885 AND gates
// (1.44 MB of tables) at bucket 128 and 194,189 (6.21 MB) at 512, against
// 24,576 and 98,304 for the comparison circuit at K = 64; g = 16: 58,281 and
// 256,929.
//
// # Roles
//
// The server garbles (Garble) and the client evaluates (Evaluate). The
// evaluator needs one OT per input bit and the garbler none, and the server
// has (m+2)·K input bits to the client's m·K, so this way round OTs 2K fewer
// bits; the garbler does three times the evaluator's AES work (the library's
// half gates make six AES calls per AND gate, the evaluator two) and sends
// the garbled tables, which are most of the bytes, so the heavier work and the bulk of the upload go to the server, which is the
// better-provisioned party. Security is semi-honest either way. The thresholds
// enter as the garbler's own input labels, which are random strings to the
// evaluator, so they never leave the server in any other form; the evaluator
// returns its output labels, which the garbler checks against the two labels
// of each output wire, so a wrong output report is detected (ErrMalformed).
//
// # Messages
//
// Each call exchanges five flights (2.5 round trips; G garbler, E
// evaluator), whatever m is:
//
//	G→E and E→G at once: hello (magic, version, role, m, SHA-256 of Params,
//	        and the Chou-Orlandi sender's first point: E's under IKNP)
//	G→E  128 base-OT points (G is the base receiver of IKNP; it garbles
//	        while E answers)
//	E→G  base-OT ciphertexts, IKNP matrix (16 bytes per E input bit)
//	G→E  OT pads (32 bytes per E input bit), garbling key, G's input labels,
//	        garbled tables, output decoding bits (E now knows the result)
//	E→G  output labels (16 bytes per output; G now knows the result), not
//	        sent with ParamsLiteral.EvaluatorOnly (only E learns it)
//
// With ChouOrlandi the base OT is run for every E input bit and the garbler
// sends its point in its hello, which saves a flight (four in all) but costs
// about 1.5 s for m = 128, K = 64. The hellos are checked first: differing
// Params or m, or both parties in the same role, fail on both sides with
// ErrMismatch before anything secret is sent, and a party whose own arguments
// are wrong announces it in its hello, so its peer fails with ErrPeerAborted
// instead of waiting. In these cases each side has read exactly the other's
// hello, and the stream is still usable.
//
// Measured over loopback TCP (2 cores shared with other work), one call:
//
//	K   m    time    G→E       E→G      total
//	64  128   68 ms  1.19 MB   139 kB   1.33 MB
//	64  512  149 ms  4.71 MB   545 kB   5.26 MB
//	32  128   42 ms   595 kB    74 kB    669 kB
//	32  512   72 ms  2.35 MB   283 kB    2.64 MB
//
// # Oblivious transfer
//
// The default IKNP is the library's ot.COT (IKNP extension, semi-honest
// mode, 128 base OTs), so the public-key work is constant per call. Its base
// OTs are the library's Chou-Orlandi OT on P-256, driven through its pure
// helpers (ot.GenerateCOSenderSetup and friends) so that this package fixes
// the message layout: fixed-size points and ciphertexts, and the first
// message inside the hello.
//
// # Connections, cancellation, goroutines
//
// conn is any io.ReadWriter carrying only this protocol's bytes for the
// duration of the call (mpcbridge/wire hands over a raw stream between its
// frames). It must allow a Read concurrent with a Write, as net.Conn does:
// the library's p2p.Conn writes from its own goroutine. That goroutine is
// stopped before Garble or Evaluate returns, on every path. The calls read
// exactly the protocol's bytes (the peer may send its next message right
// behind), and never close conn.
//
// Cancellation: the context is checked between phases. If it is done while a
// call is blocked on conn and conn has a SetDeadline method (net.Conn does),
// an expired deadline is set to interrupt the I/O, the call returns an error
// wrapping ctx's, and the deadline is then cleared (set to the zero time).
// Without SetDeadline, blocked I/O returns only when the caller closes conn
// (for example from context.AfterFunc); a wrapping transport should forward
// SetDeadline. The same applies when a call fails with the stream out of
// step (a peer that stops reading and sends garbage): with SetDeadline the
// call returns at once.
//
// After an error other than ErrMismatch and ErrPeerAborted the stream is out
// of step and should be closed. Errors read "cannot Garble: ..." or "cannot
// Evaluate: ..."; a peer that disconnects yields io.ErrUnexpectedEOF or the
// connection's error; malformed peer data yields ErrMalformed.
//
// # Library notes
//
//   - The library's IKNP sender indexes its buffers with chunk sizes read
//     from the peer and panics (slice bounds) on an oversized chunk. Calls
//     into the library that parse peer data are wrapped, and such a panic
//     becomes ErrMalformed. The library does not panic on I/O errors.
//   - Its p2p.Conn.ReceiveData, used by IKNP for the matrix chunks, trusts a
//     32-bit length prefix from the peer and allocates it (up to 4 GiB)
//     before reading; this package's own messages have fixed sizes.
//   - p2p.Conn.Close closes an io.Closer and, after a failed write, returns
//     before stopping its writer goroutine; this package hides conn's Close
//     and drops unsent bytes before closing on error.
//   - ot.NewLabel reads randomness without io.ReadFull; the random source
//     given to the library always fills its buffer.
package gc
