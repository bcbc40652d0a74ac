package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of the engine, in the block 0x0400-0x04ff that
// mpcbridge/wire assigns to it.
const (
	// MsgSession (client -> server) opens a session: the padded length and
	// the reductions the client asks for (sessionRequest).
	MsgSession wire.Type = 0x0401
	// MsgAccept (server -> client) accepts it: the padded length, the block
	// size of the packing and the Galois elements of the server's rotation
	// plan (sessionAccept).
	MsgAccept wire.Type = 0x0402
	// MsgPublicKey, MsgRelinKey and MsgGaloisKey (client -> server) carry
	// the client's public key, relinearization key and one Galois key per
	// message, in the order of the plan (Lattigo's binary forms).
	MsgPublicKey wire.Type = 0x0403
	MsgRelinKey  wire.Type = 0x0404
	MsgGaloisKey wire.Type = 0x0405
	// MsgInput (client -> server) carries the encrypted X_0 (ckks.CtMatrix).
	MsgInput wire.Type = 0x0406
	// MsgMasks (client -> server) carries the encrypted attention masks of
	// the padding (maskMessage).
	MsgMasks wire.Type = 0x0407
	// MsgLogits (server -> client) carries the encrypted logits.
	MsgLogits wire.Type = 0x0408
	// MsgReport (server -> client) carries the server's timings
	// (serverReport): public, like the counts.
	MsgReport wire.Type = 0x0409
)

func init() {
	wire.RegisterType(MsgSession, "engine.Session")
	wire.RegisterType(MsgAccept, "engine.Accept")
	wire.RegisterType(MsgPublicKey, "engine.PublicKey")
	wire.RegisterType(MsgRelinKey, "engine.RelinKey")
	wire.RegisterType(MsgGaloisKey, "engine.GaloisKey")
	wire.RegisterType(MsgInput, "engine.Input")
	wire.RegisterType(MsgMasks, "engine.Masks")
	wire.RegisterType(MsgLogits, "engine.Logits")
	wire.RegisterType(MsgReport, "engine.Report")
}

// ErrMalformed means a message does not have the form this package sends.
var ErrMalformed = errors.New("engine: malformed message")

// msgVersion is the version byte every engine message starts with.
const msgVersion = 1

// Flags of a session request.
const (
	flagPrune      = 1 << 0
	flagReduce     = 1 << 1
	flagKeepBlock  = 1 << 2
	flagLabelOnly  = 1 << 3
	flagHideLength = 1 << 4
	flagsKnown     = flagPrune | flagReduce | flagKeepBlock | flagLabelOnly | flagHideLength
)

// MaxHideLength is the largest ClientConfig.HideLength: the largest number
// of rows one garbled comparison holds.
const MaxHideLength = gc.MaxBucket

// maxLength bounds the padded length of a request, before the server checks
// it against its model.
const maxLength = 1 << 16

// sessionRequest is the payload of MsgSession:
//
//	offset  size  field
//	0       1     version (msgVersion)
//	1       1     flags: bit 0 pruning, bit 1 degree reduction, bit 2 keep
//	              the first block (no re-packing after a pruning step),
//	              bit 3 open only the label (no logits), bit 4 round the
//	              kept counts up to a group (ClientConfig.HideLength)
//	2       1     with bit 4, log2 of the group (1 to log2 MaxHideLength);
//	              zero otherwise
//	3       1     reserved, zero
//	4       4     padded length n, big-endian
//
// A server older than bit 4 refuses a request with it as malformed, and the
// client reads the reason; without it the request is the same bytes as
// before.
type sessionRequest struct {
	length     int
	prune      bool
	reduce     bool
	keepBlock  bool
	labelOnly  bool
	hideLength int // the group, a power of two; 0: counts not rounded
}

const sessionRequestSize = 8

func (r sessionRequest) marshal() []byte {
	p := make([]byte, sessionRequestSize)
	p[0] = msgVersion
	if r.prune {
		p[1] |= flagPrune
	}
	if r.reduce {
		p[1] |= flagReduce
	}
	if r.keepBlock {
		p[1] |= flagKeepBlock
	}
	if r.labelOnly {
		p[1] |= flagLabelOnly
	}
	if r.hideLength > 0 {
		p[1] |= flagHideLength
		p[2] = byte(bits.Len(uint(r.hideLength)) - 1)
	}
	binary.BigEndian.PutUint32(p[4:], uint32(r.length))
	return p
}

func decodeSessionRequest(p []byte) (sessionRequest, error) {
	if len(p) != sessionRequestSize {
		return sessionRequest{}, fmt.Errorf("%w: session request of %d bytes, want %d", ErrMalformed, len(p), sessionRequestSize)
	}
	if p[0] != msgVersion {
		return sessionRequest{}, fmt.Errorf("%w: session request version %d, want %d", ErrMalformed, p[0], msgVersion)
	}
	if p[1]&^flagsKnown != 0 || p[3] != 0 || (p[1]&flagHideLength == 0) != (p[2] == 0) {
		return sessionRequest{}, fmt.Errorf("%w: session request flags %#02x, group %#02x, reserved %#02x", ErrMalformed, p[1], p[2], p[3])
	}
	hide := 0
	if p[2] != 0 {
		if int(p[2]) >= bits.Len(MaxHideLength) {
			return sessionRequest{}, fmt.Errorf("%w: hide-length group 2^%d above %d", ErrMalformed, p[2], MaxHideLength)
		}
		hide = 1 << p[2]
	}
	n := binary.BigEndian.Uint32(p[4:])
	if n < 1 || n > maxLength {
		return sessionRequest{}, fmt.Errorf("%w: padded length %d not in [1, %d]", ErrMalformed, n, maxLength)
	}
	return sessionRequest{length: int(n), prune: p[1]&flagPrune != 0, reduce: p[1]&flagReduce != 0,
		keepBlock: p[1]&flagKeepBlock != 0, labelOnly: p[1]&flagLabelOnly != 0, hideLength: hide}, nil
}

