// Package wire is the framed, versioned message transport that every
// two-party protocol of the engine runs over.
//
// A [Conn] wraps any [net.Conn]: a TCP connection, a [crypto/tls.Conn], or a
// [net.Pipe] in tests. It adds what the protocols need and a raw stream lacks:
// typed, length-prefixed messages with a hard size limit, a handshake that
// checks both parties agree on the protocol and the session parameters,
// errors that say what went wrong on both sides, context deadlines and
// cancellation on every blocking call, and exact communication statistics.
//
// # Frames
//
// Every message is one frame: a 12-byte header followed by the payload.
//
//	offset  size  field
//	0       2     type     uint16, big-endian (network order)
//	2       2     flags    uint16, reserved: must be zero
//	4       8     length   uint64, big-endian: payload bytes that follow
//
// A receiver checks the length against its limit (Config.MaxFrame for
// protocol messages, fixed small limits for the transport's own messages)
// before it allocates or reads anything, and rejects the frame with
// [ErrFrameTooLarge] otherwise. The limits are exchanged in the handshake,
// so a sender refuses an oversized message locally, before writing a byte.
// Even a length within the limit is only announced: the receiver allocates
// as the payload arrives, starting at 4 KiB and at most doubling, so a peer
// that announces 256 MiB and stalls has cost it 4 KiB, and one that sent n
// bytes at most 2n held (less than 4n allocated in all).
//
// # Resources and timeouts
//
// A Conn allocates its two 64 KiB buffers only once the handshake has
// succeeded: a connection that is accepted and then says nothing holds its
// goroutines and the hellos, a few KiB. Every blocking call is bounded by
// its context; [Config.IdleTimeout] adds a bound on silence, restarted by
// every read and every chunk written: a peer that stops sending while this
// end waits for a message, or stops reading while this end sends, fails
// the call with [ErrIdle] after that long, and a silent one is told why in
// an Abort. A server bounds the handshake with the context it passes to
// [Conn.Handshake], and the number of connections itself.
//
// # Handshake
//
// Before the first message, both ends send a hello frame ([TypeHello]) at
// the same time and then read the other's; the exchange is one round trip
// and works on synchronous transports such as net.Pipe. The hello payload is
//
//	offset  size  field
//	0       8     magic "CPRUNE\r\n"
//	8       2     wire format version (WireVersion), big-endian
//	10      1     role: 1 client, 2 server
//	11      1     reserved, zero
//	12      4     protocol version (Config.Version), big-endian
//	16      8     the sender's MaxFrame, big-endian
//	24      ...   session parameters (Config.Params), at most MaxParamsLen bytes
//
// The first 12 bytes are frozen across wire format versions, so any two
// versions can tell each other apart. Each end checks, in this order: the
// magic ([ErrMagic]), the wire format version ([ErrVersion]), the roles,
// which must differ ([ErrRole]), the protocol version ([ErrVersion]) and the
// session parameters, which must be byte-for-byte equal ([ErrParams]). The
// checks are symmetric, so both ends report the same problem, naming the
// ends by role:
//
//	cannot Handshake: wire: session parameters differ: client "bert-tiny/N12", server "bert-base/N13"
//
// The end that finds a problem also sends an Abort frame with the reason
// before it closes the connection, so a peer that could not tell (another
// implementation, or one that is not a wire peer at all) learns why: its
// error matches [ErrPeerAborted] and the same sentinel, and reads
//
//	cannot Handshake: wire: peer aborted: session parameters differ: client "bert-tiny/N12", server "bert-base/N13"
//
// # Message types
//
// A [Type] is a uint16. Numbers are allocated in ranges:
//
//	0x0000          invalid
//	0x0001-0x00ff   the transport's own messages (TypeHello, TypeAbort, ...)
//	0x0100-0xefff   protocol messages: each protocol package takes a block of
//	                256 numbers, 0xNN00-0xNNff, and names them with RegisterType
//	0xf000-0xffff   tests and experiments; never in committed protocols
//
// [RegisterType] panics when two packages claim the same number, so a
// collision shows at program start rather than as a confused peer. The blocks
// are assigned in this list (keep it sorted):
//
//	0x01xx  mpcbridge/share    HE to shares and back
//	0x02xx  mpcbridge/shuffle  two-party shuffle
//	0x03xx  mpcbridge/gc       garbled comparisons
//	0x04xx  engine             session set-up: keys, model shape, schedule
//	0x05xx  mpcbridge/prunestep  the composed pruning step and bridge requests
//	0x06xx  mpcbridge/matmul   polynomial matmul to shares
//	0x07xx  mpcbridge/elementwise  slot polynomials and products on shares
//	0x08xx  mpcbridge/sharedmul  products of two shared matrices (attention)
//
// # Errors
//
// An Abort frame from the peer ends the connection: the call that reads it
// returns an [*AbortError] carrying the peer's reason, which matches
// [ErrPeerAborted] and the sentinel of its cause (ErrParams, ErrVersion, ...)
// under [errors.Is]. A protocol violation detected on receipt (oversized or
// malformed frame, unexpected message type) is answered the same way: the Conn
// sends Abort to the peer and closes. A peer that disconnects in the middle of
// a frame gives an error wrapping [io.ErrUnexpectedEOF] that says how much of
// the frame arrived; one that disconnects between frames gives [io.EOF].
//
// A Recv whose context ends before the whole next frame header has arrived
// consumes nothing and may be retried. Any other failure of a read (an idle
// timeout included), and every failure of a write after it started, leaves
// the stream out of step with the peer or the peer gone: the Conn closes
// itself and every later call returns that first error.
//
// # Statistics and rounds
//
// [Conn.Stats] counts bytes as the Conn writes and reads them (frame headers
// included, TLS record overhead not), messages each way, and rounds. A round
// starts each time this end begins sending after it last received, or sends
// for the first time; the handshake is the first round. For a protocol in
// which the parties alternate, Stats().Rounds on either end is the number of
// flights that end sent. Take a snapshot before a protocol step and
// [Stats.Sub] it from one taken after to measure the step.
//
// # Other libraries on the same connection
//
// A library that does its own framing, such as the garbled-circuit library
// github.com/markkurossi/mpc (its p2p.Conn wants an io.ReadWriter), can run
// between messages over [Conn.OpenTunnel], which carries its bytes in frames
// so that its read-ahead buffer can never swallow the next message, or over
// [Conn.Raw], which passes bytes through untouched and is safe only for a
// library that never reads past its own last byte. Bytes and rounds are
// counted in both cases; closing a tunnel costs no round.
//
// # TLS
//
// A Conn works over any net.Conn, so TLS is a matter of wrapping the TCP
// connection first:
//
//	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
//	...
//	tc := tls.Client(raw, &tls.Config{ServerName: "inference.example", MinVersion: tls.VersionTLS13})
//	if err := tc.HandshakeContext(ctx); err != nil { ... }
//	c, err := wire.NewConn(tc, wire.Config{Role: wire.RoleClient, Params: params})
//
// and tls.Server with the server's certificate on the other end. A
// crypto/tls.Conn cannot write again after a write timed out, so over TLS a
// cancelled Send always ends the connection (it does so over TCP too, since
// the peer may have part of the frame).
package wire
