// Package shuffle is the two-party shuffle of encrypted token pruning
// (docs/design.md, "The pruning protocol", step 2; mpcbridge/README.md section 2): from
// additive shares modulo 2^64 (or 2^128, Config.Ring) of n rows, fresh
// shares of the same rows in an order neither party knows.
//
// # Permute-and-share
//
// The building block has two roles. The permuter P holds a permutation π of
// n rows and a share matrix A_P (n x w words); the assistant Q holds A_Q
// (n x w). Afterwards P holds B_P and Q holds B_Q with
//
//	B_P + B_Q = π(A_P + A_Q)  (mod 2^64, word by word),  π(X)[π[i]] = X[i]
//
// that is, row i moves to position π[i] (the scatter convention; see
// ApplyPermutation), and (B_P, B_Q) is uniformly random subject to this.
// Permute is P's side and Assist is Q's. With Config.Ring = Ring128 the
// same holds modulo 2^128 for every pair of words (low word first): every
// sum and difference below is then taken on pairs, with carries, and the
// switch arithmetic is otherwise unchanged (ring.go). The pruning step
// uses Ring128, so that its conversion back to integer shares can use
// masks of 88 bits (mpcbridge/prunestep).
//
// Shuffle composes two of them: the First party (the server S) permutes by
// its own uniformly random π_1, then the Second party (the client C)
// permutes the result by its own π_2, so the rows end in the order
// σ = π_2 ∘ π_1 (mpcbridge/README.md's σ = π_C ∘ π_S): uniformly random, and
// unknown to each party, who knows only its own factor.
//
// # The protocol
//
// It is the oblivious switching network of Mohassel and Sadeghian (2013) on
// a Benes network, with one random OT per switch and a derandomization that
// sends one correction vector per switch.
//
// Network. n is padded to N, the next power of two; the Benes network B(N)
// has 2 log2 N - 1 layers of N/2 switches (none for N = 1). A switch with bit
// s maps its inputs (a, b) to its outputs (c, d) = (a, b) if s = 0 and (b, a)
// if s = 1. P routes π on it with the looping algorithm; the N - n padding
// items are dummies that the routing keeps in place, so the real items move
// exactly by π. The wiring is public and both parties build it from N.
//
// Masks. Q holds, for every wire x, a mask r_x (a w-vector); P holds
// m_x = v_x + r_x, where v_x is the value Q's share A_Q puts on that wire
// (P's own share never enters the network: it is permuted locally).
//
//  1. Inputs. Q draws r_in uniform for the n real input wires and sends
//     m_in = A_Q + r_in (the dummies carry v = 0 and r = 0 and are not sent).
//  2. OTs. For every switch, one random OT: Q gets two random 128-bit keys
//     k_0, k_1, P gets k_s for its bit s. They come from the IKNP OT
//     extension (the library's ot.ROT: correlated OTs hashed with its
//     multi-instance tweakable correlation-robust AES hash, a different
//     tweak per OT index), on 128 Chou-Orlandi base OTs over P-256. Each key
//     is expanded with AES-128-CTR (key k, nonce = (switch index, purpose))
//     into a w-vector K_0, K_1.
//  3. Switches, layer by layer. For a switch with input wires a, b and output
//     wires c, d, Q sets r_c = r_a + K_0, r_d = r_b - K_0 and sends the
//     correction e = r_a + K_0 - r_b - K_1. P computes m_c = m_a + K_0 if
//     s = 0 and m_c = m_b + K_1 + e if s = 1, and m_d = m_a + m_b - m_c. Then
//     s = 0 gives m_c = v_a + r_c, m_d = v_b + r_d, and s = 1 gives
//     m_c = v_b + r_c, m_d = v_a + r_d: the invariant holds on the outputs,
//     with the values switched and the masks not. Q's corrections do not
//     depend on anything P sends after the OTs, so all layers go in one
//     message.
//  4. Outputs. P's share is B_P = π(A_P) + m_out, Q's is B_Q = -r_out.
//
// # Security (semi-honest)
//
// P's view: m_in, and per switch k_s (hence K_s) and e. Each e contains
// K_{1-s}, which is pseudorandom given P's view (the IKNP correlation Δ is
// Q's secret, and the hash is correlation robust with a distinct tweak per
// OT) and used nowhere else that P sees, so the corrections are uniform and
// independent of everything else; m_in is then masked by r_in, uniform and
// used nowhere else in P's view. So P's view is uniform and independent of
// A_Q. P's output needs no extra re-randomization: for fixed (K_s, e) each
// switch maps (m_a, m_b) to (m_c, m_d) bijectively (a translation and maybe
// a swap), so m_out is a bijective image of the uniform m_in, and
// B_P = π(A_P) + m_out is uniform given the rest of P's view; a simulator
// given B_P draws K_s and e and inverts the network to get m_in. That the
// masks are only reshuffled inside the network (Σ_x r_out = Σ_x r_in per
// column) needs no fix either: it is the identity Σ_i B_P[i] + Σ_i B_Q[i] =
// Σ_i A_P[i] + Σ_i A_Q[i], which every correct protocol satisfies since a
// permutation does not change column sums, and Σ r_in itself is uniform to
// P, like r_in.
//
// Q's view: P's hello and base-OT ciphertexts and the IKNP matrix, which by
// the security of Chou-Orlandi and IKNP hide the switch bits (so π), and
// contain nothing of A_P. Q's masks, and so its output B_Q = -r_out, do not
// depend on the bits at all; B_Q is uniform (a bijective image of the uniform
// r_in for fixed keys), and a simulator given B_Q draws the keys and
// inverts the network to get r_in.
//
// Security is 128-bit computational (P-256, IKNP with κ = 128, AES-128);
// the masks are uniform modulo the ring, so nothing is statistical. The
// sizes n and w and the ring are public.
//
// # Messages
//
// Two round trips per permute-and-share (P permuter, Q assistant):
//
//	P→Q and Q→P at once: hello (80 bytes: magic, version, role, status,
//	     ring, n, width, and P's Chou-Orlandi point A)
//	Q→P  m_in (8nw bytes), 128 base-OT points (8 KiB)
//	P→Q  base-OT ciphertexts (4 KiB), IKNP matrix (16 bytes per switch, in
//	     chunks of at most 8 KiB with a 4-byte length)
//	Q→P  hash seed (16 bytes), corrections (8w bytes per switch)
//
// w counts words (a Ring128 value is two); every word is 8 bytes
// little-endian. Q's last read is the IKNP matrix; P's
// is the last correction. The hellos are checked first: a different n or
// width, or both parties in the same role, fail on both sides with
// ErrMismatch, and a party whose own arguments are wrong (an invalid
// permutation, a size over its Config) says so in its hello, so its peer
// fails with ErrPeerAborted instead of waiting; in these cases each side has
// read exactly the other's hello and the stream is still usable. The peer's
// hello is bounded (n <= MaxRows, width <= MaxWidth) and must equal ours;
// all allocations follow our own, checked, arguments; the one
// length-prefixed message the OT library reads (an IKNP chunk) is bounded to
// 8 KiB before it is allocated.
//
// Shuffle is two calls back to back, 3.5 round trips in all: the Second
// party's last flight of the first call (as assistant) and its hello of the
// second (as permuter) go out together.
//
// Sizes, n = 128, w = 769 (BERT-base's 768 columns and the score): 832
// switches, Q→P 5.91 MB (m_in 0.79 MB, corrections 5.12 MB), P→Q 17.5 kB.
// For n = 512: 4352 switches, Q→P 29.9 MB, P→Q 74 kB. About 25 ms of each
// call is fixed (the 128 base OTs on P-256). Measured over loopback TCP on 2
// cores shared with other work (load average 5-7, so times vary by ±30%;
// BenchmarkPermute, BenchmarkShuffle):
//
//	                   n    time      Q→P        P→Q       flights
//	permute-and-share  128   32-42 ms  5.91 MB    17.5 kB   4-5 (2 round trips)
//	permute-and-share  512  108 ms     29.9 MB    74 kB     4-5
//	Shuffle (S↔C)      128   66-100 ms 5.93 MB each way     7-8 (3.5 round trips)
//	Shuffle (S↔C)      512  210 ms     30.0 MB each way     8
//
// Ring128 against Ring64 for the same 769 values a row, one run of
// BenchmarkShuffle -benchtime 5x (2 cores beside a 2-thread training job):
// n = 128, 102.8 ms against 58.3 ms (1.76x) and 11.84 MB against 5.93 MB
// each way; n = 512, 330.9 ms against 232.7 ms (1.42x), 59.9 MB against
// 30.0 MB each way; the flights are the same.
//
// (A flight is a maximal run of writes by one side; the crossing hellos
// count as one or two.)
//
// # Connections, cancellation, goroutines
//
// conn is any io.ReadWriter carrying only this protocol's bytes for the
// duration of the call (mpcbridge/wire's raw stream, a net.Conn). Reads are
// exact: a call never reads past the protocol's last byte, so the peer may
// send its next message right behind and no read-ahead buffer is needed.
// Writes are buffered and flushed at the end of each flight. The only
// goroutine is the one that writes our hello while we read the peer's (both
// parties send first, which a synchronous transport such as net.Pipe would
// otherwise deadlock on), so conn must allow one Write concurrent with a
// Read, as net.Conn does; it has ended before the call returns. The calls
// never close conn.
//
// Cancellation: the context is checked between phases. If it is done while
// a call is blocked on conn and conn has a SetDeadline method, an expired
// deadline is set to interrupt the I/O, the call returns an error wrapping
// ctx's, and the deadline is then cleared (set to the zero time). Without
// SetDeadline, blocked I/O returns only when the caller closes conn (for
// example from context.AfterFunc). After an error other than ErrMismatch and
// ErrPeerAborted the stream is out of step and should be closed. Errors read
// "cannot Permute: ...", "cannot Assist: ..." or "cannot Shuffle: step k of
// 2: ..."; a peer that disconnects yields io.ErrUnexpectedEOF or the
// connection's error; malformed peer data yields ErrMalformed.
//
// # Possible savings, not taken
//
// The first layer's corrections could be dropped (1/(2 log2 N - 1) of the
// corrections: 7.7% at n = 128) by letting Q choose the input masks of each
// first-layer pair so that e = 0 (r_b = r_a + K_0 - K_1, sending m_in after
// the OTs). P's view stays uniform, but Q's output share is then not a
// bijective image of free randomness, so the protocol would realize only
// the weaker functionality in which the assistant's share is chosen by the
// assistant; this package keeps the plain construction. Share translation
// (Chase, Ghosh and Poburinnaya 2020; about 1 MB per permutation by the
// estimate in mpcbridge/README.md) would cost less, with punctured PRFs on
// GGM trees.
package shuffle