// maxGaloisKeys bounds the plan's Galois elements (BERT-large needs 60).
const maxGaloisKeys = 1024

// sessionAccept is the payload of MsgAccept:
//
//	offset  size  field
//	0       1     version (msgVersion)
//	1       1     flags the server applies (as in the request)
//	2       2     reserved, zero
//	4       4     padded length n
//	8       4     block size of the packing
//	12      4     number k of Galois elements
//	16      8·k   the Galois elements, big-endian uint64
type sessionAccept struct {
	request sessionRequest
	block   int
	galEls  []uint64
}

func (a sessionAccept) marshal() []byte {
	p := make([]byte, 16+8*len(a.galEls))
	copy(p, a.request.marshal())
	be := binary.BigEndian
	be.PutUint32(p[8:], uint32(a.block))
	be.PutUint32(p[12:], uint32(len(a.galEls)))
	for i, g := range a.galEls {
		be.PutUint64(p[16+8*i:], g)
	}
	return p
}

func decodeSessionAccept(p []byte) (sessionAccept, error) {
	if len(p) < 16 {
		return sessionAccept{}, fmt.Errorf("%w: accept of %d bytes", ErrMalformed, len(p))
	}
	req, err := decodeSessionRequest(p[:sessionRequestSize])
	if err != nil {
		return sessionAccept{}, err
	}
	be := binary.BigEndian
	block := be.Uint32(p[8:])
	k := be.Uint32(p[12:])
	if block < 1 || block > maxLength || block&(block-1) != 0 {
		return sessionAccept{}, fmt.Errorf("%w: block %d", ErrMalformed, block)
	}
	if k > maxGaloisKeys || len(p) != 16+8*int(k) {
		return sessionAccept{}, fmt.Errorf("%w: accept with %d Galois elements in %d bytes", ErrMalformed, k, len(p))
	}
	a := sessionAccept{request: req, block: int(block), galEls: make([]uint64, k)}
	for i := range a.galEls {
		a.galEls[i] = be.Uint64(p[16+8*i:])
	}
	return a, nil
}

// maxReportLayers bounds the layers of a report.
const maxReportLayers = 1 << 10

// serverReport is the payload of MsgReport, the server's side of the
// Report: per layer, the seconds the server spent in the layer and, of
// those, in the bridge (its own and the client's work, with the network),
// and the refresh count; then the head's seconds.
//
//	offset  size  field
//	0       1     version (msgVersion)
//	1       3     reserved, zero
//	4       4     number L of layers
//	8       24·L  per layer: seconds (float64 bits), bridge seconds, refreshes (uint64)
//	...     8     head seconds
type serverReport struct {
	layers []serverLayer
	head   float64
}

type serverLayer struct {
	seconds, bridge float64
	refreshes       int
}

func (r serverReport) marshal() []byte {
	p := make([]byte, 8+24*len(r.layers)+8)
	p[0] = msgVersion
	be := binary.BigEndian
	be.PutUint32(p[4:], uint32(len(r.layers)))
	for i, l := range r.layers {
		o := 8 + 24*i
		be.PutUint64(p[o:], math.Float64bits(l.seconds))
		be.PutUint64(p[o+8:], math.Float64bits(l.bridge))
		be.PutUint64(p[o+16:], uint64(l.refreshes))
	}
	be.PutUint64(p[len(p)-8:], math.Float64bits(r.head))
	return p
}

func decodeServerReport(p []byte) (serverReport, error) {
	if len(p) < 16 || p[0] != msgVersion || p[1] != 0 || p[2] != 0 || p[3] != 0 {
		return serverReport{}, fmt.Errorf("%w: report header", ErrMalformed)
	}
	be := binary.BigEndian
	n := be.Uint32(p[4:])
	if n > maxReportLayers || len(p) != 16+24*int(n) {
		return serverReport{}, fmt.Errorf("%w: report of %d layers in %d bytes", ErrMalformed, n, len(p))
	}
	seconds := func(o int) (float64, error) {
		v := math.Float64frombits(be.Uint64(p[o:]))
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, fmt.Errorf("%w: report time %v", ErrMalformed, v)
		}
		return v, nil
	}
	r := serverReport{layers: make([]serverLayer, n)}
	for i := range r.layers {
		o := 8 + 24*i
		var err error
		if r.layers[i].seconds, err = seconds(o); err != nil {
			return serverReport{}, err
		}
		if r.layers[i].bridge, err = seconds(o + 8); err != nil {
			return serverReport{}, err
		}
		k := be.Uint64(p[o+16:])
		if k > 1<<20 {
			return serverReport{}, fmt.Errorf("%w: %d refreshes", ErrMalformed, k)
		}
		r.layers[i].refreshes = int(k)
	}
	var err error
	if r.head, err = seconds(len(p) - 8); err != nil {
		return serverReport{}, err
	}
	return r, nil
}
